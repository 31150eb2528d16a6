"""Ollama's native API wire format (``/api/chat``, ``/api/generate``, ``/api/tags``, ``/api/show``,
``/api/version``): a request body in, a provider-neutral :class:`ChatRequest` out; an answer out as one
JSON object or as NDJSON lines, the way Ollama answers.

Many local-first tools speak only Ollama's API (the ``ollama`` libraries, home-automation and note
apps, chat UIs' "Ollama" connections). Served here, they get modelyard's chains, slots, cooldowns and
log by changing only the address: ``model`` names an agent, a configured model or ``auto`` (a
``:latest`` tag is accepted and ignored). What it maps, and what it refuses with a 400 naming the field:

- ``messages`` (``system``, ``user``, ``assistant`` with ``tool_calls`` whose arguments are objects,
  ``tool`` with ``tool_name``), ``tools`` (function tools, OpenAI's shape), ``format`` (``"json"`` or a
  JSON schema), ``think`` (a boolean or a level), ``options.temperature``, ``options.num_predict``,
  ``options.stop`` (sent to the model, and the text is cut at the first of them here too, ``stops.py``);
  ``/api/generate``: ``prompt``, ``system``, ``suffix`` and ``raw``. With ``raw: true`` (the client's own template
  and FIM tokens) or a ``suffix``, the prompt goes verbatim to a backend that takes prompts (OpenAI-compatible
  ``/v1/completions``, Ollama's ``/api/generate``, the embedded model): :class:`~modelyard.types.TextPrompt`. A
  chat-only backend (Anthropic's) is asked a ``suffix`` as an instruction and the text with a marker (``fill_in.py``)
  and refuses a raw prompt for its attempt (the chain moves on). ``raw`` with ``system`` or ``suffix`` is refused as
  Ollama refuses it. Images (in, or asked for:
  ``width``, ``height``, ``steps``) and log probabilities (``logprobs``, ``top_logprobs``) are refused, and
  ``suffix`` beside ``messages`` (``/api/chat`` has no such field).
  ``keep_alive`` (checked as Ollama reads it, ollama_duration.py) and the other ``options`` are modelyard's to decide
  (the models' own config) and are ignored; ``template`` without ``raw`` is the client's own Go template, rendered
  as Ollama renders it and its prompt sent verbatim as a raw one is (ollama_template.py); the deprecated
  ``context`` (an earlier answer's token ids, which no answer here carries) is refused rather than dropped with the
  conversation it held (``/api/show``'s template mentions ``.Suffix``, so Continue sends ``suffix`` rather than a
  prompt in its own FIM template with ``raw: true``; both are served).
- A request with no messages (no prompt) is Ollama's "load the model": answered at once with
  ``done_reason: "load"`` (``"unload"`` with ``keep_alive`` 0, as Ollama answers); ``serve`` keeps its local models
  warm anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.gateway.fill_in import HOLE, fill_in_messages
from modelyard.gateway.ollama_duration import ZERO_DURATION, check_keep_alive
from modelyard.gateway.ollama_template import render
from modelyard.gateway.wire import (
    MAX_MESSAGES,
    MAX_TOOLS,
    BadRequest,
    bad_body,
    no_logprobs,
    stops_bounded,
)
from modelyard.router.records import Attempt, RequestRecord
from modelyard.types import (
    MAX_ARGUMENT_DEPTH,
    ChatRequest,
    ChatResponse,
    Message,
    TextPrompt,
    ToolCall,
    ToolDefinition,
    nesting_depth,
)

#: the Ollama API level these endpoints speak, reported by ``/api/version`` (clients gate features on it)
API_VERSION = "0.12.0"
LATEST = ":latest"
_ROLES = ("system", "user", "assistant", "tool")
#: ``think`` as a word: Ollama's levels (api/types.go ThinkValue.UnmarshalJSON refuses any other: "invalid think
#: value"), and "none" and "" read as off here as they always were
THINK_LEVELS = ("high", "medium", "low", "max", "none", "")


class OllamaBody(BaseModel):
    """``/api/chat`` and ``/api/generate`` alike (generate's ``prompt``/``system`` become messages)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] | None = Field(None, max_length=MAX_MESSAGES)
    prompt: str | None = None
    system: str | None = None
    images: list[Any] | None = None
    suffix: str | None = None
    stream: bool | None = True  # null: the default (Ollama's is a pointer: nil streams)
    tools: list[dict[str, Any]] | None = Field(None, max_length=MAX_TOOLS)
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    think: bool | str | None = None
    #: /api/generate: the prompt is the client's own, template and special tokens included (sent verbatim: TextPrompt)
    raw: bool | None = None
    #: /api/generate: a Go template for the prompt — refused beside ``raw`` (as Ollama does), else rendered and its
    #: prompt sent as a raw one (ollama_template.py); ``context``: the deprecated token ids of an earlier answer,
    #: refused (parse_ollama_body)
    template: str | None = None
    context: list[Any] | None = None
    logprobs: bool | None = None  # asked for: refused, as on chat completions (no model's answer carries them here)
    top_logprobs: int | None = None
    #: an image asked of Ollama's image models (/api/generate; its "Image Generation (Experimental)"): refused
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    #: read only to answer a load-only request: 0 there is Ollama's "unload the model" (see :attr:`unloads`); any
    #: other value is modelyard's to decide, as the module's docstring says
    keep_alive: Any = None
    #: the name as the client sent it, ``:latest`` included: Ollama echoes ``req.Model`` verbatim in its answers
    #: (``model`` is the name resolved against the agents and models)
    asked: str = Field(default="", exclude=True)

    @property
    def loads_only(self) -> bool:
        """No conversation at all: Ollama's way of asking to load the model."""
        return not self.messages and not self.prompt and not self.suffix

    @property
    def unloads(self) -> bool:
        """A load-only request with ``keep_alive`` 0: Ollama's "unload the model", answered ``done_reason: "unload"``
        (ollama/ollama server/routes.go, GenerateHandler and ChatHandler: ``req.KeepAlive.Duration == 0`` with no
        prompt or messages expires the runner and answers ``DoneReason: "unload"``). Was answered ``"load"``."""
        alive = self.keep_alive
        if isinstance(alive, bool):
            return False
        if isinstance(alive, int | float):  # seconds (api.Duration)
            return alive == 0
        return isinstance(alive, str) and ZERO_DURATION.fullmatch(alive.strip()) is not None


def parse_ollama_body(raw: bytes) -> OllamaBody:
    try:
        body = OllamaBody.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None
    body.asked = body.model
    body.model = body.model.removesuffix(LATEST)
    if body.stream is None:
        body.stream = True
    if body.images:
        raise BadRequest("images: not supported by this gateway", "images")
    check_keep_alive(body.keep_alive)
    if isinstance(body.think, str) and body.think not in THINK_LEVELS:  # was read as thinking on, whatever it said
        raise BadRequest(f"think: invalid think value {body.think[:60]!r} (must be \"high\", \"medium\", \"low\", "
                         "\"max\", true, or false)", "think")
    if body.logprobs or body.top_logprobs:  # was ignored: an answer without them, no word why
        raise no_logprobs("logprobs" if body.logprobs else "top_logprobs", "logprobs and top_logprobs")
    if (asked := next((f for f in ("width", "height", "steps") if getattr(body, f) is not None), None)) is not None:
        # was a text answer to a client waiting for an image
        raise BadRequest(f"{asked}: image generation is not supported by this gateway (its models answer in text); "
                         "leave out width, height and steps", asked)
    if body.suffix and body.messages is not None:  # generate's field: ignored, the model would answer without it
        raise BadRequest("suffix: fill-in-the-middle goes with a prompt (/api/generate), not with messages", "suffix")
    if body.context and body.messages is None:
        # token ids of the model that answered before (Ollama detokenizes them ahead of the prompt: the conversation so
        # far); ignored, the model answered without the conversation, and none of this gateway's answers carries one
        raise BadRequest("context: the deprecated conversation memory of /api/generate (one model's token ids) is not "
                         "kept here; send the conversation as messages to /api/chat, or in the prompt", "context")
    if body.raw and body.messages is None and (body.system or body.suffix or body.template):
        # Ollama's own refusal for system and template (server/routes.go GenerateHandler: "raw mode does not support
        # template, system, or context"); a suffix it leaves out in raw mode, an answer without it: refused here, named
        field = "system" if body.system else "suffix" if body.suffix else "template"
        raise BadRequest(f"{field}: raw mode does not support template, system, or suffix (a raw prompt is the whole "
                         "input, in the model's own template); leave out raw or put it in the prompt", field)
    if body.template and body.messages is None and not body.raw and (body.prompt or body.suffix):
        # the client's own template (/api/generate): rendered as Ollama renders it, and the prompt it writes sent
        # verbatim, as a raw one is (ollama_template.py). Was dropped without a word: the model's own template served
        body.prompt = render(body.template, prompt=body.prompt or "", system=body.system or "",
                             suffix=body.suffix or "")
        body.raw, body.system, body.suffix, body.template = True, None, None, None
    return body


def _arguments(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):  # some clients send OpenAI's string form
        try:
            value = orjson.loads(value) if value.strip() else {}
        except orjson.JSONDecodeError:
            raise BadRequest(f"{where} is not valid JSON", where) from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: expected an object", where)
    if nesting_depth(value) > MAX_ARGUMENT_DEPTH:
        raise BadRequest(f"{where} nests deeper than {MAX_ARGUMENT_DEPTH} levels", where)
    return value


def stop_sequences(body: OllamaBody) -> list[str]:
    """``options.stop``: a list of strings (a lone string taken as one)."""
    stop = (body.options or {}).get("stop")
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise BadRequest("options.stop: expected a list of strings", "options.stop")
    try:
        stops_bounded(stops)
    except ValueError as exc:
        raise BadRequest(f"options.stop: {exc}", "options.stop") from None
    return stops


def _messages(body: OllamaBody) -> list[Message]:
    out: list[Message] = []
    if body.messages is None:
        if body.system:
            out.append(Message("system", body.system))
        if body.suffix:
            return out + fill_in_messages(body.prompt or "", body.suffix)
        if body.prompt:
            out.append(Message("user", body.prompt))
        return out
    last_call = ""
    for i, item in enumerate(body.messages):
        where = f"messages[{i}]"
        role = item.get("role")
        if role not in _ROLES:
            raise BadRequest(f"{where}.role: expected one of {', '.join(_ROLES)} (got {role!r})", f"{where}.role")
        if item.get("images"):
            raise BadRequest(f"{where}.images: not supported by this gateway", f"{where}.images")
        content = item.get("content") or ""
        if not isinstance(content, str):
            raise BadRequest(f"{where}.content: expected a string", f"{where}.content")
        calls = []
        listed = item.get("tool_calls") or []
        if not isinstance(listed, list):
            raise BadRequest(f"{where}.tool_calls: expected a list", f"{where}.tool_calls")
        for j, call in enumerate(listed):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise BadRequest(f"{where}.tool_calls[{j}].function: needs a name", f"{where}.tool_calls[{j}]")
            call_id = _string(call.get("id")) or f"call_{i}_{j}"
            arguments = _arguments(function.get("arguments", {}), f"{where}.tool_calls[{j}].function.arguments")
            calls.append(ToolCall(function["name"], arguments, call_id))
            last_call = call_id
        name = _string(item.get("tool_name")) or _string(item.get("name"))
        out.append(Message(role, content, calls, tool_call_id=(_string(item.get("tool_call_id")) or last_call)
                           if role == "tool" else "", name=name if role == "tool" else ""))
    return out


def _string(value: Any) -> str:
    """A field that should be a string, or "" (an id or name of another type is not passed on to a model)."""
    return value if isinstance(value, str) else ""


def _tools(body: OllamaBody) -> list[ToolDefinition]:
    out = []
    for i, tool in enumerate(body.tools or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise BadRequest(f"tools[{i}].function.name: required", f"tools[{i}].function.name")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        description = function.get("description") or ""
        out.append(ToolDefinition(function["name"], description if isinstance(description, str) else "",
                                  parameters if isinstance(parameters, dict) else {"type": "object"}))
    return out


def _text_prompt(body: OllamaBody) -> TextPrompt | None:
    """/api/generate's prompt, to be sent as it is where a backend can take it: with ``raw: true`` (Continue's and
    other autocomplete clients' own FIM template: docs.ollama.com/api/generate, "raw: if true no formatting will be
    applied to the prompt"), or a fill-in-the-middle ``suffix`` (put in the model's own FIM tokens by a backend that
    has them; a chat-only one gets the chat conversion, fill_in.py). A plain prompt is a chat turn, as Ollama
    renders it through the model's template."""
    if body.messages is not None or not (body.prompt or body.suffix):
        return None
    if body.raw:
        return TextPrompt(body.prompt or "", templated=True)
    if body.suffix and not body.system:
        return TextPrompt(body.prompt or "", body.suffix)
    return None


#: the ``options`` read here and the type Ollama decodes each into (api/types.go ``Options``: float32 or int)
_OPTION_TYPES = {"temperature": float, "top_p": float, "min_p": float, "repeat_penalty": float,
                 "presence_penalty": float, "frequency_penalty": float, "num_predict": int, "seed": int, "top_k": int}


def typed_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with each that is read here checked for its type as Ollama checks it (api/types.go
    ``Options.FromMap``: "option %q must be of type float32" / "integer"; a whole number sent as ``100.0`` is taken as
    an integer, as Go's float64 is): one that is no number (``"0.5"``, ``"hot"``, ``true``) was left out without a
    word — the model sampled at its own temperature, wrote past the client's ``num_predict``. Now a 400 naming it.
    Options not read here (``num_ctx``, ``mirostat``, unknown keys) are the models' own config's, as before."""
    out = options
    for key, kind in _OPTION_TYPES.items():
        value = options.get(key)
        if value is None:
            continue
        named = "integer" if kind is int else "float32"
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            shown = f"{value[:40]!r}" if isinstance(value, str) else repr(value)[:40]
            raise BadRequest(f'options.{key}: option "{key}" must be of type {named} (got {shown})', f"options.{key}")
        if kind is int and isinstance(value, float):
            out = {**out, key: int(value)}  # Go's int64(t): 100.0 is 100, 1.5 is 1
    return out


def to_chat_request(body: OllamaBody) -> ChatRequest:
    options = typed_options(body.options or {})
    limit = options.get("num_predict")
    temperature = options.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool) and temperature < 0:
        # every other API here refuses it (0-2, Anthropic's 0-1); sent on, an OpenAI-compatible server or Claude
        # refused it as the request's fault on every model of the chain, one after another
        raise BadRequest("options.temperature: expected a number from 0", "options.temperature")
    schema = body.format if isinstance(body.format, dict) else None
    if isinstance(body.format, str) and body.format not in ("", "json"):
        raise BadRequest("format: expected \"json\" or a JSON schema object", "format")
    stop = stop_sequences(body)  # sent to the model, and applied to the answer too (ollama_route.py)
    return ChatRequest(
        messages=_messages(body),
        prompt=_text_prompt(body),
        tools=_tools(body),
        thinking=None if body.think is None else body.think not in (False, "", "none"),
        max_tokens=limit if isinstance(limit, int) and limit > 0 else None,
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        json_output=bool(body.format),
        json_schema=schema,
        seed=_seed(options.get("seed")),
        top_p=_top_p(options.get("top_p")),
        top_k=_top_k(options.get("top_k")),
        frequency_penalty=_penalty(options.get("frequency_penalty")),
        presence_penalty=_penalty(options.get("presence_penalty")),
        min_p=_bounded(options.get("min_p"), "options.min_p", "a number from 0 to 1", lambda v: 0 <= v <= 1),
        repeat_penalty=_bounded(options.get("repeat_penalty"), "options.repeat_penalty", "a number above 0",
                                lambda v: v > 0),
        stop=[s for s in stop if s] or None,
    )


def _seed(value: Any) -> int | None:
    """``options.seed`` (docs.ollama.com/modelfile: "seed: Sets the random number seed to use for generation"), passed
    on; a value that is no 64-bit integer is left out."""
    return value if type(value) is int and -(2**63) <= value < 2**63 else None


def _top_p(value: Any) -> float | None:
    """``options.top_p`` (docs.ollama.com/modelfile: "top_p: Works together with top-k … (Default: 0.9)"), passed on
    when it is a number from 0 to 1; another value is left out, as Ollama's other options here are."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1 else None


def _top_k(value: Any) -> int | None:
    """``options.top_k`` (docs.ollama.com/modelfile: "top_k: Reduces the probability of generating nonsense …
    (Default: 40)"), passed on when a whole number of at least 0; another value is left out, as Ollama's other
    options here are. Was ignored: the backend sampled at its own top_k."""
    return value if type(value) is int and 0 <= value < 2**63 else None


def _bounded(value: Any, name: str, expected: str, within: Callable[[float], bool]) -> float | None:
    """``options.min_p`` / ``options.repeat_penalty`` (docs.ollama.com/modelfile: "min_p … Alternative to the top_p",
    "repeat_penalty: Sets how strongly to penalize repetitions"), passed on — they were ignored, Open WebUI's
    settings of them had no effect. A number out of range is a 400 naming it (sent on, every backend of the chain
    would refuse it, or llama.cpp divide by a zero penalty); one that is no number never gets here (typed_options)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if not math.isfinite(value) or not within(value):
        raise BadRequest(f"{name}: expected {expected}, got {value}", name)
    return float(value)


def _penalty(value: Any) -> float | None:
    """``options.frequency_penalty`` / ``presence_penalty`` (Ollama's api.Options), passed on when a number from -2 to
    2 (OpenAI's range); another value is left out."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and -2 <= value <= 2 else None


# -- answers ---------------------------------------------------------------------------------


def timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def done_reason(response: ChatResponse, stopped: bool = False) -> str:
    """``stopped``: the text was cut at a stop sequence (Ollama's ``stop``, whatever the model did after)."""
    return "length" if response.truncated and not response.tool_calls and not stopped else "stop"


def line(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload) + b"\n"


def error_line(message: str) -> bytes:
    return line({"error": message})


class OllamaWriter:
    """One answer as Ollama's chat (``message``) or generate (``response``) objects, with its timings."""

    def __init__(self, model: str, *, chat: bool, thinking: bool, started_ns: int):
        self.model = model
        self.chat = chat
        self.thinking = thinking  # the client asked for it (``think``): thinking is returned
        self.started_ns = started_ns
        self.first_ns: int | None = None
        self.stopped = False  # the text was cut at one of the client's stop sequences

    def _piece(self, text: str = "", thinking: str = "", calls: list[ToolCall] | None = None) -> dict[str, Any]:
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            if calls:
                message["tool_calls"] = [{"id": call.id or f"call_{i}", "function": {
                    "index": i, "name": call.name, "arguments": call.arguments_object()}}
                    for i, call in enumerate(calls)]
            return {"model": self.model, "created_at": timestamp(), "message": message}
        out: dict[str, Any] = {"model": self.model, "created_at": timestamp(), "response": text}
        if thinking:
            out["thinking"] = thinking
        return out

    def delta(self, text: str = "", thinking: str = "", calls: list[ToolCall] | None = None) -> bytes:
        if self.first_ns is None:
            self.first_ns = time.time_ns()
        return line({**self._piece(text, thinking if self.thinking else "", calls), "done": False})

    def final(self, response: ChatResponse, *, whole: bool = False, measured: Attempt | None = None) -> dict[str, Any]:
        """``measured``: the answering attempt, whose times the router took (see :func:`durations`)."""
        now = time.time_ns()
        body = self._piece(response.text if whole else "",
                           response.thinking if whole and self.thinking else "",
                           response.tool_calls if whole else None)
        prompt_ns, eval_ns = durations(measured, self.first_ns or now, now, self.started_ns)
        stated = response.usage.server_times
        load_ns = 0
        if stated is not None:  # the backend's own figures where it stated them: ours include the way to it and back
            prompt_ns = prompt_ns if stated.prompt_ns is None else stated.prompt_ns
            eval_ns = eval_ns if stated.eval_ns is None else stated.eval_ns
            load_ns = stated.load_ns or 0
        return {**body, "done": True, "done_reason": done_reason(response, self.stopped),
                "total_duration": now - self.started_ns, "load_duration": load_ns,
                "prompt_eval_count": response.usage.input_tokens, "prompt_eval_duration": prompt_ns,
                "eval_count": response.usage.output_tokens, "eval_duration": eval_ns}

    def loaded(self, unloaded: bool = False) -> dict[str, Any]:
        """The answer to a load-only request (``unloaded``: one with ``keep_alive`` 0, Ollama's "unload")."""
        return {**self._piece(), "done": True, "done_reason": "unload" if unloaded else "load"}

    def replay(self, response: ChatResponse, measured: Attempt | None = None) -> list[bytes]:
        """A buffered answer as the lines a live stream would have produced."""
        out = []
        if response.text or response.thinking:
            out.append(self.delta(response.text, response.thinking))
        if response.tool_calls:
            out.append(self.delta(calls=response.tool_calls))
        return [*out, line(self.final(response, measured=measured))]


def answering(record: RequestRecord) -> Attempt | None:
    """The attempt that answered ``record`` (its last, when a model answered), for :func:`durations`."""
    return record.attempts[-1] if record.model is not None and record.attempts else None


def durations(measured: Attempt | None, first_ns: int, now_ns: int, started_ns: int) -> tuple[int, int]:
    """``prompt_eval_duration`` and ``eval_duration`` in ns, as Ollama means them (docs.ollama.com/api/usage: "how
    long it took to evaluate the prompt", "how long it took to generate the output tokens"; clients such as
    Open WebUI and ``ollama run --verbose`` show eval_count / eval_duration as tokens/s).

    From what the router measured of the answering model: its time to first token, and the rest of its answer — the
    same split as the log's tok/s. A buffered answer (no stream, or tools) reached this writer all at once: timed
    here it read ``eval_duration: 0``. An answer that came in one piece cannot be split: its whole time is the
    eval_duration (tokens/s is then a lower bound). Without a measured attempt, the gateway's own clock."""
    if measured is not None and measured.duration_ms:
        ttft_ms = measured.ttft_ms or 0.0
        gen_ms = measured.duration_ms - ttft_ms
        return round(ttft_ms * 1e6), round((gen_ms if gen_ms > 0 else measured.duration_ms) * 1e6)
    return first_ns - started_ns, now_ns - first_ns


def model_entry(name: str, kind: str, chain: list[str], modified: str) -> dict[str, Any]:
    """One ``/api/tags`` entry: an agent, ``auto`` or a model, with what it routes to in ``details``."""
    digest = hashlib.sha256(f"modelyard:{kind}:{name}".encode()).hexdigest()
    return {"name": name, "model": name, "modified_at": modified, "size": 0, "digest": digest,
            "details": {"parent_model": "", "format": "modelyard", "family": kind, "families": [kind],
                        "parameter_size": "", "quantization_level": "", "modelyard_chain": chain}}


#: ``/api/show``'s template: the text a model is shown (fill_in.py's, with ``.Suffix``). A template that mentions
#: ``.Suffix`` is how a client tells a model takes ``suffix`` (Ollama's ``insert`` capability): Continue's Ollama
#: provider sends prompt + ``suffix`` to such a model (each backend then puts them in its model's own FIM tokens, or a
#: chat-only one is asked in words), and to any other its own FIM template with ``raw: true`` (served too, verbatim
#: where a backend takes prompts; a guess at the template a chain's models share)
TEMPLATE = f"{{{{ if .Suffix }}}}{{{{ .Prompt }}}}{HOLE}{{{{ .Suffix }}}}{{{{ else }}}}{{{{ .Prompt }}}}{{{{ end }}}}"


def show(name: str, kind: str, chain: list[str], context: int | None, modified: str) -> dict[str, Any]:
    """``/api/show``: what a client asks before using a model (its capabilities, its context)."""
    entry = model_entry(name, kind, chain, modified)
    info: dict[str, Any] = {"general.architecture": "modelyard", "general.basename": name}
    if context:
        info["modelyard.context_length"] = context
    return {"modelfile": f"# modelyard {kind} {name}: {' → '.join(chain)}\n", "parameters": "", "template": TEMPLATE,
            "details": entry["details"], "model_info": info, "capabilities": ["completion", "tools", "insert"],
            "modified_at": modified}
