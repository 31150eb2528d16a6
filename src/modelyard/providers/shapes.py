"""The shapes of provider data modelyard accepts, and the one place every chunk is checked.

Servers and proxies bend their protocols: content arrives as a list of parts instead of a
string (Mistral, GLM and GPT-OSS relays, LiteLLM), token counts arrive as strings or null, an
emoji is split into two UTF-16 halves across chunks (JavaScript servers), a stream carries no
choices at all, a proxy answers with a 50 MB line. Providers turn their wire format into
:class:`Chunk` with the helpers here; :func:`checked` then guards every provider's stream the
same way, so nothing downstream (router, log, gateway, terminal, Telegram) ever sees a value
it cannot handle. Anything that cannot be made sense of is a :class:`ProviderError` with
reason ``malformed_response`` — the chain moves on — never a TypeError somewhere later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import orjson

from modelyard.errors import ProviderError, Reason
from modelyard.providers.inline_think import InlineThink, Phase
from modelyard.types import (
    CONTEXT_FULL,
    FILTERED_STOPS,
    MAX_ARGUMENT_DEPTH,
    TRUNCATED_STOPS,
    Chunk,
    ChunkKind,
    ToolCall,
    Usage,
    nesting_depth,
    repair_text,
)

log = logging.getLogger(__name__)

#: part types whose text is the answer, and part types whose text is reasoning
TEXT_PARTS = frozenset({"text", "output_text", "refusal"})
THINKING_PARTS = frozenset({"thinking", "reasoning", "reasoning_text"})
#: a token count beyond this is not a count (a bug or garbage upstream): it is logged as 0
_MAX_TOKENS = 10**9
#: characters of a stop reason kept (the known ones are words: "stop", "tool_calls", "max_tokens")
_MAX_STOP = 64


def malformed(message: str) -> ProviderError:
    return ProviderError(Reason.MALFORMED_RESPONSE, message)


def _part_text(part: dict[str, Any], key: str, where: str) -> str:
    """The text of one part: a string, or nested text parts (Mistral's ``thinking: [{type: text}]``,
    GPT-OSS's ``summary: [{type: summary_text}]``)."""
    value = part.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        out = []
        for inner in value:
            if isinstance(inner, str):
                out.append(inner)
            elif isinstance(inner, dict) and isinstance(inner.get("text"), str):
                out.append(inner["text"])
            else:
                raise malformed(f"{where}: a {key} part holds {type(inner).__name__}, not text")
        return "".join(out)
    raise malformed(f"{where}: a {key} part holds {type(value).__name__}, not text")


def content_parts(value: Any, where: str) -> tuple[str, str]:
    """(text, thinking) of a ``content`` field: a string, null, one part, or a list of parts.

    Text parts (``text``/``output_text``/``refusal``) are the answer; ``thinking``/``reasoning``
    parts are reasoning. Any other part (an image, an unknown type) or shape is malformed: the
    answer cannot be shown as text, so it must not pass as one.
    """
    if value is None:
        return "", ""
    if isinstance(value, str):
        return value, ""
    parts = [value] if isinstance(value, dict) else value
    if not isinstance(parts, list):
        raise malformed(f"{where} is a {type(value).__name__}, not text or a list of content parts")
    text, thinking = [], []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            text.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS:
            text.append(_part_text(part, "refusal" if kind == "refusal" else "text", where))
        elif kind in THINKING_PARTS:
            key = next((k for k in ("thinking", "reasoning", "summary", "text") if part.get(k) is not None), "text")
            thinking.append(_part_text(part, key, where))
        else:
            shown = kind if isinstance(kind, str) else type(part).__name__
            raise malformed(f"{where}[{i}] is a '{shown}' part: only text and reasoning parts can be answered")
    return "".join(text), "".join(thinking)


def token_count(value: Any) -> int:
    """A usage figure as an int; null, garbage, negative or absurd values count as 0 (usage is
    bookkeeping: it must never fail an answer)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value == value:  # not NaN
        n = int(value) if abs(value) < 1e18 else 0
    elif isinstance(value, str):
        try:
            n = int(float(value.strip()))
        except (ValueError, OverflowError):
            return 0
    else:
        return 0
    return n if 0 <= n <= _MAX_TOKENS else 0


def usage_from(value: Any, input_key: str, output_key: str) -> Usage | None:
    """Usage from a usage object, or None when there is none (or it is not an object)."""
    if not isinstance(value, dict):
        return None
    given, made = value.get(input_key), value.get(output_key)
    if type(given) is int and type(made) is int and 0 <= given <= _MAX_TOKENS and 0 <= made <= _MAX_TOKENS:
        return Usage(given, made)  # what token_count gives such counts, without its two calls (issue #15)
    return Usage(token_count(given), token_count(made))


#: the stop reasons of the specs, as they spell them: the rest is read by :func:`_spelled`
_USUAL_STOPS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call", "end_turn", "tool_use",
                          "max_tokens", "stop_sequence", "refusal", "pause_turn", "model_context_window_exceeded"})
#: Gemini's own finish reasons, which its OpenAI-compatible gateways pass on in capitals (qwen-code#9884): the ones
#: that mean the answer was withheld; and Z.ai's GLM API's "sensitive" (its safety audit stopped the answer: docs.z.ai
#: chat-completion, dify#7559, any-llm#1204) — passed on as a "stop", the answer cut by policy handed on as whole, an
#: empty one refused as unusable and the model blamed
_WITHHELD = frozenset({"safety", "recitation", "blocklist", "prohibited_content", "spii", "image_safety", "sensitive"})


#: Mistral's word for an answer cut where the model's context ended, ``finish_reason: "model_length"`` (its OpenAPI
#: spec's enum: stop, length, model_length, error, tool_calls; laravel/ai#955, inspect_ai#514): Anthropic's
#: :data:`~modelyard.types.CONTEXT_FULL`. Not known as a truncation, the cut answer was passed on as complete
_CONTEXT_ENDED = "model_length"


def _spelled(stop: str) -> str:
    """A stop reason in the spelling the rest of modelyard reads: Gemini gateways' "STOP" and "MAX_TOKENS" were not
    known as a natural stop and a truncation (an answer cut at max_tokens passed as complete, an empty one refused
    as unusable), its "SAFETY" not as a policy answer; Mistral's "model_length" not as a truncation."""
    lowered = stop.lower()
    if lowered == _CONTEXT_ENDED:
        return CONTEXT_FULL
    return "content_filter" if lowered in _WITHHELD else lowered


#: stop reasons that say the answer is a tool call (OpenAI's, its legacy functions API's, Anthropic's)
CALL_STOPS = frozenset({"tool_calls", "function_call", "tool_use"})
#: what a tool call written as text holds (a ``<tool_call>`` tag, a JSON ``{"name": …}`` block fenced or not): the
#: gateway and the agent loop read such text (tool_text.py), so it is passed on to them
CALL_MARKS = ("<tool_call>", '"name"')


def without_call(model: str, stop: str, offered: bool, spelled: bool) -> str:
    """The stop reason of an answer that said it ended in a tool call (``stop`` in :data:`CALL_STOPS`) and made none.

    Servers say so: vLLM with ``tool_choice: "required"`` and no parser that found a call (vllm#53255), a relay of
    Claude that sends ``finish_reason: "tool_calls"`` after a preamble and no call (GitHub Copilot, hermes-agent#75926:
    "I'll read the brief file first." ended 75% of an agent's runs as its answer), a reasoning model told
    ``tool_choice: "none"`` (FastGPT#7339), an Anthropic proxy's ``stop_reason: "tool_use"`` with no block
    (mastra#14187). Passed on as it came, the answer was its preamble with the word of a call that never came.

    Tools offered, and no call written as text in the answer (``spelled``): the call the model announced is lost, an
    unusable answer (the next model is asked). A call written as text: "stop", for the layers that read such text (a
    model allowed ``tool_text_fallback`` has it made a call). No tools offered: no call could have come; the text is
    the answer, "stop"."""
    if offered and not spelled:
        raise ProviderError(Reason.UNUSABLE_REPLY, f"the server ended the answer with '{stop}' but sent no tool call: "
                            "the call the model announced never came")
    log.info("model %s: the answer ended with '%s' and no tool call came; passed on as text (finish 'stop')", model,
             stop)
    return "stop"


#: why an answer with nothing in it is refused (an empty "success" would reach the client as the answer)
_EMPTY = "the model stopped without answering: no text, no tool call"
_EMPTY_THOUGHT = ("the model only thought: no text, no tool call after its reasoning (a reasoning parser that never "
                  "saw the end of the thinking puts the whole answer there)")


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class _Joiner:
    """Holds back a trailing high surrogate until the next piece, so a character split into its two
    UTF-16 halves across chunks comes out whole; lone halves become U+FFFD."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, text: str) -> str:
        if self.pending:
            text, self.pending = self.pending + text, ""
        if text.isascii():
            return text
        if "\ud800" <= text[-1] <= "\udbff":
            text, self.pending = text[:-1], text[-1]
        return repair_text(text)

    def flush(self) -> str:
        pending, self.pending = self.pending, ""
        return "\ufffd" if pending else ""


def _writable(call: ToolCall) -> None:
    """A tool call every wire can write back, or malformed_response. NaN and Infinity are not JSON (Python's parser
    takes them): the chat completions wire passed ``{"n": NaN}`` on as arguments no JSON.parse reads, the Anthropic
    and Ollama wires as ``null`` — another value, passed as the model's. Lone UTF-16 halves (a JavaScript server's
    ``\\ud83d``) become U+FFFD as in text: orjson refuses them, and the Ollama stream answered 500 with a traceback."""
    try:
        json.dumps(call.arguments, allow_nan=False)
    except (ValueError, TypeError):
        raise malformed(f"tool call '{call.name}' has NaN or Infinity in its arguments: not JSON") from None
    if not call.name.isascii():
        call.name = repair_text(call.name)
    if not call.id.isascii():
        call.id = repair_text(call.id)
    if call.raw is not None and not call.raw.isascii():  # invalid arguments, kept as written: text like any
        call.raw = repair_text(call.raw)
    try:
        orjson.dumps(call.arguments)
    except TypeError:  # a lone surrogate (or an integer beyond 64 bits, which json writes and this keeps)
        call.arguments = json.loads(repair_text(json.dumps(call.arguments, ensure_ascii=False)))


async def checked(chunks: AsyncGenerator[Chunk, None], limit: int) -> AsyncGenerator[Chunk, None]:
    """Every provider's stream, guarded: text is text (split surrogate pairs joined), tool calls are
    named with object arguments, usage is counted in ints, the answer stays under ``limit`` bytes,
    and the stream ends with a ``done`` chunk. An answer with no content *and* no stop reason
    (e.g. an OpenAI-style stream of ``"choices": []`` chunks, then ``[DONE]``) is malformed, not an
    empty success."""
    joiners: dict[ChunkKind, _Joiner] = {"text": _Joiner(), "thinking": _Joiner()}
    size = 0
    content = False
    answered = False  # text or a tool call: thinking alone answers nothing
    inline = InlineThink()  # an answer opening with <think>: its block is thinking (inline_think.py)
    splitting = True  # until the answer's first words decide it
    try:  # what contextlib.aclosing does, without its two coroutines per stream (issue #15)
        async for got in chunks:
            if splitting and (got.kind == "text" or got.kind == "done"):
                if got.kind == "done":
                    parts: Sequence[Chunk] = (*inline.flush(), got)
                elif isinstance(got.text, str):
                    parts = inline.feed(got)
                    splitting = inline.phase is not Phase.PLAIN
                else:
                    parts = (got,)  # refused below
            else:
                parts = (got,)
            for chunk in parts:
                kind = chunk.kind
                if kind == "text" or kind == "thinking":
                    text = chunk.text
                    # what feed() passes unchanged
                    if type(text) is str and text.isascii() and not joiners[kind].pending:
                        if not text:
                            continue
                        size += len(text)
                    else:
                        if not isinstance(text, str):
                            raise malformed(f"{kind} arrived as {type(text).__name__}, not text")
                        text = joiners[kind].feed(text)
                        if not text:
                            continue
                        size += _size(text)
                    if size > limit:
                        raise ProviderError(Reason.RESPONSE_TOO_LARGE,
                                            f"the answer passed {limit / 2**20:g} MB (max_response_mb)")
                    content = True
                    if kind == "text" and not answered and not text.isspace():
                        answered = True
                    yield chunk if text is chunk.text else Chunk(kind, text=text, pieces=chunk.pieces)
                elif kind == "tool_call":
                    call = chunk.tool_call
                    if not isinstance(call, ToolCall) or not isinstance(call.name, str) or not call.name:
                        raise malformed("a tool call without a name")
                    if not isinstance(call.arguments, dict):
                        raise malformed(f"tool call '{call.name}' has arguments that are not a JSON object")
                    if nesting_depth(call.arguments) > MAX_ARGUMENT_DEPTH:
                        raise malformed(f"tool call '{call.name}': arguments nest over {MAX_ARGUMENT_DEPTH} levels "
                                        "deep")
                    if not isinstance(call.id, str):
                        call.id = str(call.id)
                    _writable(call)
                    content = answered = True
                    yield chunk
                elif kind == "usage":
                    u = chunk.usage
                    if (type(u) is Usage and type(u.input_tokens) is int and type(u.output_tokens) is int
                            and 0 <= u.input_tokens <= _MAX_TOKENS and 0 <= u.output_tokens <= _MAX_TOKENS):
                        yield chunk  # counts a provider already made ints (usage_from): nothing to repair
                    else:
                        yield Chunk("usage", usage=Usage(token_count(getattr(u, "input_tokens", 0)),
                                                         token_count(getattr(u, "output_tokens", 0)),
                                                         token_count(getattr(u, "cache_read_tokens", 0)),
                                                         token_count(getattr(u, "cache_write_tokens", 0))))
                elif kind == "done":
                    if joiners["text"].pending or joiners["thinking"].pending:  # a half held back: said as U+FFFD
                        for name, joiner in joiners.items():
                            if rest := joiner.flush():
                                content = True
                                answered = answered or (name == "text" and not rest.isspace())
                                yield Chunk(name, text=rest)
                    stop = chunk.stop_reason if isinstance(chunk.stop_reason, str) else str(chunk.stop_reason or "")
                    if not stop.isascii() or len(stop) > _MAX_STOP:  # the server's word, as the log keeps it: text
                        stop = repair_text(stop[:_MAX_STOP])  # SQLite can store (a lone UTF-16 half), and short
                    if stop and stop not in _USUAL_STOPS:
                        stop = _spelled(stop)
                    if not content and not stop:
                        raise malformed("the stream ended with no content and no finish reason (no choices?)")
                    if not answered and stop not in TRUNCATED_STOPS and stop not in FILTERED_STOPS:
                        raise ProviderError(Reason.UNUSABLE_REPLY, (inline.only_thought() if inline.seen else
                                                                _EMPTY_THOUGHT) if content else _EMPTY)
                    yield Chunk("done", "", None, None, stop or "stop")  # positional: a keyword call builds a dict
                    return
                else:
                    raise malformed(f"unknown chunk kind {kind!r}")
    finally:
        await chunks.aclose()
    raise ProviderError(Reason.CONNECTION_DROPPED, "the stream ended without its end marker")
