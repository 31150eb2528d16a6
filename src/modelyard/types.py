"""Provider-neutral types: what every provider speaks after translating its wire format.

Plain slotted dataclasses rather than pydantic models: these are created per streamed
chunk on the hot path, and validation already happened at the edges (config, gateway).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    """A structured call the model asked for. ``arguments`` is always a parsed dict. When the model wrote
    arguments that are no JSON object (a small local model's cut-off ``{"path": "a"``), ``arguments`` is ``{}``,
    ``raw`` keeps them as written and ``invalid`` says why: a call the model can repair, not a failed answer
    (the policy: ``providers.http.tool_call``)."""

    name: str
    arguments: dict[str, Any]
    id: str = ""
    raw: str | None = None
    invalid: str = ""

    def arguments_text(self) -> str:
        """The arguments for a wire that carries them as a string (OpenAI's): as the model wrote them when
        invalid, as vLLM and llama.cpp's server pass them on, so the client's SDK or agent does its repair."""
        return self.raw if self.raw is not None else json.dumps(self.arguments)

    def arguments_object(self) -> dict[str, Any]:
        """The arguments for a wire that needs an object (Anthropic's ``input``, Ollama's): the invalid text
        wrapped as ``{"INVALID_JSON": text}``, Anthropic's documented shape for arguments that are no JSON."""
        return {"INVALID_JSON": self.raw} if self.raw is not None else self.arguments


def invalid_arguments(calls: list[ToolCall]) -> str:
    """For the routing log's attempt row: which calls came with arguments that are no JSON object, and the
    parser's word — never the arguments themselves (they may hold what the person typed)."""
    return "; ".join(f"tool call '{c.name[:64]}' arguments invalid: {c.invalid}" for c in calls if c.invalid)


@dataclass(slots=True)
class ToolDefinition:
    """A tool offered to the model; ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: for role "tool": which call this answers, and the tool's name (Ollama wants the name)
    tool_call_id: str = ""
    name: str = ""
    #: reasoning text of an assistant turn; kept for the log, sent back only to a server that refuses a turn without
    #: it (DeepSeek's thinking mode: providers/openai.py)
    thinking: str = ""


@dataclass(slots=True, frozen=True)
class ServerTimes:
    """How long the server itself says it took, in nanoseconds (Ollama's ``load_duration``, ``prompt_eval_duration``,
    ``eval_duration``; llama.cpp's ``timings.prompt_ms`` and ``predicted_ms``): None where it said nothing of a part."""

    prompt_ns: int | None = None
    eval_ns: int | None = None
    load_ns: int | None = None


@dataclass(slots=True)
class Usage:
    """Tokens of one answer. ``input_tokens`` is the whole prompt; the two cache counts say how much of it the
    provider read from its prompt cache and wrote to it (Anthropic reports them apart from ``input_tokens`` and bills
    them at 0.1x and 1.25x its input price: :meth:`modelyard.config.schema.Price.cost`)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: the part of ``cache_write_tokens`` written to a one-hour cache (Anthropic's ``cache_creation.
    #: ephemeral_1h_input_tokens``: billed at 2x the input price, a five-minute write at 1.25x)
    cache_write_1h_tokens: int = 0
    #: what the provider said the answer cost, USD (OpenRouter's ``usage.cost``, in credits of a dollar): billed, so
    #: preferred to the config's price (None: not stated)
    stated_cost_usd: float | None = None
    #: the server's own generation speed, output tokens per second of decoding (Ollama's eval_count / eval_duration,
    #: llama.cpp's timings.predicted_per_second): measured where the tokens were made, so preferred to a client's clock
    tokens_per_s: float | None = None
    #: the server's own timing of the prompt and the answer, passed on as it stated them (the gateway's Ollama wire)
    server_times: ServerTimes | None = None

    def __add__(self, other: Usage) -> Usage:
        stated = None if self.stated_cost_usd is None or other.stated_cost_usd is None \
            else self.stated_cost_usd + other.stated_cost_usd  # a sum with a part unstated would be short
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens,
                     cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
                     stated_cost_usd=stated)


@dataclass(slots=True, frozen=True)
class TextPrompt:
    """A text to be continued as it is: what a text-completion client sends (OpenAI's legacy ``/v1/completions``,
    Ollama's ``/api/generate``, Mistral's ``/v1/fim/completions``), carried beside the chat conversion of it.

    A backend that can take a prompt verbatim (an OpenAI-compatible ``/v1/completions``, Ollama's ``/api/generate``,
    llama-cpp-python's ``create_completion``) is sent this instead of the messages, so no chat template wraps it.
    ``suffix``: the text after the gap (fill-in-the-middle), for the server to put in the model's own FIM tokens.
    ``templated``: the client wrote the model's template and special tokens itself (Ollama's ``raw: true``, Continue's
    FIM templates): a chat-only backend (Anthropic's) would show them to the model as a user's words, so it refuses
    the attempt and the chain moves on; otherwise such a backend answers the chat conversion.
    ``extra``: other files as context for a fill-in-the-middle, ``(filename, text)`` each — llama-server's ``/infill``
    ``input_extra``, which puts them before the prefix in the model's repository-level FIM tokens.
    """

    text: str
    suffix: str = ""
    templated: bool = False
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, frozen=True)
class EmbedInput:
    """Texts to embed, one vector each, in order (OpenAI's ``/v1/embeddings``, Ollama's ``/api/embed``), carried on a
    :class:`ChatRequest` so the router walks the same chain, slots, bounds and cooldowns as for an answer; its
    ``messages`` then hold the longest text, for the router's context check and the log. ``dimensions``: the length
    the client asked the vectors cut to, passed to backends that take it (and cut here where one ignores it)."""

    #: each a text, or token ids (OpenAI's ``input`` as arrays of integers: ids in the client's tokenizer, sent on
    #: as they came to a backend that takes them — OpenAI-compatible servers do; Ollama takes text only)
    texts: tuple[str | tuple[int, ...], ...]
    dimensions: int | None = None
    #: Ollama's ``truncate`` as the client sent it (None: not sent — Ollama cuts a text past the context; False: a
    #: 400 instead). OpenAI-compatible servers never cut: a text past the context is their 400 either way
    truncate: bool | None = None

    @property
    def has_tokens(self) -> bool:
        """Whether any input is token ids rather than text."""
        return any(type(t) is tuple for t in self.texts)


@dataclass(slots=True)
class ChatRequest:
    """One model call. ``model`` is filled by the router with the provider's model id."""

    messages: list[Message]
    tools: list[ToolDefinition] = field(default_factory=list)
    #: None = provider default; False = explicitly off; True = on
    thinking: bool | None = None
    thinking_budget: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    #: ask for a JSON object as the answer (Ollama ``format``, OpenAI ``response_format``)
    json_output: bool = False
    #: constrain that JSON object to a JSON Schema where the server can (llama.cpp grammar,
    #: Ollama ``format``, OpenAI ``json_schema``); implies ``json_output``
    json_schema: dict[str, Any] | None = None
    #: the client takes at most one tool call per answer (OpenAI ``parallel_tool_calls: false``, Anthropic
    #: ``tool_choice.disable_parallel_tool_use``): the gateway passes on only the first (gateway/intake.py); the
    #: Anthropic provider asks its API for one
    single_tool_call: bool = False
    #: a text-completion request: sent verbatim where the backend can (see :class:`TextPrompt`); ``messages`` then
    #: hold its chat conversion, for a backend that cannot and for the router's estimates and log
    prompt: TextPrompt | None = None
    #: an embeddings request: the backend returns vectors (one ``embedding`` chunk), not an answer
    embed: EmbedInput | None = None
    #: the client's sampling seed (OpenAI's ``seed``, Ollama's ``options.seed``): passed on where the backend takes one
    #: (OpenAI-compatible servers, Ollama, llama.cpp), so a client's repeatable run stays repeatable; Anthropic's API
    #: has none
    seed: int | None = None
    #: nucleus sampling (OpenAI's and Anthropic's ``top_p``, Ollama's ``options.top_p``): passed on where the backend
    #: takes it (OpenAI-compatible servers, Ollama, llama.cpp); not to Anthropic's API, whose newer models refuse it
    #: beside a temperature
    top_p: float | None = None
    #: whether the server must follow ``json_schema`` exactly (OpenAI's ``json_schema.strict``, false unless the client
    #: says: "Only a subset of JSON Schema is supported when strict is true" — a schema with optional properties is
    #: refused under it, vercel/ai#6484); None: the client's API has no such word (Ollama's ``format``, Anthropic's
    #: output format), and an OpenAI-compatible server is asked to follow the schema exactly
    json_strict: bool | None = None
    #: OpenAI's ``frequency_penalty`` and ``presence_penalty`` (-2 to 2; Ollama's options of the same names): passed on
    #: where the backend takes them (OpenAI-compatible servers, Ollama, llama.cpp) unless 0, every server's default —
    #: LangChain's OpenAI LLM sends 0 on every request, and not every endpoint takes the field; Anthropic's has neither
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    #: top-k sampling (Anthropic's ``top_k``, Ollama's ``options.top_k``): passed on where the backend takes it
    #: (OpenAI-compatible servers — vLLM, llama-server, LM Studio take ``top_k``; one that refuses it is learned —,
    #: Ollama, llama.cpp); not to Anthropic's API, as ``top_p``
    top_k: int | None = None
    #: min-p sampling (a token's probability at least this share of the likeliest one's, 0 to 1) and llama.cpp's
    #: repetition penalty (above 0; 1 is none): not OpenAI's, but Open WebUI sends both in an OpenAI body and Ollama
    #: takes ``options.min_p``/``options.repeat_penalty``. Passed on where the backend takes them (Ollama, llama.cpp,
    #: OpenAI-compatible servers — vLLM's ``min_p``/``repetition_penalty``, llama-server's and LM Studio's
    #: ``min_p``/``repeat_penalty``; one that refuses a field is learned); not to Anthropic's API, which has neither
    min_p: float | None = None
    repeat_penalty: float | None = None
    #: OpenAI's ``logit_bias``: token ids (as the JSON's string keys) to a bias from -100 to 100, in the tokenizer of
    #: the model the client had in mind. Passed on where the backend takes it (OpenAI-compatible servers — vLLM,
    #: llama-server, LM Studio —; the embedded llama.cpp with integer ids); Ollama's and Anthropic's APIs have none:
    #: the routing log says it was left out (providers/sampling.py). None: not given, or given empty
    logit_bias: dict[str, float] | None = None
    #: the client's stop sequences (OpenAI's ``stop``, Ollama's ``options.stop``, text completions' ``stop``): sent to
    #: every backend in its own form (OpenAI-compatible ``stop``, at most 4 — OpenAI's limit —, Ollama's
    #: ``options.stop``, llama.cpp's ``stop``, Anthropic's ``stop_sequences``), so the model stops there instead of
    #: writing on to ``max_tokens``; the gateway still cuts the text at them (gateway/stops.py), for a server that
    #: ignores or refuses them, and the router closes the model's stream at the first met (router/stop_watch.py).
    #: None: none given
    stop: list[str] | None = None
    #: stop sequences applied by modelyard only, never sent to a backend: the Messages API's ``stop_sequences``, whose
    #: answer names the one it stopped at (``stop_sequence``), which a backend that stopped there itself does not say.
    #: The router closes the model's stream once the text reaches one (router/stop_watch.py), as it does for a ``stop``
    #: the backend did not take; the gateway cuts the text there. None: none given
    cut_at: list[str] | None = None


def repair_text(text: str) -> str:
    """Text every layer can encode (UTF-8 for SQLite, Telegram, a terminal): a surrogate pair that
    arrived as two separate code units (a JavaScript server splitting an emoji across chunks, JSON
    ``\\ud83d`` escapes) is joined back into its character; a lone surrogate becomes U+FFFD. Text
    that was already encodable comes back unchanged."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


#: deepest nesting of a tool call's arguments that is passed on: real arguments are a few levels deep; ~1000
#: (which orjson still parses) is past what json.dumps can write back from inside a request's call stack
MAX_ARGUMENT_DEPTH = 64


def nesting_depth(value: Any, limit: int = MAX_ARGUMENT_DEPTH) -> int:
    """How deeply ``value`` nests lists and dicts, counted without recursion and no further than ``limit`` + 1."""
    depth, level = 0, [value]
    while depth <= limit:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [v for c in containers for v in (c.values() if isinstance(c, dict) else c)]
    return depth


ChunkKind = Literal["text", "thinking", "tool_call", "usage", "done", "embedding"]


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed answer.

    ``text``/``thinking`` carry deltas; ``tool_call`` carries one complete call (providers
    assemble fragments first, so callers never see half a JSON object); ``usage`` carries
    token counts; ``done`` carries the stop reason; ``embedding`` carries every vector of an
    embeddings request (:class:`EmbedInput`), checked (providers/embeddings.py).
    """

    kind: ChunkKind
    text: str = ""
    tool_call: ToolCall | None = None
    usage: Usage | None = None
    stop_reason: str = ""
    #: the deltas a text/thinking chunk joins: a provider may join those that arrived in one network read
    #: (one chunk through every layer instead of one each, issue #15); counts stay per delta. An ``embedding``
    #: chunk's: the calls its vectors took (providers/embed_batches.py)
    pieces: int = 1
    vectors: list[list[float]] | None = None


#: stop reasons that mean the answer hit its token budget: "length" (OpenAI, Ollama, llama.cpp),
#: "max_tokens" (Anthropic), or the context window ("model_context_window_exceeded", Anthropic since 2025)
#: the stop of an answer cut where the model's context ended (Anthropic's word; the embedded model says it too)
CONTEXT_FULL = "model_context_window_exceeded"
TRUNCATED_STOPS = frozenset({"length", "max_tokens", CONTEXT_FULL})
#: the one name the routing log, the route line and the gateway use for a truncated answer
LENGTH = "length"
#: stop reasons that mean the provider's policy withheld (part of) the answer: OpenAI's and Azure's "content_filter",
#: Anthropic's "refusal" (its streaming classifier). A policy answer, passed on as such, not a broken model's
FILTERED_STOPS = frozenset({"content_filter", "refusal"})


def finish_reason_of(stop_reason: str) -> str | None:
    """The provider's stop reason as the log keeps it: ``length`` for every spelling of "out of
    tokens", the provider's own word otherwise, None when nothing was said."""
    if stop_reason in TRUNCATED_STOPS:
        return LENGTH
    return stop_reason or None


@dataclass(slots=True)
class ChatResponse:
    """A whole answer, assembled from chunks."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = ""
    #: the configured model that produced this answer (set by the router)
    model: str = ""
    #: an embeddings request's vectors, one per text in order (None for an answer)
    vectors: list[list[float]] | None = None
    #: the calls the vectors took (providers/embed_batches.py), for the routing log's note
    vector_calls: int = 1

    @property
    def truncated(self) -> bool:
        """The answer stopped because it hit ``max_tokens``, not because it was finished."""
        return self.stop_reason in TRUNCATED_STOPS

    def add(self, chunk: Chunk) -> None:
        if chunk.kind == "text":
            self.text += chunk.text
        elif chunk.kind == "thinking":
            self.thinking += chunk.text
        elif chunk.kind == "tool_call" and chunk.tool_call is not None:
            self.tool_calls.append(chunk.tool_call)
        elif chunk.kind == "usage" and chunk.usage is not None:
            self.usage = chunk.usage
        elif chunk.kind == "done":
            self.stop_reason = chunk.stop_reason
        elif chunk.kind == "embedding":
            self.vectors, self.vector_calls = chunk.vectors, chunk.pieces
