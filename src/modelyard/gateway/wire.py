"""OpenAI chat-completions wire format: validate a request body, translate it to a
:class:`ChatRequest`, and render answers (whole or as SSE chunks) in OpenAI's shapes.

Unknown request fields are ignored rather than rejected: SDKs and agent frameworks send
many optional knobs (``user``, ``metadata``, ``service_tier``...) that a router cannot
honour per model, and refusing them would break those clients for no benefit. ``seed``,
``top_p``, the penalties and ``logit_bias`` are passed on where the backend takes them. ``stop`` is
sent to the backend (the model stops there) and honoured at the gateway too (``stops.py``): the text
ends before the first stop sequence.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    WithJsonSchema,
)

from modelyard.errors import json_problem
from modelyard.types import (
    MAX_ARGUMENT_DEPTH,
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    ToolDefinition,
    Usage,
    nesting_depth,
)

#: the most messages (or Responses input items) one request may carry: Anthropic's API takes at most 100,000; each costs
#: the gateway ~35 µs of its event loop (parsed, translated, routed), so 300,000 one-word messages — a 10 MB body, a
#: third of the size bound — held every other client for ~10 s. No conversation that fits a model's context comes near.
MAX_MESSAGES = 10_000
#: the most tools one request may offer: OpenAI's API takes 128 ("Expected an array with maximum length 128"); a local
#: model behind the gateway may take more, but 100,000 tools (an 8 MB body) cost 3.4 s of the loop to parse alone
MAX_TOOLS = 1_000
#: the most content parts one message may carry (each of 300,000 parts cost ~8 µs to parse: 2.4 s)
MAX_PARTS = MAX_MESSAGES
#: the most stop sequences one request may carry, and the longest: each is looked for in every piece of the answer,
#: twice (the router's stop watch, the gateway's cut) — 10,000 of 100 characters cost ~24 ms of the event loop per
#: piece each, every other client held while one answer streamed. OpenAI takes 4, clients send a handful (FIM
#: editors ~10–20); llama-server and Ollama set no bound
MAX_STOPS, MAX_STOP_CHARS = 64, 1_000


def stops_bounded(stop: str | list[str] | None) -> str | list[str] | None:
    """``stop``/``stop_sequences`` within :data:`MAX_STOPS` and :data:`MAX_STOP_CHARS` (a 400 naming the field)."""
    stops = [stop] if isinstance(stop, str) else stop or []
    if len(stops) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in stops):
        longest = max(map(len, stops))
        raise ValueError(f"at most {MAX_STOPS} stop sequences of at most {MAX_STOP_CHARS} characters each (got "
                         f"{len(stops)}, the longest {longest} characters)")
    return stop


#: ``stop`` as chat and text completions take it: one sequence or a list, bounded
Stops = Annotated[str | list[str] | None, AfterValidator(stops_bounded)]
#: ``stop_sequences`` as the Messages API takes it: a list, bounded
StopList = Annotated[list[str] | None, AfterValidator(stops_bounded)]


class BadRequest(Exception):
    """A request the gateway cannot serve; ``param`` names the offending field (OpenAI style)."""

    def __init__(self, message: str, param: str | None = None, *, missing: bool = False):
        super().__init__(message)
        self.message = message
        self.param = param
        #: the field was not sent at all (pydantic's ``missing``), not sent wrong
        self.missing = missing


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionCallIn(_In):
    name: str
    arguments: str | dict[str, Any] = ""  # a JSON string; some clients (Ollama's habit) send the object


class ToolCallIn(_In):
    id: str | None = ""  # null where a client writes its unset fields (the spec lets them)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ContentPart(_In):
    type: str
    text: str | None = None
    refusal: str | None = None  # an assistant's refusal part (openai-python's ChatCompletionContentPartRefusalParam)


class MessageIn(_In):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | Annotated[list[ContentPart], Field(max_length=MAX_PARTS)] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None  # an assistant's refusal, replayed (the SDK's ChatCompletionMessage: content null)


class FunctionDef(_In):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = ""
    parameters: dict[str, Any] | None = None


class ToolIn(_In):
    type: Literal["function"]
    function: FunctionDef


class StreamOptions(_In):
    include_usage: bool | None = False


class JsonSchemaFormat(_In):
    name: str | None = "answer"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_In):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @property
    def answer_schema(self) -> dict[str, Any] | None:
        """The schema the answer must follow (passed on: a provider constrains its output to it where it can)."""
        return self.json_schema.schema_ if self.type == "json_schema" and self.json_schema else None


class StopsAndUsage:
    """``stop`` and ``stream_options.include_usage`` as chat and text completions read them. The fields are each
    body's own (declared here for type checkers only: a pydantic base would put them first in its fields)."""

    if TYPE_CHECKING:
        stop: str | list[str] | None
        stream_options: StreamOptions | None

    @property
    def stop_sequences(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else self.stop or []

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


#: what /openapi.json says of the fields refused when asked for (a schema-valid request is never refused)
_TEXT_ONLY = {"type": ["array", "null"], "items": {"const": "text"}}
_NOT_GIVEN = {"type": "null", "description": "not supported: refused when given"}


#: OpenAI's ``logit_bias``: "Accepts a JSON object that maps tokens (specified by their token ID in the tokenizer) to an
#: associated bias value from -100 to 100" (platform.openai.com/docs/api-reference/chat/create); llama-server also reads
#: a key that is text (it tokenizes it), so keys are passed on as strings. llama-server's ``false`` ("ensures that the
#: token … is never produced", its README) is OpenAI's ban, -100 ("should result in a ban"): so it reaches any backend
#: (pydantic read it as 0.0, no bias at all); ``true`` is no number, a 400
LogitBias = dict[str, Annotated[float, Strict(), Field(ge=-100, le=100),
                                BeforeValidator(lambda v: -100 if v is False else v),
                                WithJsonSchema({"anyOf": [{"type": "number", "minimum": -100, "maximum": 100},
                                                          {"const": False}]})]]


#: ``reasoning_effort`` as OpenAI's API takes it (the openai SDK's ``ReasoningEffort``: shared/reasoning_effort.py,
#: openai 3.57); "none" turns thinking off, any other on. "" is read as off too, as it always was
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


class ChatCompletionBody(_In, StopsAndUsage):
    model: str = Field(min_length=1)
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool | None = False  # null: the default, as the spec says (clients send their unset fields)
    stream_options: StreamOptions | None = None
    tools: list[ToolIn] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    #: false: at most one tool call in the answer ("zero or one", OpenAI's function-calling guide)
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)  # passed on where the backend takes it (ChatRequest.top_p)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)  # passed on likewise (0, the default: left out)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    #: top-k sampling: not OpenAI's, but vLLM's, llama-server's and LM Studio's chat endpoints take it, and Open WebUI
    #: sends its "Top K" setting here (open_webui/utils/payload.py: a parameter with no OpenAI mapping goes into the
    #: body as it is). Passed on where the backend takes it (ChatRequest.top_k); was dropped. -1 and 0: every token
    top_k: int | None = Field(None, ge=-1, le=2**63 - 1)  # past int64: a 400 naming it, as seed
    #: min-p and llama.cpp's repetition penalty, which Open WebUI sends here likewise: passed on (ChatRequest.min_p,
    #: .repeat_penalty); were dropped. Out of range (min_p 0 to 1, repeat_penalty above 0): a 400 naming the field
    min_p: float | None = Field(None, ge=0, le=1)
    repeat_penalty: float | None = Field(None, gt=0)
    #: token ids (string keys) to a bias from -100 to 100 (OpenAI's API reference): passed on where the backend takes
    #: it (ChatRequest.logit_bias); was ignored. Out of range: a 400 naming the key
    logit_bias: LogitBias | None = None
    response_format: ResponseFormat | None = None
    #: one choice per request: any other count is refused by name (to_chat_request); /openapi.json says so
    n: Annotated[int | None, WithJsonSchema({"type": ["integer", "null"], "minimum": 1, "maximum": 1})] = None
    #: OpenAI's set (REASONING_EFFORTS); another word is a 400 naming the field (to_chat_request)
    reasoning_effort: Annotated[str | None, WithJsonSchema({"enum": [*REASONING_EFFORTS, None]})] = None
    #: passed on where the backend takes one (ChatRequest.seed); OpenAI's bounds (a 64-bit integer)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stop: Stops = None
    functions: list[Any] | None = None  # the deprecated form of `tools`: refused by name, never ignored
    logprobs: bool | None = None  # refused when asked for: no model's answer carries them here (never a silent null)
    top_logprobs: int | None = None
    reasoning: dict[str, Any] | None = None  # OpenRouter's spelling: {"effort": …} / {"enabled": false}
    chat_template_kwargs: dict[str, Any] | None = None  # vLLM's / SGLang's: {"enable_thinking": false}
    #: Z.ai's spelling (GLM), Anthropic's shape: {"type": "disabled"} / {"type": "enabled"} (_thinking_switch)
    thinking: dict[str, Any] | None = None
    # asked for what no model here gives: refused by name (to_chat_request), never a text-only answer instead
    modalities: Annotated[list[str] | None, WithJsonSchema(_TEXT_ONLY)] = None  # ["text", "audio"]: a spoken answer
    audio: Annotated[dict[str, Any] | None, WithJsonSchema(_NOT_GIVEN)] = None  # its voice and format
    web_search_options: Annotated[dict[str, Any] | None, WithJsonSchema(_NOT_GIVEN)] = None  # hosted web search


def parse_body(raw: bytes) -> ChatCompletionBody:
    """Validate the JSON body; the error names the first offending field."""
    try:
        return ChatCompletionBody.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None


def bad_body(exc: ValidationError) -> BadRequest:
    """A body's validation error as a 400 naming the first offending field (``messages[0].role``)."""
    errors = exc.errors(include_url=False, include_input=False)
    # a list past its bound inside a union (content: a string or parts) is what to say, not "should be a string"
    first = next((e for e in errors if e["type"] == "too_long"), errors[0])
    if first["type"] == "json_invalid" or (first["type"] == "model_type" and not first["loc"]):
        where = (first.get("ctx") or {}).get("error")  # e.g. a lone UTF-16 surrogate escape, at line 1 column 58
        if where and "invalid unicode code point" in where:  # Latin-1 text (Windows PowerShell 5.1's default)
            where += "; JSON is sent as UTF-8"
        return BadRequest("the request body is not a JSON object" + (f" ({where})" if where else ""), None)
    param = field_path(first["loc"])
    return BadRequest(f"{param}: {first['msg']}" if param else first["msg"], param or None,
                      missing=first["type"] == "missing")


_UNION_TAGS = frozenset({"str", "int", "float", "bool"})


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "role")`` -> ``messages[0].role``; union member tags (``str``, ``list[...]``) dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _UNION_TAGS and "[" not in part:
            out += f".{part}" if out else part
    return out


def _text(content: str | list[ContentPart] | None, where: str, assistant: bool = False) -> str:
    """A message's text. An assistant's may hold refusal parts (openai-python's ChatCompletionAssistantMessageParam:
    text or refusal parts), read as the text of the refusal; other parts are refused by name."""
    if content is None or isinstance(content, str):
        return content or ""
    out = []
    for j, part in enumerate(content):
        if part.type == "text" and part.text is None:  # was "only text content parts are supported (got 'text')"
            raise BadRequest(f"{where}.content[{j}].text: a text part needs its 'text' (a string)",
                             f"{where}.content[{j}].text")
        if part.type == "refusal" and part.refusal is not None and assistant:  # what the model said, replayed
            out.append(part.refusal)
            continue
        if part.type != "text" or part.text is None:
            raise BadRequest(f"{where}.content[{j}].type: only text content parts are supported (got '{part.type}')",
                             f"{where}.content[{j}].type")
        out.append(part.text)
    return "".join(out)


def _check_content(m: MessageIn, where: str) -> None:
    """Refuse what OpenAI refuses: a message without content (an assistant's may carry tool calls instead)
    or with an empty list of parts. A model asked to answer nothing answers something anyway."""
    if m.content is None and not (m.role == "assistant" and (m.tool_calls or m.refusal)):
        need = "content or tool_calls" if m.role == "assistant" else "content"
        raise BadRequest(f"{where}.content: a '{m.role}' message needs {need}", f"{where}.content")
    if isinstance(m.content, list) and not m.content:
        raise BadRequest(f"{where}.content: empty array; expected at least one content part", f"{where}.content")


def tool_arguments(raw: str | dict[str, Any], where: str) -> dict[str, Any]:
    """A tool call's arguments sent back by the client (a JSON string) as a dict, or a 400 naming ``where``."""
    try:
        args = raw if isinstance(raw, dict) else json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        raise BadRequest(f"{where} is not valid JSON", where) from None
    if not isinstance(args, dict):
        raise BadRequest(f"{where} must be a JSON object", where)
    if nesting_depth(args) > MAX_ARGUMENT_DEPTH:  # what no provider could be sent (json.dumps recursion)
        raise BadRequest(f"{where} nests deeper than {MAX_ARGUMENT_DEPTH} levels", where)
    return args


def client_call(name: str, raw: str | dict[str, Any], call_id: str, where: str) -> ToolCall:
    """A tool call sent back by the client. Arguments that are text but no JSON object are what this gateway
    (like vLLM and llama.cpp's server) passes on when a model wrote them so: taken back as written, or the
    client's next turn — the error result its agent sends for that call — would be refused and the repair
    never happen. Nesting past the parser's depth stays a 400."""
    if isinstance(raw, str) and raw.strip():
        try:
            value = json.loads(raw)
        except RecursionError:
            raise BadRequest(f"{where} nests deeper than the parser goes", where) from None
        except ValueError as exc:
            return ToolCall(name, {}, call_id, raw=raw, invalid=f"not valid JSON ({json_problem(exc)})")
        if not isinstance(value, dict):
            return ToolCall(name, {}, call_id, raw=raw, invalid="JSON but not an object")
    return ToolCall(name, tool_arguments(raw, where), call_id)


def to_chat_request(body: ChatCompletionBody) -> ChatRequest:
    """The provider-neutral request; tool-call arguments arrive as JSON strings and leave as dicts.

    The body's fields are read from its ``__dict__``, where pydantic keeps them: an attribute of a pydantic model
    goes through its class's ``__getattr__`` hook, unspecialised, ~380 instructions more a read than a dict's item;
    a request read ~25 of them here (issue #15). The ``ChatRequest`` and each ``Message`` take positional
    arguments: a class called with keywords gets them as a dict built for the call (~850 instructions)."""
    fields = body.__dict__
    messages: list[Message] = []
    call_names: dict[str, str] = {}
    for i, m in enumerate(fields["messages"]):
        calls = []
        got = m.__dict__
        for j, c in enumerate(got["tool_calls"] or []):
            calls.append(client_call(c.function.name, c.function.arguments, c.id or "",
                                     f"messages[{i}].tool_calls[{j}].function.arguments"))
            call_names[c.id or ""] = c.function.name
        role = got["role"]
        content = got["content"]
        if role == "developer":
            role = "system"
        if content is None or type(content) is list:  # what _check_content refuses is in these two cases only
            _check_content(m, f"messages[{i}]")  # the path said only in an error: made only then (issue #15)
        call_id = got["tool_call_id"]
        if role == "tool" and not call_id:
            raise BadRequest(f"messages[{i}].tool_call_id is required for role 'tool'", f"messages[{i}].tool_call_id")
        text = content if type(content) is str else _text(content, f"messages[{i}]", role == "assistant")
        if not text and role == "assistant" and got["refusal"]:  # the SDK's message replayed after a refusal
            text = got["refusal"]
        messages.append(Message(
            role, text, calls, call_id or "",
            got["name"] or (call_names.get(call_id or "", "") if role == "tool" else ""),
        ))
    tool_choice = fields["tool_choice"]
    tools = [] if tool_choice == "none" else [
        ToolDefinition(t.function.name, t.function.description or "", {"type": "object", "properties": {}}
                       if t.function.parameters is None else t.function.parameters) for t in fields["tools"] or []
    ]
    if fields["functions"]:
        raise BadRequest("functions: the deprecated form of 'tools' is not supported; send "
                         "tools=[{\"type\": \"function\", \"function\": {...}}] (and tool_choice)", "functions")
    if tool_choice is not None and tool_choice not in ("none", "auto"):
        tools = chosen_tools(tools, tool_choice, "tool_choice")
    n = fields["n"]
    if n is not None and n != 1:  # was pydantic's "Input should be less than or equal to 1"
        raise BadRequest(f"n: only one choice per request is supported (n: 1, or leave n out), got {n}; for "
                         "more choices, send the request again", "n")
    _refuse_outputs_not_given(fields)
    # answered "logprobs": null, which evaluation harnesses read as no score
    if fields["logprobs"] or fields["top_logprobs"]:
        raise no_logprobs("logprobs" if fields["logprobs"] else "top_logprobs", "logprobs and top_logprobs")
    thinking = budget = None
    if fields["reasoning_effort"] is not None:
        thinking = effort_thinking(fields["reasoning_effort"], "reasoning_effort")
    elif fields["reasoning"] is not None or fields["chat_template_kwargs"] is not None:
        thinking = _thinking_asked(body)
    if thinking is None and fields["thinking"] is not None:
        thinking, budget = _thinking_switch(fields["thinking"])
    response_format = fields["response_format"]
    fmt = response_format.type if response_format else "text"
    schema = response_format.answer_schema if response_format else None
    # strict as the client said it (OpenAI's default: false), passed on: sent as true, a schema valid without it
    # (optional properties) was refused by OpenAI itself, and the chain ended on a 400 (vercel/ai#6484)
    strict = bool(response_format.json_schema.strict) if schema and response_format.json_schema else None
    return ChatRequest(messages, tools, thinking, budget, fields["max_completion_tokens"] or fields["max_tokens"],
                       fields["temperature"], fmt in ("json_object", "json_schema"), schema or None,
                       fields["parallel_tool_calls"] is False, None, None, fields["seed"],
                       fields["top_p"], strict, fields["frequency_penalty"], fields["presence_penalty"],
                       fields["top_k"], fields["min_p"], fields["repeat_penalty"], fields["logit_bias"] or None,
                       stop_list(stop) if (stop := fields["stop"]) else None)


def stop_list(stop: str | list[str] | None) -> list[str] | None:
    """The client's ``stop`` (a string or a list) as ChatRequest.stop: the non-empty ones, None when none."""
    return [s for s in ([stop] if isinstance(stop, str) else stop or []) if s] or None


def no_logprobs(param: str, fields: str) -> BadRequest:
    """Log probabilities asked for, on any API here: refused by name, never answered without them."""
    return BadRequest(f"{param}: log probabilities are not available through this gateway (its answers come from "
                      f"models and APIs that do not all give them); leave out {fields}", param)


def _refuse_outputs_not_given(fields: dict[str, Any]) -> None:
    """An answer in audio (``modalities: ["text", "audio"]`` and ``audio``: the SDK's and the AI SDK's audio models) or
    one searched on the web (``web_search_options``) is what the client asked for: answered as plain text it was a
    silent loss (``message.audio`` null, nothing searched), so it is a 400 naming the field. ``fields``: the body's
    ``__dict__`` (plain reads, issue #15)."""
    modalities = fields["modalities"]
    if modalities is not None and any(m != "text" for m in modalities):
        other = ", ".join(repr(m) for m in modalities if m != "text")
        raise BadRequest(f"modalities: only text answers are given here (got {other}); leave out modalities and "
                         "audio, or send [\"text\"]", "modalities")
    if fields["audio"] is not None:
        raise BadRequest("audio: answers are not spoken here (no audio output); leave out audio and modalities",
                         "audio")
    if fields["web_search_options"] is not None:
        raise BadRequest("web_search_options: the gateway's models do not search the web; leave it out (or give "
                         "the agent a search tool of its own)", "web_search_options")


def effort_thinking(effort: Any, param: str) -> bool:
    """Thinking off (``"none"``, and ``""`` as it always was) or on (any other word of :data:`REASONING_EFFORTS`) for
    an effort as the client gave it: chat's ``reasoning_effort``, OpenRouter's ``reasoning.effort`` (its words are
    of the set: openrouter.ai/docs, reasoning tokens), the Responses API's ``reasoning.effort`` (the SDK's same
    ``ReasoningEffort``). Another word is a 400 naming ``param`` and the set: it was read as thinking on, a typo (or
    another API's word) asking for what the client did not mean."""
    if effort == "" or effort in REASONING_EFFORTS:
        return effort not in ("none", "")
    shown = effort[:60] if isinstance(effort, str) else effort
    raise BadRequest(f"{param}: one of {', '.join(map(repr, REASONING_EFFORTS))} (or leave it out), got {shown!r}",
                     param)


def _thinking_asked(body: ChatCompletionBody) -> bool | None:
    """Thinking on or off in the spellings other servers take (OpenRouter's ``reasoning``, vLLM's and SGLang's
    ``chat_template_kwargs.enable_thinking`` — Qwen3 clients send it to turn thinking off); ignored, the model
    thought anyway (slower, and a local model may spend its ``max_tokens`` on thinking)."""
    reasoning = body.reasoning or {}
    if isinstance(reasoning.get("enabled"), bool):
        return bool(reasoning["enabled"])
    if reasoning.get("effort") is not None:
        return effort_thinking(reasoning["effort"], "reasoning.effort")
    enable = (body.chat_template_kwargs or {}).get("enable_thinking")
    return enable if isinstance(enable, bool) else None


def _thinking_switch(asked: dict[str, Any]) -> tuple[bool | None, int | None]:
    """``thinking: {"type": "disabled"}`` — how Z.ai's chat completions turn GLM's thinking off
    (docs.z.ai/guides/capabilities/thinking-mode: "If you want to disable thinking, use: "thinking": {"type":
    "disabled"}") — read as on/off, with an Anthropic-style ``budget_tokens``. Ignored, a
    client turning thinking off got a model that thought (slower, its ``max_tokens`` spent on thinking). Another
    ``type`` says nothing: the model's default stands."""
    kind = asked.get("type")
    if kind == "disabled":
        return False, None
    if kind not in ("enabled", "adaptive"):
        return None, None
    return True, thinking_budget(asked)


def thinking_budget(asked: dict[str, Any]) -> int | None:
    """``thinking.budget_tokens`` when a whole number above 0 (else the model's default); one past a 64-bit integer
    is a 400 naming it, as a ``seed`` or ``top_k`` past it is — it went to the backend as sent. A whole number sent as
    ``"1024"`` or ``1024.0`` is read as the body's other integers are (pydantic's lax mode); anything else that is no
    whole number (``"lots"``, ``1024.5``, ``true``) is a 400 naming it: it was the model's default, without a word."""
    budget = asked.get("budget_tokens")
    if isinstance(budget, str) and budget.strip().isascii() and budget.strip().isdigit() and len(budget) < 40:
        budget = int(budget)  # ascii, bounded: int() refuses "²" and past 4,300 digits (a ValueError, a 500)
    elif type(budget) is float and budget.is_integer():
        budget = int(budget)
    if budget is None:
        return None
    if type(budget) is not int:
        raise BadRequest(f"thinking.budget_tokens: a whole number of tokens (got {budget!r:.40})",
                         "thinking.budget_tokens")
    if budget > 2**63 - 1:
        raise BadRequest(f"thinking.budget_tokens: Input should be less than or equal to {2**63 - 1}",
                         "thinking.budget_tokens")
    return budget if budget > 0 else None


def chosen_tools(tools: list[ToolDefinition], choice: str | dict[str, Any], param: str) -> list[ToolDefinition]:
    """The tools offered under a ``tool_choice`` that demands a call: a named function is the only one offered
    (the model can call no other); a demand with no tools, or naming one not offered, is a 400, as
    OpenAI answers it — never a text answer to a client that asked for a call. The demand itself is
    not forced on the provider (``ChatRequest`` has no such field)."""
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return _allowed_tools(tools, choice, param)
    if isinstance(choice, str) and choice != "required":  # the Responses API's string: chat's is a Literal
        raise BadRequest(f"{param}: one of 'none', 'auto', 'required' or an object (got {choice[:60]!r})", param)
    if not tools:
        raise BadRequest(f"{param}: a tool call is demanded but no tools are given", param)
    if isinstance(choice, dict) and choice.get("type") != "any":  # Anthropic's "any": a call to any of them
        kind = choice.get("type")
        if kind not in _NAMED_CHOICES:  # was read as "required": any tool, whatever the type said
            raise BadRequest(f"{param}.type: 'function' (naming the tool) or 'allowed_tools' (got {kind!r:.60})",
                             f"{param}.type")
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        if not isinstance(name, str):  # was read as "required" too
            raise BadRequest(f"{param}: the name of the tool to call is required ({{'type': 'function', 'function': "
                             "{'name': …}} on chat completions, {'type': 'function', 'name': …} on responses)", param)
        named = [t for t in tools if t.name == name]
        if not named:
            raise BadRequest(f"{param}: the function '{name}' is not among the tools given "
                             f"({', '.join(t.name for t in tools)})", param)
        return named
    return tools


#: a ``tool_choice`` object that names one tool: OpenAI's chat (``function``: {"type": "function", "function":
#: {"name"}};
#: ``custom``, a custom tool's), the Responses API's (``function``: {"type": "function", "name"}) and Anthropic's
#: (``tool``); openai-openapi's ChatCompletionToolChoiceOption and ToolChoiceParam, Anthropic's ToolChoiceToolParam
_NAMED_CHOICES = ("function", "custom", "tool")


def _allowed_tools(tools: list[ToolDefinition], choice: dict[str, Any], param: str) -> list[ToolDefinition]:
    """OpenAI's ``{"type": "allowed_tools"}`` (the SDK's ChatCompletionAllowedToolChoiceParam; the Responses API
    puts ``mode`` and ``tools`` at its top): only the listed tools are offered, ``mode: "required"`` demands a call.
    It was read as a demand for any of the tools: every tool offered, and with none given a 400."""
    spec = choice.get("allowed_tools", choice)
    listed = spec.get("tools") if isinstance(spec, dict) else None
    if not isinstance(listed, list):
        raise BadRequest(f"{param}: allowed_tools needs 'tools', a list of the tools the model may call", param)
    names = set()
    for entry in listed:
        fn = entry.get("function") if isinstance(entry, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise BadRequest(f"{param}: each allowed tool is {{'type': 'function', 'function': {{'name': …}}}}", param)
        names.add(name)
    if missing := sorted(names - {t.name for t in tools}):
        raise BadRequest(f"{param}: allowed tools not among the tools given: {', '.join(missing)}", param)
    allowed = [t for t in tools if t.name in names]
    if spec.get("mode") == "required" and not allowed:
        raise BadRequest(f"{param}: a tool call is demanded but no tools are allowed", param)
    return allowed


# -- answers ---------------------------------------------------------------------------------


def finish_reason(response: ChatResponse) -> str:
    if response.tool_calls:
        return "tool_calls"
    if response.truncated:
        return "length"
    if response.stop_reason in ("refusal", "content_filter"):  # Anthropic's refusal is OpenAI's content_filter
        return "content_filter"
    return "stop"


def tool_calls_out(calls: list[ToolCall], request_id: str, first_index: int = 0) -> list[dict[str, Any]]:
    return [
        {"index": first_index + i, "id": c.id or f"call_{request_id}_{first_index + i}", "type": "function",
         "function": {"name": c.name, "arguments": c.arguments_text()}}
        for i, c in enumerate(calls)
    ]


def usage_out(usage: Usage) -> dict[str, Any]:
    """OpenAI's ``CompletionUsage`` (chat and text completions). ``prompt_tokens`` is the whole prompt, the cached part
    included; the part read from the provider's prompt cache goes in ``prompt_tokens_details.cached_tokens``, only when
    the provider said (OpenAI's CompletionUsage.prompt_tokens_details?: {cached_tokens}, openai-node's generated types:
    https://v03.api.js.langchain.com/interfaces/_langchain_openai.OpenAIClient.Completions.CompletionUsage-1.html;
    https://docs.x.ai/developers/advanced-api-usage/prompt-caching/usage-and-pricing). OpenAI's shape has no field for
    a cache write (Anthropic's cache_creation_input_tokens): those stay counted in ``prompt_tokens`` only."""
    out: dict[str, Any] = {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                           "total_tokens": usage.input_tokens + usage.output_tokens}
    if usage.cache_read_tokens:  # one int test when the provider gave none: the hot path stays as it was
        out["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    return out


def completion(request_id: str, created: int, model: str, response: ChatResponse) -> dict[str, Any]:
    # refusal: required (null when none) by the spec's ChatCompletionResponseMessage (openai-openapi@f85dbe22)
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None, "refusal": None}
    if response.tool_calls:
        calls = tool_calls_out(response.tool_calls, request_id)
        for c in calls:
            del c["index"]
        message["tool_calls"] = calls
    if response.thinking:
        message["reasoning_content"] = response.thinking
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(response), "logprobs": None}],
        "usage": usage_out(response.usage),
    }


class ChunkWriter:
    """Renders ``chat.completion.chunk`` SSE events for one response (the envelope is built once)."""

    def __init__(self, request_id: str, created: int, model: str):
        self.request_id = request_id
        envelope = json.dumps({"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
                               "created": created, "model": model})
        self._head = b"data: " + envelope[:-1].encode() + b', "choices": ['
        self.tool_index = 0

    def _event(self, choices: str, extra: str = "") -> bytes:
        return self._head + choices.encode() + b"]" + extra.encode() + b"}\n\n"

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._event(json.dumps({"index": 0, "delta": delta, "finish_reason": finish}))

    def role(self) -> bytes:
        return self.delta({"role": "assistant", "content": ""})

    def text(self, text: str) -> bytes:
        return self.delta({"content": text})

    def thinking(self, text: str) -> bytes:
        return self.delta({"reasoning_content": text})

    def tool_call(self, call: ToolCall) -> bytes:
        out = self.delta({"tool_calls": tool_calls_out([call], self.request_id, self.tool_index)})
        self.tool_index += 1
        return out

    def finish(self, reason: str) -> bytes:
        return self.delta({}, reason)

    def usage(self, usage: Usage) -> bytes:
        return self._event("", ', "usage": ' + json.dumps(usage_out(usage)))


DONE = b"data: [DONE]\n\n"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code, **extra}}


def error_event(message: str, type_: str, code: str | None = None) -> bytes:
    return b"data: " + json.dumps(error_body(message, type_, None, code)).encode() + b"\n\n"
