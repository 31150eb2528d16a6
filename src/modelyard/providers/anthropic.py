"""Anthropic Messages API: ``x-api-key`` + ``anthropic-version`` headers, SSE events
(message_start, content_block_*, message_delta, message_stop, ping, error), tool use with
partial-JSON input, extended thinking. Unknown event types are ignored, as documented."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import Any

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.error_words import error_words
from modelyard.providers.http import (
    ALLOWANCE_SPENT,
    BALANCE_SPENT,
    BALANCE_WORDS,
    CONTEXT_FULL,
    NOT_JSON,
    SAID_ERROR,
    USAGE_LIMIT_WORDS,
    HttpProvider,
    error_field,
    found_after_end,
    loads,
    ollama_said,
    said_error,
    stream_error,
    tool_call,
    try_loads,
)
from modelyard.providers.output_cap import anthropic_max_output
from modelyard.providers.profile import ModelProfile, ThinkingSwitch
from modelyard.providers.sampling import not_taken
from modelyard.providers.shapes import CALL_MARKS, CALL_STOPS, token_count, without_call
from modelyard.tokens import request_tokens
from modelyard.types import ChatRequest, Chunk, Message, ToolCall, Usage

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
MIN_THINKING_BUDGET = 1024
#: thinking as Claude Opus 4.7 and later take it (they refuse ``budget_tokens``). ``display`` "summarized": their
#: default is "omitted", thinking blocks with no text (claude-code#49268), and thinking was asked for to be seen
ADAPTIVE_THINKING = {"type": "adaptive", "display": "summarized"}
#: the API paused a long turn (server tools' iteration limit): what came is not the whole answer, and passing it on
#: as one would end it mid-way with finish_reason "stop"
PAUSED = "pause_turn"


def _extract_error(body: Any) -> tuple[str, str]:
    err = body.get("error") or {}
    if not isinstance(err, dict):  # a proxy's plain-text error
        return "", str(err)
    kind, message = str(err.get("type", "")), error_words(err)  # "message", or a relay's "msg" (error_words.py)
    if isinstance(rid := body.get("request_id"), str) and rid:
        # the API's id of the failed request, which its support asks for (its error bodies carry it since 2025)
        message = f"{message} (request_id {rid[:64]})"
    if (ollama := ollama_said(message)) is not None:  # Ollama's full queue, a model not pulled, via /v1/messages
        return ollama
    if USAGE_LIMIT_WORDS.search(message):
        # an Ollama cloud model's spent allowance through Ollama's Anthropic-compatible /v1/messages (Claude Code
        # pointed at Ollama): middleware/anthropic.go's writeError wraps the words as a 429 "rate_limit_error"
        # (anthropic/anthropic.go NewError). As a rate limit without a wait it was asked again every few seconds for
        # the hour, the session or the week; it cools as on /api/chat
        return ALLOWANCE_SPENT, f"the cloud plan's usage allowance is spent: {message}"
    if kind == "invalid_request_error" and message.startswith(_ACCOUNT_REFUSALS):
        # the account, not the request: a 400 that lasts until someone pays or Anthropic lifts it. As bad_request
        # the model was asked, and refused, on every request, never cooled; now it cools as for a 402
        return BALANCE_SPENT, message
    if BALANCE_WORDS.search(message):  # an Anthropic-compatible API's empty balance under a 429 (http.BALANCE_WORDS)
        return BALANCE_SPENT, message
    if message.startswith(_LONG_CONTEXT_REFUSED):
        return CONTEXT_FULL, (f"{message} (the prompt is past the context the account takes without extra usage: "
                              "another model may take it)")
    return kind, message


#: a subscription's 429 ``rate_limit_error`` for a prompt past the standard context, which only extra usage pays for
#: (anthropics/claude-code#33514, #50784; a ~317k-token context: griffinmartin/opencode-claude-auth#64). As a rate
#: limit it was asked again and the model cooled for every request, short ones too (router-for-me/CLIProxyAPI#2464: "I
#: need to wait for model cooling down"; Wei-Shaw/sub2api#572: "should not be rate-limited for 5 minutes"). The
#: request's, as a prompt past the context is: the next model, this one not counted as sick
_LONG_CONTEXT_REFUSED = "Extra usage is required for long context"


#: how the API refuses an account under a 400 invalid_request_error: an empty balance ("Your credit balance is too low
#: to access the Anthropic API. Please go to Plans & Billing...": claude-code#4684, #66314, claude-quickstarts#229) and
#: a disabled organization ("This organization has been disabled.": claude-code#54311, #72457)
_ACCOUNT_REFUSALS = ("Your credit balance is too low", "This organization has been disabled")


#: the client's sampling fields the Messages API has no field for (its reference: temperature, top_p, top_k and
#: stop_sequences only): left out, and the routing log says so (:meth:`AnthropicProvider.left_out`)
NO_SUCH_FIELD = ("seed", "frequency_penalty", "presence_penalty", "min_p", "repeat_penalty", "logit_bias")
#: the API's refusal of a sampling field the model no longer takes: Claude Opus 4.7 and later, "`temperature` is
#: deprecated for this model." (inspect_ai#3721, Roo-Code#12162), "`top_p` is deprecated for this model"
#: (router-for-me/CLIProxyAPI#4383), "`top_k` is deprecated for this model" (vellum-ai/vellum-assistant#35820; all
#: three probed live: mnfst/modelparams.dev#238); Bedrock's words have no backticks (amazon-bedrock-copilot-chat#546)
_DEPRECATED = re.compile(r"`?(temperature|top_p|top_k)`? is deprecated for this model")
#: the API's refusal of ``temperature`` beside ``top_p`` (Claude Sonnet 4.5, Haiku 4.5, Opus 4.1 and later): 400
#: invalid_request_error "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
#: (di-sukharev/opencommit#520, chatboxai/chatbox#2670, BerriAI/litellm#15097)
_NOT_BOTH = "cannot both be specified for this model"


#: tool turns whose signed thinking a provider keeps (:attr:`AnthropicProvider._signed`): a few blocks each, the oldest
#: dropped first; an agent loop needs the last turn's only, a gateway serves several conversations at once
MAX_SIGNED_TURNS = 256
#: the block types the API signs and wants back unmodified (``thinking`` with its ``signature``, ``redacted_thinking``
#: with its encrypted ``data``)
_SIGNED_TYPES = frozenset({"thinking", "redacted_thinking"})


def _signed_block(block: dict[str, Any]) -> dict[str, Any] | None:
    """A thinking or redacted_thinking block as the API wants it back, or None when it carries no signature (a proxy's
    or an Anthropic-compatible server's unsigned thinking: sent back, the API would refuse it)."""
    if block.get("type") == "thinking":
        text, signature = block.get("thinking"), block.get("signature")
        if isinstance(text, str) and isinstance(signature, str) and signature:
            return {"type": "thinking", "thinking": text, "signature": signature}
    elif block.get("type") == "redacted_thinking":
        data = block.get("data")
        if isinstance(data, str) and data:
            return {"type": "redacted_thinking", "data": data}
    return None


def _messages(messages: list[Message], signed: dict[str, list[dict[str, Any]]] | None = None
              ) -> tuple[str, list[dict[str, Any]]]:
    """Split out the system prompt and fold tool results into user turns, as the API wants. ``signed``: the thinking
    blocks this model signed for a tool turn, by the turn's tool-call ids, put back at the head of that turn."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    ids = _ToolIds()
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": ids.result(m.tool_call_id), "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content.strip() else []
            if signed and (kept := next((signed[c.id] for c in m.tool_calls if c.id in signed), None)):
                blocks = [dict(b) for b in kept] + blocks
            blocks += [{"type": "tool_use", "id": ids.call(c.id), "name": c.name, "input": c.arguments_object()}
                       for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
        elif m.role == "assistant" and not m.content.strip():
            # a turn with nothing to show (another model's thinking-only or refused turn, an OpenAI client's
            # content null): the API refuses it, "all messages must have non-empty content" (hermes-agent#11906), so
            # a history with one could not be taken over by Claude. Left out: the API joins the turns around it
            continue
        else:
            out.append({"role": m.role, "content": m.content})
    if not out and system.strip():
        # only a system prompt (a client that sends its whole prompt so; an OpenAI model answers it): the API refuses
        # an empty list, "messages: at least one message is required" (LiteLLM#3019) — the prompt becomes the turn
        return "", [{"role": "user", "content": system}]
    return system, out


def _unsigned(messages: Any) -> Any:
    """``messages`` without thinking and redacted_thinking blocks (turns left with nothing are left out)."""
    if not isinstance(messages, list):
        return messages
    out = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            content = [b for b in content if not (isinstance(b, dict) and b.get("type") in _SIGNED_TYPES)]
            if not content:
                continue
            m = {**m, "content": content}
        out.append(m)
    return out


class _ToolIds:
    """Tool-call ids of a history as the API takes them: it refuses an id outside ``^[a-zA-Z0-9_-]+$`` and a
    tool_result that answers no tool_use. A history begun by another model carries its ids — Kimi K2's
    ``functions.get_weather:0`` through vLLM, none at all from Ollama — so the fallback to Claude, there to take
    over, was a 400 (bad_request) on every such turn. An odd id is made valid (the same one each time it occurs),
    a missing one is made up and given to the next result without an id, in order."""

    __slots__ = ("_made", "_unnamed", "_used")

    def __init__(self) -> None:
        self._made: dict[str, str] = {}
        self._used: set[str] = set()
        self._unnamed: list[str] = []

    def call(self, raw: str) -> str:
        if raw:
            return self._valid(raw)
        made = self._valid(f"toolu_unnamed_{len(self._used)}")
        self._unnamed.append(made)
        return made

    def result(self, raw: str) -> str:
        if raw:
            return self._valid(raw)
        return self._unnamed.pop(0) if self._unnamed else "toolu_unanswered"

    def _valid(self, raw: str) -> str:
        if (made := self._made.get(raw)) is None:
            made = raw if _TOOL_ID.fullmatch(raw) else _NOT_IN_ID.sub("_", raw)
            while made in self._used:
                made += "_"
            self._made[raw] = made
            self._used.add(made)
        return made


_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
_NOT_IN_ID = re.compile(r"[^a-zA-Z0-9_-]")


def _tool_call(block: dict[str, Any]) -> ToolCall:
    """A tool_use block as a call. Its input streams as input_json_delta pieces after an empty ``input: {}``
    (the documented shape); Anthropic-compatible servers and proxies (Ollama's /v1/messages, OpenAI-to-Anthropic
    adapters) send the whole ``input`` in content_block_start and no delta: taken as the arguments then, where
    they were read as {} — a call with its arguments lost, passed on as a good one. Adapters that copy OpenAI's
    ``arguments`` across send that ``input`` as a JSON string (bamboo-agent#351): read as the object it holds."""
    if not block["json"] and isinstance(block["input"], dict | str):
        return tool_call(block["name"], block["input"], block["id"])
    return tool_call(block["name"], block["json"] or "{}", block["id"])


def _tokens(reported: Any, counts: list[int] | None = None) -> list[int]:
    """[input, output, cache read, cache write, one-hour cache write] from an Anthropic usage object, over ``counts``
    known before.
    message_delta's figures are cumulative (as documented): each one given replaces the one before, but an input
    count of 0 does not undo one known (LiteLLM's proxy and SGLang send the prompt's count only at the end, 0 in
    message_start). The API counts the cached part of the prompt apart from ``input_tokens``: it was not counted
    at all, so a cached prompt's cost and the all-cloud comparison missed it."""
    counts = list(counts) if counts else [0, 0, 0, 0, 0]
    if not isinstance(reported, dict):
        return counts
    for i, key in enumerate(_USAGE_KEYS):
        value = reported.get(key)
        if value is not None and ((n := token_count(value)) or i == 1):
            counts[i] = n
    # the cache writes by lifetime (Messages API ``usage.cache_creation``: ``ephemeral_5m_input_tokens`` and
    # ``ephemeral_1h_input_tokens``, which sum to cache_creation_input_tokens): a one-hour write is billed 2x the input
    # price, a five-minute one 1.25x — all were priced as five-minute writes
    split = reported.get("cache_creation")
    if isinstance(split, dict) and (hour := token_count(split.get("ephemeral_1h_input_tokens"))):
        counts[4] = hour
    return counts


#: the usage fields of the Messages API, in the order :func:`_tokens` keeps them (then the one-hour cache writes)
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _usage(counts: list[int]) -> Usage:
    """The tokens of :func:`_tokens` as a :class:`Usage`: the whole prompt is its plain and cached parts together."""
    plain, out, read, write, hour = counts
    return Usage(plain + read + write, out, read, write, cache_write_1h_tokens=min(hour, write))


#: Amazon Bedrock's counts on its last event (``message_stop``), in its own names (langchain-ai/langchain-aws#164:
#: "reported in a amazon-bedrock-invocationMetrics field" at message_stop; langchain#14120)
_BEDROCK_METRICS = "amazon-bedrock-invocationMetrics"


def _stop_usage(data: dict[str, Any]) -> dict[str, Any] | None:
    """Usage a ``message_stop`` carries, in the Messages API's names, or None: its own ``usage``, the whole
    message's (``message_stop.message``, kept by adapters that end with the message they built), or Bedrock's
    invocation metrics. Read only when no message_delta gave usage: the tokens were estimated."""
    if type(reported := data.get("usage")) is dict:
        return reported
    if type(message := data.get("message")) is dict and type(reported := message.get("usage")) is dict:
        return reported
    if type(metrics := data.get(_BEDROCK_METRICS)) is dict:
        return {"input_tokens": metrics.get("inputTokenCount"), "output_tokens": metrics.get("outputTokenCount")}
    return None


def _estimated(request: ChatRequest, deltas: int) -> Usage:
    """The counts of an answer no event gave usage for, estimated as the OpenAI-compatible provider estimates a server
    that sends none: the prompt from its characters, the answer as one token per text delta. An adapter's stream
    without usage (Antigravity-Manager#2028: none in message_start, nor after; a whole message without ``usage``) was
    logged as 0 tokens in and out — a billed model's cost, its spend cap and the all-cloud comparison saw nothing. A
    usage object that came, whatever it counts, is read as given (as for OpenAI-compatible servers)."""
    return Usage(request_tokens(request), deltas)


def _late_usage(payload: str) -> dict[str, Any] | None:
    """The usage an event sent after ``message_stop`` carries, or None. Relays that turn another protocol's stream
    into Anthropic's put it there: one that ends on its upstream's stop writes ``message_stop``, then the usage as a
    ``message_delta`` when its upstream's usage chunk comes (lobehub#18558: "emits message_stop, then an illegal
    post-terminal usage delta"; OpenAI-compatible upstreams "commonly place usage after stop"). A reader that stops at
    message_stop estimated the tokens."""
    data = try_loads(payload)
    if type(data) is not dict:
        return None
    reported = _stop_usage(data)
    return reported if reported is not None and any(token_count(reported.get(key)) for key in _USAGE_KEYS) else None


def _null_as_empty(value: Any) -> Any:
    """A piece of text given as JSON null is no text. The SDKs type ``text_delta.text`` (and the block's ``text``,
    ``thinking``, ``partial_json``) as a string, but Anthropic-compatible relays leave it out or null for a piece with
    nothing in it (MoonshotAI/kimi-code#2924, its fix #3207: "Some Anthropic-compatible relays stream
    ``content_block_start`` (text) and ``text_delta`` events without the ``text`` field"). Left out it was read as
    ""; null failed the whole answer as malformed_response, never asked again. Any other non-string stays malformed
    (shapes.checked)."""
    return "" if value is None else value


def _whole_message(data: dict[str, Any], signed: list[dict[str, Any]] | None = None) -> list[Chunk]:
    """A whole Messages API answer (``{"type": "message", "content": [blocks], "stop_reason", "usage"}``) as the
    chunks its stream would have given; it was malformed_response (a JSON document where events were asked for),
    while the OpenAI-compatible provider reads the same from a server that ignores ``stream``."""
    content = data.get("content")
    if not isinstance(content, list):
        raise ProviderError(Reason.MALFORMED_RESPONSE, "the JSON answer has no content list")
    chunks: list[Chunk] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if signed is not None and kind in _SIGNED_TYPES and (kept := _signed_block(block)) is not None:
            signed.append(kept)
        if kind == "text":
            chunks.append(Chunk("text", text=_null_as_empty(block.get("text"))))
        elif kind == "thinking":
            chunks.append(Chunk("thinking", text=_null_as_empty(block.get("thinking"))))
        elif kind == "tool_use":
            call = {"name": block.get("name"), "id": block.get("id") or "", "json": "", "input": block.get("input")}
            chunks.append(Chunk("tool_call", tool_call=_tool_call(call)))
        elif not isinstance(kind, str):
            raise ProviderError(Reason.MALFORMED_RESPONSE, "a content block of the JSON answer is not a block")
        # redacted_thinking, server_tool_use and its results, block types added later: nothing of ours to show
    stop_reason = str(data.get("stop_reason") or "")
    if stop_reason == PAUSED:
        raise ProviderError(Reason.UNUSABLE_REPLY, "the answer paused mid-turn (stop_reason 'pause_turn')")
    return [*chunks, Chunk("usage", usage=_usage(_tokens(data.get("usage")))), Chunk("done", stop_reason=stop_reason)]


def _index(data: dict[str, Any]) -> int:
    """A content block's ``index``: a number (its text too, as it always was read), else malformed_response — a
    float past an int's range (``1e400``) was an OverflowError here, internal_error."""
    value = data.get("index") or 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ProviderError(Reason.MALFORMED_RESPONSE, f"a content block's index is {str(value)[:40]!r}, not a "
                            "number") from None


def _held(text: str, held: str, limit: int, event: str) -> str:
    """The data lines read so far of an event whose JSON is not yet whole, kept to be joined with the next. The SSE
    spec makes one event of consecutive ``data:`` lines, joined by newlines; a server or proxy on sse-starlette writes
    each line of a payload that holds newlines (pretty-printed JSON) as a ``data:`` line of its own (sse-starlette#96).
    Each was read as a JSON document: malformed_response on every answer. A line that is whole JSON after a held one
    shows the held one broken on its own, and a held text past ``limit`` is no event: both raise, as before."""
    if held and try_loads(text[len(held) + 1:].strip()) is not NOT_JSON:
        loads(held.strip(), f"SSE '{event}' data")  # raises
    if len(text) > limit:
        loads(text.strip(), f"SSE '{event}' data")  # raises
    return text


class AnthropicProvider(HttpProvider):
    default_endpoint = DEFAULT_ENDPOINT
    hosted = True

    def __init__(self, name: str, config: ModelConfig):
        super().__init__(name, config)
        #: the signed thinking of this model's tool turns, by tool-call id, as the API sent it. With thinking on, the
        #: API wants the last assistant turn of a tool loop back with its thinking blocks, unmodified ("preserving
        #: thinking blocks", extended-thinking docs): a Message keeps no signature, and the gateway's clients send none
        #: through (gateway/messages_wire.py skips them), so the turn after each tool result lost its thinking — it
        #: was refused ("must start with a thinking block") and asked again without thinking. Kept here, each turn
        #: goes back as the model made it, whoever carried the history in between
        self._signed: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def _keep_signed(self, call_ids: list[str], blocks: list[dict[str, Any]]) -> None:
        for call_id in call_ids:
            if call_id:
                self._signed[call_id] = blocks
                self._signed.move_to_end(call_id)
        while len(self._signed) > MAX_SIGNED_TURNS:
            self._signed.popitem(last=False)

    def base_profile(self) -> ModelProfile:
        # no JSON mode in the Messages API: a JSON answer can only be asked for in words
        return ModelProfile(thinking_switch=ThinkingSwitch.ANTHROPIC_BUDGET, json_mode=False,
                            max_output=anthropic_max_output(self.model_id))

    def unavailable_reason(self) -> str | None:
        if not self.config.api_key_env:
            return ("no api_key_env configured for an Anthropic model (add `api_key_env: ANTHROPIC_API_KEY` "
                    "under the model and export that variable)")
        return super().unavailable_reason()

    def client_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION}  # the key goes per request, so a rotated key is picked up

    #: learned: the model takes adaptive thinking only (Claude Opus 4.7 and later refuse ``budget_tokens``)
    _adaptive_only = False
    #: learned: the sampling fields the model refuses (Opus 4.7 and later removed temperature, top_p and top_k)
    _deprecated: frozenset[str] = frozenset()
    #: learned: the model takes ``temperature`` or ``top_p``, not both (Sonnet 4.5, Haiku 4.5): temperature is kept
    _one_of_temperature_top_p = False

    def _without_refused(self, error: ProviderError, body: dict[str, Any]) -> dict[str, Any] | None:
        """``body`` refitted to what the model refused, or None (another refusal). Learned, as the OpenAI-compatible
        provider learns ``stream_options``: asked again at once, and later requests go so from the start.

        Claude Opus 4.7 and later refuse extended thinking with a budget — 400 '"thinking.type.enabled" is not
        supported for this model. Use "thinking.type.adaptive"…' (earendil-works/pi#3297, opencode#23007) — and
        ``temperature`` — 400 "`temperature` is deprecated for this model." (inspect_ai#3721, Roo-Code#12162). Every
        request with thinking on, or with a client's temperature, was a bad_request: the model never answered it."""
        if error.reason is not Reason.BAD_REQUEST:
            return None
        thinking = body.get("thinking")
        budgeted = isinstance(thinking, dict) and thinking.get("type") == "enabled"
        if budgeted and "thinking.type.enabled" in error.message:
            if not self._adaptive_only:
                self._adaptive_only = True
                log.info("model %s: the API takes adaptive thinking only; asking so from now on", self.name)
            return {**body, "thinking": dict(ADAPTIVE_THINKING)}
        if "thinking" in body and "Invalid `signature`" in error.message:
            # a signed block the API no longer takes (a key rotated to another organisation, a model id that now
            # names another snapshot): this turn goes without the kept blocks and without thinking, as below; the
            # blocks are forgotten
            self._signed.clear()
            return {k: v for k, v in body.items() if k != "thinking"} | {"messages": _unsigned(body.get("messages"))}
        if "thinking" in body and "must start with a thinking block" in error.message:
            # thinking on in a tool loop: the API wants the last assistant turn's signed thinking blocks back, which
            # are kept only for turns this model made in this process (:attr:`_signed`; another model may have made
            # the turn, or the process restarted). Such a turn was a bad_request ("To avoid this requirement, disable
            # `thinking`", as the API says): it goes without (and without the signed blocks of earlier turns)
            return {k: v for k, v in body.items() if k != "thinking"} | {"messages": _unsigned(body.get("messages"))}
        if (found := _DEPRECATED.search(error.message)) and (field := found.group(1)) in body:
            if field not in self._deprecated:
                self._deprecated |= {field}
                log.info("model %s: the API refuses %s; asking without it from now on", self.name, field)
            return {k: v for k, v in body.items() if k != field}
        if _NOT_BOTH in error.message and "temperature" in body and "top_p" in body:
            # each was taken alone, together a bad_request on every request that gave both (an OpenAI client's
            # temperature with a top_p, Open WebUI's defaults): the client's temperature is kept, top_p left out (said)
            if not self._one_of_temperature_top_p:
                self._one_of_temperature_top_p = True
                log.info("model %s: the API takes temperature or top_p, not both; top_p is left out beside "
                         "temperature from now on", self.name)
            return {k: v for k, v in body.items() if k != "top_p"}
        return None

    def _sampling(self, request: ChatRequest, thinking: bool) -> dict[str, Any]:
        """The client's temperature, top_p and top_k as this model takes them: none with thinking on (the API takes
        no temperature or top_k beside thinking, a top_p only from 0.95: mnfst/modelparams.dev#238, as before for
        temperature), none the model refused, and top_p not beside temperature where it takes only one of them."""
        out: dict[str, Any] = {}
        if thinking:
            return out
        for field, value in (("temperature", request.temperature), ("top_p", request.top_p),
                             ("top_k", request.top_k)):
            if value is not None and field not in self._deprecated:
                out[field] = value
        if self._one_of_temperature_top_p and "temperature" in out:
            out.pop("top_p", None)
        return out

    def left_out(self, request: ChatRequest) -> str:
        """What of the client's sampling went unsent, for the routing log: the fields the Messages API has none of
        (seed, min_p, the penalties, logit_bias), and those of its own this model was asked without, and why."""
        said = [not_taken(request, NO_SUCH_FIELD, "Anthropic's API")]
        asked = [f for f, v in (("temperature", request.temperature), ("top_p", request.top_p),
                                ("top_k", request.top_k)) if v is not None]
        if asked and self.profile.thinking_to_send(request.thinking):
            said.append(f"{', '.join(asked)} left out: Anthropic's API takes none with thinking on")
        elif asked:
            if refused := [f for f in asked if f in self._deprecated]:
                said.append(f"{', '.join(refused)} left out: the model refuses {'it' if len(refused) == 1 else 'them'}")
            if "top_p" in asked and "top_p" not in refused and "top_p" not in self._sampling(request, False):
                said.append("top_p left out: the model takes temperature or top_p, not both (temperature kept)")
        return "; ".join(s for s in said if s)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        thinking = self.profile.thinking_to_send(request.thinking)
        system, messages = _messages(request.messages, self._signed if thinking and self._signed else None)
        max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
        body: dict[str, Any] = {"model": self.model_id, "messages": messages, "stream": True}
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                             for t in request.tools]
            if request.single_tool_call:  # "the model will output at most one tool use" (the API's tool_choice)
                body["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        if thinking:
            budget = max(MIN_THINKING_BUDGET, request.thinking_budget or MIN_THINKING_BUDGET)
            cap = self.profile.max_output
            if cap is not None and budget + 1024 > cap:  # room for the answer within the model's output limit
                budget = max(MIN_THINKING_BUDGET, cap - 1024)
            body["thinking"] = dict(ADAPTIVE_THINKING) if self._adaptive_only else {
                "type": "enabled", "budget_tokens": budget}
            max_tokens = max(max_tokens, budget + 1024)  # the budget counts inside max_tokens
        body.update(self._sampling(request, bool(thinking)))
        if stops := [s for s in request.stop or () if s.strip()]:
            # the Messages API's ``stop_sequences`` (its answer: stop_reason "stop_sequence", a normal finish). A
            # whitespace-only one is refused, the request with it ("stop_sequences: each stop sequence must contain
            # non-whitespace": BerriAI/litellm#3286, a client's ``stop: ["\n"]``): left out, the gateway cuts there
            body["stop_sequences"] = stops
        body["max_tokens"] = max_tokens
        return body

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        key = self.config.api_key()
        if not key:
            raise ProviderError(Reason.MISSING_CREDENTIALS, self.unavailable_reason() or "no API key")
        # as _tokens keeps them: five counts. Four here failed _usage at the answer's end wherever message_start
        # carried no usage (an adapter that leaves it out until its upstream's first usage: Antigravity-Manager#2028):
        # a whole answer lost as malformed_response
        tokens = [0, 0, 0, 0, 0]
        counted = False  # a message_delta (or message_stop) gave usage: none is looked for after message_stop
        deltas = 0  # text deltas: the output's count where no event gave usage (_estimated)
        usage_given = False  # message_start (or an event after message_stop) gave usage
        early = False  # message_start counted the prompt: said before the first words (see content_block_delta)
        stop_reason = ""
        blocks: dict[int, dict[str, Any]] = {}
        thoughts: dict[int, dict[str, Any]] = {}  # thinking / redacted_thinking blocks being read, by index
        signed: list[dict[str, Any]] = []  # this answer's signed thinking, kept for its tool turn (_keep_signed)
        call_ids: list[str] = []
        event = ""
        held = ""  # data lines of an event not yet complete JSON
        stopped = False
        rest: list[tuple[str, str]] = []  # what came after the end marker in its batch (late usage: _late_usage)
        unsaid = False  # an "event: error" ended with no data: the server's error, without its words
        said: list[str] | None = [] if request.tools else None  # the text, kept when tools are offered
        opened = False  # a content block began: the answer has started
        message_id: Any = None
        async with self.client.stream("/v1/messages", self.body(request), timeouts, _extract_error,
                                      headers={"x-api-key": key}, limit=self.response_limit) as resp:
            # a server or proxy that ignores stream: true answers the whole message at once, as JSON (or as JSON
            # under an event-stream label: StreamResponse reads either as one data event, and an event stream
            # labelled JSON as the events it is)
            batches = resp.whole_json() if resp.is_json else resp.sse_batches("an event stream")
            async for batch in batches:
                for at, (field, value) in enumerate(batch):
                    if field == "event":
                        event = value.strip()
                        continue
                    if field != "data":
                        if not field:  # the event ended (http.DISPATCHED): its type ends with it
                            unsaid = unsaid or event == "error"  # an error event that had no data
                            event = ""
                        continue
                    if held:  # SSE: the data lines of one event are one text, joined by newlines
                        value = held + "\n" + value
                    data = try_loads(value.strip())
                    if data is NOT_JSON and not held and value.lstrip()[:5] == "data:":
                        # "data: data: {...}": a relay that framed its events twice (shimmy#26, aprender#2015), read
                        # as the OpenAI-compatible provider reads it; it was malformed_response, never asked again
                        value = value.lstrip()[5:]
                        data = try_loads(value.strip())
                    if data is NOT_JSON:  # an event's JSON over several data lines (see _held)
                        if not held and value.lstrip()[:1] == ":":
                            # a keep-alive comment a relay passed on as data ("data: : keepalive"; OpenRouter's
                            # "data: : OPENROUTER PROCESSING", mnfst/llm-gateway#2053): no JSON starts so. An SSE
                            # comment is a line that *starts* with ":" ("Ignore the line":
                            # html.spec.whatwg.org/multipage/server-sent-events.html), which the reader skips; as data
                            # it was held, joined to the next event and the whole answer refused as malformed_response
                            continue
                        if not held and ((event == "error" and value.lstrip()[:1] not in ("{", "["))
                                         or SAID_ERROR.match(value)):
                            # the server's error in words, not JSON: an "event: error" whose data is text (as the
                            # OpenAI-compatible provider reads it), or "data: error: <message>" (lucasjinreal/
                            # Crane#121). It was malformed_response: never asked again, the model counted broken.
                            # Not an error event whose JSON opens on this line and goes on over the next ones (a
                            # relay's pretty-printed event): held, and read whole as its type and words say
                            raise said_error(value) or error_field(value)
                        if not held and value.strip() == "[DONE]":
                            # OpenAI's end marker where message_stop should be: GitHub Copilot's Anthropic-compatible
                            # proxy ends its streams so (huggingface/tau#692), others after message_stop
                            # (earendil-works/pi#3708: "event: done" / "data: [DONE]"). It was malformed_response:
                            # the whole answer before it, its stop reason said, lost and asked of the next model
                            stopped, rest = True, batch[at + 1:]
                            break
                        held = _held(value, held, self.response_limit, event)
                        continue
                    held = ""
                    if not isinstance(data, dict):
                        if event == "ping" or data is None:
                            # a keep-alive's data that is no object: copilot-api's ping events carried ``data: ""``
                            # (caozhiyuan/copilot-api#88); "data: null" says nothing (see openai.py). A ping says
                            # nothing whatever its data: the answer was failed as malformed_response
                            continue
                        raise ProviderError(Reason.MALFORMED_RESPONSE, f"SSE '{event}' data is not an object")
                    kind = data.get("type", event)
                    if kind == "error" or (not kind and data.get("error")):
                        etype, message = _extract_error(data)
                        raise stream_error(etype, message)
                    if kind == "message" or (not kind and "content" in data):
                        chunks = _whole_message(data, signed)
                        if chunks[-1].stop_reason in CALL_STOPS and not any(c.kind == "tool_call" for c in chunks):
                            chunks[-1] = Chunk("done", stop_reason=without_call(
                                self.name, chunks[-1].stop_reason, said is not None, any(
                                    isinstance(c.text, str) and mark in c.text for c in chunks for mark in CALL_MARKS)))
                        if signed:
                            self._keep_signed([c.tool_call.id for c in chunks if c.kind == "tool_call" and c.tool_call],
                                              signed)
                        for chunk in chunks:
                            if chunk.kind == "usage" and type(data.get("usage")) is not dict:
                                chunk = Chunk("usage", usage=_estimated(request, sum(c.kind == "text" for c in chunks)))
                            yield chunk
                        return
                    if kind == "message_start":
                        started = data.get("message")
                        if not isinstance(started, dict):
                            started = {}
                        if opened and started.get("id") != message_id:
                            # a second message inside the body, after the first had begun: a proxy that lost its
                            # upstream mid-answer and retried splices the retry's events in (seen behind Vertex,
                            # vercel/ai#18331: the first answer's tool_use cut mid input_json_delta). Read on, the
                            # two answers were joined into one: text said twice, a call's arguments from two
                            # generations. What the first said is cut short: as a connection broken mid-answer
                            raise ProviderError(Reason.CONNECTION_DROPPED, "a second message began before the first "
                                                "ended (a proxy spliced its retry into the stream)")
                        message_id = started.get("id")  # a duplicate message_start (bifrost#4556, litellm#32479)
                        if isinstance(started.get("usage"), dict):  # reads as the first did
                            tokens, usage_given = _tokens(started["usage"]), True
                            early = bool(tokens[0] or tokens[2] or tokens[3])  # LiteLLM's zeros: nothing to say
                    elif kind == "content_block_start":
                        opened = True
                        block = data.get("content_block") or {}
                        btype = block.get("type", "")
                        if btype in _SIGNED_TYPES:
                            thoughts[_index(data)] = {
                                "type": btype, "thinking": block.get("thinking") or "",
                                "signature": block.get("signature") or "", "data": block.get("data")}
                        blocks[_index(data)] = {
                            "type": btype, "id": block.get("id", ""), "name": block.get("name", ""),
                            "json": "", "input": block.get("input")}
                        # the block's first words in the block itself (documented as "", but a snapshot the
                        # official SDKs keep and add the deltas to: an adapter that puts its first piece there,
                        # oh-my-pi#8319) were dropped, the answer shown without its start
                        if early and btype in ("text", "thinking") and block.get(btype):
                            early = False
                            yield Chunk("usage", usage=_usage(tokens))  # see content_block_delta
                        if btype == "text" and (first := block.get("text")) and isinstance(first, str):
                            if said is not None:
                                said.append(first)
                            yield Chunk("text", text=first)
                        elif btype == "thinking" and (first := block.get("thinking")) and isinstance(first, str):
                            yield Chunk("thinking", text=first)
                    elif kind == "content_block_delta":
                        delta = data.get("delta") or {}
                        dtype = delta.get("type")
                        if early and dtype in ("text_delta", "thinking_delta"):
                            # the prompt's counts as message_start said them (its cached part apart), given on with
                            # the first words — at the same moment, so the first-token bound and time are the words'
                            # (as llamacpp.py gives its prompt's count): an answer closed before its end (at a stop
                            # sequence the model was not sent, router/stop_watch.py; a client gone) never reached the
                            # usage yielded at the end, and its prompt was logged as an estimate of its characters,
                            # without the cache's reads and writes — a cached prompt's cost and spend cap wrong
                            early = False
                            yield Chunk("usage", usage=_usage(tokens))
                        if dtype == "text_delta":
                            if said is not None and isinstance(piece := delta.get("text"), str):
                                said.append(piece)
                            deltas += 1
                            yield Chunk("text", text=_null_as_empty(delta.get("text")))
                        elif dtype == "thinking_delta":
                            piece = _null_as_empty(delta.get("thinking"))
                            if (thought := thoughts.get(_index(data))) is not None and isinstance(
                                    piece, str):
                                thought["thinking"] += piece
                            yield Chunk("thinking", text=piece)
                        elif dtype == "signature_delta":
                            if (thought := thoughts.get(_index(data))) is not None and isinstance(
                                    sig := delta.get("signature"), str):
                                thought["signature"] += sig
                        elif dtype == "input_json_delta":
                            block = blocks.setdefault(_index(data), {
                                "type": "tool_use", "id": "", "name": "", "json": "", "input": None})
                            block["json"] += _null_as_empty(delta.get("partial_json"))
                        # citations_delta and delta types added later: nothing to show
                    elif kind == "content_block_stop":
                        index = _index(data)
                        block = blocks.pop(index, None)
                        if (thought := thoughts.pop(index, None)) is not None and (
                                kept := _signed_block(thought)) is not None:
                            signed.append(kept)
                        if block and block["type"] == "tool_use":
                            call = _tool_call(block)
                            call_ids.append(call.id)
                            yield Chunk("tool_call", tool_call=call)
                        # server_tool_use, web_search_tool_result, redacted_thinking...: run by Anthropic, not us
                    elif kind == "message_delta":
                        stop_reason = str((data.get("delta") or {}).get("stop_reason") or stop_reason)
                        resp.answered = bool(stop_reason)
                        # cumulative, as documented: output_tokens always; input_tokens from proxies that only know
                        # the prompt's count at the end (LiteLLM, SGLang: 0 in message_start) and as server tools add
                        if type(reported := data.get("usage")) is dict:
                            tokens, counted = _tokens(reported, tokens), True
                    elif kind == "message_stop":
                        stopped = True
                        # the events after it, by place: not looked up by value — data that came over several lines
                        # was joined (``held``) and is in no batch as read
                        rest = batch[at + 1:]
                        if not counted and (reported := _stop_usage(data)) is not None:
                            tokens, counted = _tokens(reported, tokens), True
                        break
                    # ping and unknown event types: ignored on purpose
                if stopped:
                    # usage sent after message_stop? (_late_usage)
                    if not counted and (late := await found_after_end(rest, batches, _late_usage)) is not None:
                        tokens, usage_given = _tokens(late, tokens), True
                    break
        if held and not resp.ended_in_line:  # else an event the body ended inside: discarded (see openai.py)
            loads(held.strip(), f"SSE '{event}' data")  # data lines that never became JSON (raises)
        if not stopped and not stop_reason:  # with its stop reason the answer is whole: only message_stop is missing
            if unsaid:  # not a connection that broke: the server said it failed, without words (see openai.py)
                raise ProviderError(Reason.STREAM_ERROR, "the server sent an error event without data, then ended "
                                    "the stream")
            raise ProviderError(Reason.CONNECTION_DROPPED, "stream ended before message_stop" + (
                ", cut off in the middle of a line" if resp.ended_in_line else ""))
        unclosed = [_tool_call(b) for b in blocks.values() if b["type"] == "tool_use"]
        if stop_reason in CALL_STOPS and not call_ids and not unclosed:
            stop_reason = without_call(self.name, stop_reason, said is not None,
                                       said is not None and any(mark in "".join(said) for mark in CALL_MARKS))
        for index in sorted(thoughts):
            # a thinking block never closed: Kimi's Anthropic-compatible API omits content_block_stop between blocks
            # (xemantic/anthropic-sdk-kotlin#147), Bedrock's stream at times for a redacted one (crmne/ruby_llm#845).
            # Its signature came in full; dropped, the tool turn went back without it and, thinking on, was refused
            # ("must start with a thinking block") and asked again without thinking
            if (kept := _signed_block(thoughts[index])) is not None:
                signed.append(kept)
        if signed and (call_ids or unclosed):
            self._keep_signed(call_ids + [c.id for c in unclosed], signed)
        for call in unclosed:  # a tool_use block never closed (a proxy that skips content_block_stop): the call is
            yield Chunk("tool_call", tool_call=call)  # whole once the message is; dropping it passed the rest as the
            # answer, the call lost
        if stop_reason == PAUSED:
            raise ProviderError(Reason.UNUSABLE_REPLY, "the answer paused mid-turn (stop_reason 'pause_turn'): only "
                                                       "sending it back continues it, so it is not an answer")
        yield Chunk("usage", usage=_usage(tokens) if usage_given or counted else _estimated(request, deltas))
        yield Chunk("done", stop_reason=stop_reason)  # "" when no message_delta said why: shapes.checked judges
