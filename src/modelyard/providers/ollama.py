"""Ollama's native ``/api/chat``: NDJSON streaming, object-valued tool arguments, ``think``,
``keep_alive``, and errors that arrive mid-stream as ``{"error": ...}`` under HTTP 200."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import functools
import logging
import os
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

from modelyard.config.schema import Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.base import PreloadSlot, no_slot, parse_duration
from modelyard.providers.chat_template import family_of
from modelyard.providers.discovery import ServedModel, ServerCapability, normalised_endpoint, parameters_from_label
from modelyard.providers.discovery import mapping_of as _mapping
from modelyard.providers.embeddings import answer, body_limit, input_tokens, posted, refusal, request_body, texts_only
from modelyard.providers.error_words import error_words
from modelyard.providers.http import (
    HISTORY_REFUSED,
    NO_MEMORY,
    NO_MEMORY_WORDS,
    NO_ROOM_WORDS,
    NOT_CHAT_WORDS,
    NOT_JSON,
    SYSTEM_FIRST_WORDS,
    TOOL_USE_FAILED,
    UNPARSED_CALL,
    USAGE_LIMIT_WORDS,
    HttpClient,
    HttpProvider,
    joined,
    loads,
    make_client,
    no_memory,
    ollama_said,
    openai_tools,
    reason_for_status,
    said,
    shown_url,
    stream_error,
    system_first,
    tool_call,
    try_loads,
    unparsed_call,
)
from modelyard.providers.metadata import kv_shape, trained_context
from modelyard.providers.ollama_parallel import ServerParallel, server_environment, server_parallel
from modelyard.providers.ollama_queue import ParallelWatch
from modelyard.providers.ollama_relayed import from_chunk, unframed
from modelyard.providers.profile import ContextWindow, MemoryFacts, ModelProfile, ThinkingSwitch
from modelyard.providers.sampling import biases_left_out, put_native
from modelyard.providers.shapes import content_parts, usage_from
from modelyard.providers.speed import ollama_times, server_rate
from modelyard.tokens import request_tokens
from modelyard.types import ChatRequest, Chunk, Message, TextPrompt

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://127.0.0.1:11434"
#: Ollama's renderer for a conversation with no user turn to answer (routes.go "chat prompt error")
_NO_USER_QUERY = "no user query found in messages"
#: how Ollama refuses ``think`` for a model without thinking (a 400): '"llama3.2:latest" does not support thinking'
_NO_THINKING = "does not support thinking"
#: the error of a 403 without a body (Ollama's refusal of a Host it does not know: see OllamaProvider.stream)
_HOST_REFUSED = frozenset({"HTTP 403", "HTTP 403: (empty)"})
DEFAULT_CONTEXT = 4096  # Ollama's num_ctx when none is set
FACT_TIMEOUT = 3.0  # seconds for a control-plane question (/api/show, /api/ps, /api/tags)
#: every line of an /api/chat stream has at least one of these (a proxy's {"status": "ok"} has none)
_LINE_KEYS = frozenset({"message", "done", "error", "model"})
#: keys only an Ollama line has (an OpenAI-compatible chunk has a "model" too)
_OWN_KEYS = frozenset({"message", "response", "done", "error"})
#: a prompt read as fewer tokens than this share of the estimate was cut to fit num_ctx (see _cut_note)
_CUT_SHARE = 0.55
#: ... and by at least this many tokens (a short prompt's estimate is too rough to judge)
_CUT_MIN = 512
#: done reasons of a request Ollama did not run: it only loaded (or unloaded) the model. It answers a chat that way
#: when there is nothing to generate for, e.g. no user turn (oh-my-pi#7465): an empty "success" otherwise
_NOT_RUN = frozenset({"load", "unload"})
_NOT_RUN_DETAIL = ("Ollama did not run the chat (done_reason '{}'): it only loaded or unloaded the model, "
                   "which it does for a request with nothing to answer (no user message?)")


def _cut_note(data: dict[str, Any], request: ChatRequest) -> str:
    """Why the prompt Ollama read looks cut, or "". Past the context it runs the model in (num_ctx), Ollama drops the
    front of a prompt in silence and answers a 200 — its ``prompt_eval_count``, cached tokens included (ollama#16428),
    about num_ctx / 2 the only tell (ollama#17427, #17889, #3839): the model answers a question it never saw."""
    read = data.get("prompt_eval_count")
    if request.prompt is not None or not isinstance(read, int) or isinstance(read, bool) or read <= 0:
        return ""
    sent = request_tokens(request)
    if read >= sent * _CUT_SHARE or sent - read < _CUT_MIN:
        return ""
    return f"Ollama read {read} prompt tokens of ~{sent} sent"


def _ended(data: dict[str, Any], request: ChatRequest) -> list[Chunk]:
    """The usage and done chunks of the line that ended an answer (``done: true``, or the last to say why)."""
    said = data.get("done_reason")
    if type(said) is not str:  # a number or an object where Ollama writes a word: no reason said
        said = ""
    if said in _NOT_RUN:
        raise ProviderError(Reason.BAD_REQUEST, _NOT_RUN_DETAIL.format(said))
    usage = usage_from(data, "prompt_eval_count", "eval_count")
    if usage is not None and "prompt_eval_count" not in data:
        # Ollama before 0.2 (and its llama-server runner early in 0.30) leaves the count out when the prompt came from
        # its cache (ollama#2068, #16414): logged as a prompt of 0 tokens, and the all-cloud comparison saw none of it.
        # Estimated, as elsewhere
        usage.input_tokens = request_tokens(request)
    if usage is not None:  # Ollama's own decoding time: eval_duration in ns (docs.ollama.com/api/usage)
        usage.tokens_per_s = server_rate(data.get("eval_count"), data.get("eval_duration"), 1e-9)
        usage.server_times = ollama_times(data)
    return [Chunk("usage", usage=usage), Chunk("done", stop_reason=said)]


#: Ollama's 500 for a model it cannot load at all (http.py says more)
_NO_ROOM = NO_ROOM_WORDS
#: Ollama's cloud models (``gpt-oss:120b-cloud``, ``glm-5:cloud``, run at ollama.com through the local server) refuse
#: a plan's spent allowance with a 429 and no retry-after: "you've reached your hourly usage limit, please wait or
#: upgrade to continue" (continue#9233), "… your session usage limit, upgrade for higher limits" (continue#11444),
#: "… your weekly usage limit" (HomericIntelligence/Scylla#346)
_USAGE_LIMIT = USAGE_LIMIT_WORDS


#: installed models named in a model_missing error, closest first (a server may hold hundreds)
MAX_TAGS_SAID = 8
#: seconds the listing may take in a request's path (a missing model fails at once; this must not hold it up)
TAGS_TIMEOUT = 1.0


def tags_said(wanted: str, names: list[str]) -> str:
    """``the server has: qwen2.5:7b, qwen2.5:14b, … (12 more)``, nearest to ``wanted`` first; said when none."""
    if not names:
        return "the server has no models (ollama pull one)"
    ranked = sorted(dict.fromkeys(names), key=lambda n: (-difflib.SequenceMatcher(None, wanted, n).ratio(), n))
    more = len(ranked) - MAX_TAGS_SAID
    return "the server has: " + ", ".join(ranked[:MAX_TAGS_SAID]) + (f", … ({more} more)" if more > 0 else "")


async def _installed(client: HttpClient) -> list[str] | None:
    """The names in /api/tags, or None when the server gave no listing in time."""
    try:
        status, data = await client.request_json("GET", "/api/tags", timeout=TAGS_TIMEOUT)
    except ProviderError:
        return None
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return None
    return [str(n) for e in data["models"] if isinstance(e, dict) and (n := e.get("name") or e.get("model"))]


async def _not_ollama(client: HttpClient, endpoint: str, name: str) -> str | None:
    """Why a server whose /api/tags is a 404 is no Ollama — and what it is, where its /v1/models lists models (llama-
    server, vLLM, LM Studio: `provider: ollama` pointed at their port, as a newcomer does). `models` said "available"
    of it, and `ask` then failed with "HTTP 404 … no such path there?". None where it cannot be told."""
    try:
        status, _ = await client.request_json("GET", "/api/tags", timeout=TAGS_TIMEOUT)
        if status != 404:
            return None
        listed, data = await client.request_json("GET", "/v1/models", timeout=TAGS_TIMEOUT)
    except ProviderError:
        return None
    said = f"the server at {shown_url(endpoint)} is not an Ollama (GET /api/tags: HTTP 404)"
    if listed == 200 and isinstance(data, dict) and isinstance(data.get("data"), list):
        return (f"{said}: it lists models at /v1/models, as an OpenAI-compatible server does (llama-server, vLLM, "
                f"LM Studio) — set models.{name}.provider: openai and endpoint: {shown_url(endpoint).rstrip('/')}/v1")
    return f"{said}: check models.{name}.endpoint (Ollama listens on port 11434)"


def _generated(data: dict[str, Any]) -> dict[str, Any]:
    """A line of ``/api/generate`` (``response`` for ``message.content``) as a chat line's message. A chat answered in
    that shape — an Ollama-emulating proxy's ``/api/chat`` (eyalrot/ollama_openai#33: ``{"model": "default",
    "response": "The", "done": false}`` …) — was read as lines of nothing: the answer refused as unusable_reply and
    asked of the next model."""
    return {"content": data.get("response"), "thinking": data.get("thinking")}


def _extract_error(body: Any) -> tuple[str, str]:
    error = body.get("error", "")
    if not error and isinstance(detail := body.get("detail"), str):
        # Open WebUI's Ollama proxy (FastAPI) refuses in ``detail``: {"detail": "Ollama: 400, message='Bad Request',
        # url='…/api/chat'"} (open-webui#14955). The row said "HTTP 400" and nothing else
        error = detail
    if isinstance(error, dict):
        # an OpenAI-shaped error object where Ollama writes a string (a relay's, under /api/chat): its words, not the
        # object's Python repr ("{'message': 'boom', 'type': 'server_error'}" was the row's detail)
        error = error_words(error) or error.get("type") or error
    words = str(error)
    if (said := ollama_said(words)) is not None:  # its queue full: the next model; a model not pulled: skipped a while
        return said
    if NO_MEMORY_WORDS.search(words):  # not this moment's fault, nor a model not there (http.NO_MEMORY_WORDS)
        return NO_MEMORY, f"Ollama has no memory for the model now: {words}"
    if UNPARSED_CALL.match(words):
        return TOOL_USE_FAILED, unparsed_call("Ollama", words)
    if SYSTEM_FIRST_WORDS.search(words) or words.startswith("template: ") or _NO_USER_QUERY in words:
        # the model's chat template (or renderer) could not make a prompt of this request: Ollama's "chat prompt
        # error" is a 500 (routes.go: c.JSON(http.StatusInternalServerError, …)) — a template that fails on the
        # request's tools ("template: :108:130: executing \"\" at <index $prop.Type 0>: error calling index: reflect:
        # slice index out of range", gpt-oss: ollama#11800), a renderer that takes a system message only first or
        # wants a user turn. Asked again it fails the same (3 of 3, at once): it was a server_error, retried and
        # counted against a model that answers other requests. The request's, as a 400 says: another model may take it
        return HISTORY_REFUSED, f"{words} (the model's chat template could not render this conversation)"
    if body.get("signin_url"):
        # a cloud model on a server not signed in to ollama.com (routes.go: {"error": "unauthorized", "signin_url"}):
        # "unauthorized" alone, from a local server that takes no key, left users looking for one (continue#11404,
        # #11082). The URL itself is not repeated (it carries the host's key)
        words += " (an Ollama cloud model: sign the server in to ollama.com with `ollama signin` on its host)"
    return "", words


def _bytes(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _cpu_share(size: int, vram: Any) -> float | None:
    """The share of a loaded model Ollama runs on the CPU, where it split it: /api/ps ``size_vram`` above 0 and below
    ``size`` — what ``ollama ps`` shows as "48%/52% CPU/GPU" (docs.ollama.com/api/ps). All on the GPU (a Mac's
    unified memory) or all on the CPU (a machine without one, ``size_vram`` 0) is no split: None."""
    return 1 - vram / size if isinstance(vram, int) and not isinstance(vram, bool) and 0 < vram < size else None


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments_object()}} for c in m.tool_calls]
    if m.role == "tool" and m.name:
        out["tool_name"] = m.name
    return out


async def _shown(client: HttpClient, name: str) -> dict[str, Any]:
    """/api/show for one model ({} when the server does not say: older servers, a model being pulled)."""
    try:
        status, data = await client.request_json("POST", "/api/show", {"model": name}, timeout=FACT_TIMEOUT)
    except ProviderError:
        return {}
    return data if status == 200 and isinstance(data, dict) else {}


def _served(entry: dict[str, Any], shown: dict[str, Any], endpoint: str, server: str) -> ServedModel | None:
    name = entry.get("model") or entry.get("name")
    if not isinstance(name, str) or not name:
        return None
    details = _mapping(entry.get("details"))
    info = _mapping(shown.get("model_info"))
    caps = shown.get("capabilities")
    listed = {c for c in caps if isinstance(c, str)} if isinstance(caps, list) else set()
    if ServerCapability.COMPLETION in listed or not listed:
        listed.add(ServerCapability.JSON)  # `format` constrains any model that generates
    size = entry.get("size")
    return ServedModel(
        model_id=name, endpoint=endpoint, server=server,
        size_bytes=size if isinstance(size, int) and size > 0 else None,
        parameters_b=parameters_from_label(details.get("parameter_size")),
        trained_context=trained_context(info) if info else None,
        family=str(details.get("family") or ""),
        capabilities=frozenset(listed),
        remote=bool(entry.get("remote_host") or entry.get("remote_model")) or name.endswith(("-cloud", ":cloud")),
    )


def _with_parallel(models: list[ServedModel], release: str | None, endpoint: str) -> list[ServedModel]:
    """Each chat model run on this server with how many of its requests the server runs at once, read as `plan` and
    `models` read it (:meth:`OllamaProvider.server_parallel`, ollama_parallel.py), the server's environment once for
    them all: ``init --detect`` wrote ``max_concurrent: 1`` under a server started with OLLAMA_NUM_PARALLEL=4."""
    url = urlsplit(endpoint)
    host, port = url.hostname or "127.0.0.1", url.port or 11434
    environment = functools.cache(server_environment)
    return [m if m.remote or m.embedding_only else
            dataclasses.replace(m, parallel=server_parallel(m.family, False, release, host, port,
                                                            environment=environment))
            for m in models]


class OllamaProvider(HttpProvider):
    #: the chat template family read from /api/show's ``template`` (providers/chat_template.py), once asked
    _family: tuple[str | None] | None = None

    sends_prompts = True
    default_endpoint = DEFAULT_ENDPOINT
    preloads = True
    cuts_long_inputs = True  # /api/embed's `truncate`, true unless the client says otherwise
    context_hint = (f"the context you want (modelyard asks Ollama for it as num_ctx; Ollama runs {DEFAULT_CONTEXT} "
                    "unless set)")

    @classmethod
    def endpoints_to_try(cls) -> tuple[str, ...]:
        """``OLLAMA_HOST`` as the ollama CLI reads it, else the default port."""
        return (normalised_endpoint(os.environ.get("OLLAMA_HOST") or DEFAULT_ENDPOINT, 11434),)

    @classmethod
    async def served_models(cls, endpoint: str) -> list[ServedModel]:
        """/api/tags, then /api/show of each model for its capabilities and trained context."""
        client = make_client(endpoint)
        try:
            status, data = await client.request_json("GET", "/api/tags", timeout=FACT_TIMEOUT)
            if status != 200 or not isinstance(data, dict) or not isinstance(data.get("models"), list):
                raise ProviderError(Reason.MALFORMED_RESPONSE, f"{shown_url(joined(endpoint, '/api/tags'))} " + (
                    "is not an Ollama listing" if status == 200 else f"answered HTTP {status}, not an Ollama listing"))
            entries = [e for e in data["models"] if isinstance(e, dict)]
            _, version = await client.request_json("GET", "/api/version", timeout=FACT_TIMEOUT)
            server = f"Ollama {version['version']}" if isinstance(version, dict) and "version" in version else "Ollama"
            shown = await asyncio.gather(*(_shown(client, str(e.get("model") or e.get("name"))) for e in entries))
        finally:
            await client.aclose()
        found = (_served(e, s, endpoint, server) for e, s in zip(entries, shown, strict=True))
        release = version.get("version") if isinstance(version, dict) else None
        return await asyncio.to_thread(_with_parallel, [m for m in found if m is not None],
                                       release if isinstance(release, str) else None, endpoint)

    #: a cut prompt was said in the log for this model (once: an agent's loop would say it on every turn)
    _cut_said = False
    _watch: ParallelWatch | None = None

    @property
    def parallel_watch(self) -> ParallelWatch:
        """This model's requests at Ollama and what their answers say of Ollama's own queue (ollama_queue.py)."""
        if self._watch is None:
            self._watch = ParallelWatch(self.name, self.config.max_concurrent)
        return self._watch

    def _warn_cut(self, data: dict[str, Any], request: ChatRequest) -> None:
        """Say in the log that Ollama cut the prompt to fit num_ctx (:func:`_cut_note`), and what to set."""
        if self._cut_said or not (note := _cut_note(data, request)):
            return
        self._cut_said = True
        context = (f"the context {self.config.context} sent as num_ctx" if self.config.context else
                   f"no context configured, so Ollama's default num_ctx ({DEFAULT_CONTEXT} unless "
                   "OLLAMA_CONTEXT_LENGTH says otherwise)")
        log.warning("model %s: %s — it cut the prompt's front to fit %s, and the model answered without it; set "
                    "models.%s.context to the context the model should run in (modelyard sends it as num_ctx and "
                    "skips the model for a prompt past it)", self.name, note, context, self.name)

    def base_profile(self) -> ModelProfile:
        return ModelProfile(thinking_switch=ThinkingSwitch.OLLAMA_THINK, json_mode=True)

    #: learned: the model's template (Ollama's qwen renderer) refuses a system message that is not the first
    _system_first = False

    def _without_refused(self, error: ProviderError, body: dict[str, Any]) -> dict[str, Any] | None:
        """A later system message the model's renderer refuses ("system message must be at the beginning"): asked
        again at once with it as a user message, and later requests go so from the start (http.system_first)."""
        if error.reason is not Reason.BAD_REQUEST or not SYSTEM_FIRST_WORDS.search(error.message):
            return None
        if (refitted := system_first(body.get("messages"))) is None:
            return None
        if not self._system_first:
            self._system_first = True
            log.info("model %s: its template takes a system message only first; later ones go as user messages from "
                     "now on", self.name)
        return {**body, "messages": refitted}

    def left_out(self, request: ChatRequest) -> str:
        """Ollama's API has no ``logit_bias`` (ollama/ollama#3795, open): the routing log says it went unsent."""
        return biases_left_out(request, api="Ollama's API")

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [_message(m) for m in request.messages]
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": system_first(messages) or messages if self._system_first else messages,
            "stream": True,
        }
        if request.tools:
            body["tools"] = openai_tools(request.tools)
        think = self.profile.thinking_to_send(request.thinking)
        if think is not None:
            body["think"] = think
        if request.json_schema:
            body["format"] = request.json_schema  # Ollama structured outputs
        elif request.json_output:
            body["format"] = "json"
        options: dict[str, Any] = {}
        if request.max_tokens:
            options["num_predict"] = request.max_tokens
        put_native(request, options)
        if request.frequency_penalty:  # 0, the default, left out
            options["frequency_penalty"] = request.frequency_penalty
        if request.presence_penalty:
            options["presence_penalty"] = request.presence_penalty
        if self.config.context:
            options["num_ctx"] = self.config.context
        if options:
            body["options"] = options
        if self.config.keep_alive:
            body["keep_alive"] = self.config.keep_alive
        return body

    def prompt_body(self, prompt: TextPrompt, request: ChatRequest) -> dict[str, Any]:
        """A :class:`TextPrompt` as ``POST /api/generate`` takes it (docs.ollama.com/api/generate): ``raw: true``, "no
        formatting will be applied to the prompt" — unless there is a ``suffix``, which only the model's template puts
        in its FIM tokens (raw mode leaves the suffix out; a template without ``.Suffix`` is refused, "does not support
        insert")."""
        body = self.body(dataclasses.replace(request, messages=[], tools=[]))
        del body["messages"]
        body.pop("think", None)  # the prompt is the model's input as it stands: no switch added to it
        body["prompt"] = prompt.text
        if prompt.suffix:
            body["suffix"] = prompt.suffix
        else:
            body["raw"] = True
        return body

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """:meth:`_stream`, counted in flight: an answer that waited in Ollama's own queue while fewer than
        max_concurrent of this model's requests were there says OLLAMA_NUM_PARALLEL is below it (ollama_queue.py)."""
        watch = self.parallel_watch
        others = watch.started()
        try:
            # closed here, not left to the collector, when the caller stops early (its HTTP response with it)
            async with contextlib.aclosing(self._stream(request, timeouts, others)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            watch.ended()

    async def _stream(self, request: ChatRequest, timeouts: Timeouts, others: int) -> AsyncGenerator[Chunk, None]:
        prompt = request.prompt  # a text completion: /api/generate, its lines carry "response" for "message"
        for tries in range(2):
            body = self.body(request) if prompt is None else self.prompt_body(prompt, request)
            opened = False
            try:
                async with self.client.stream("/api/chat" if prompt is None else "/api/generate", body, timeouts,
                                              _extract_error,
                                              limit=self.response_limit) as resp:
                    opened = True
                    done = False
                    last: dict[str, Any] | None = None  # the last line that said why the answer ended
                    async for line in resp.aiter_lines():
                        if not line.strip():
                            continue
                        if line[:1] != "{":  # a relay's event stream (ollama_relayed.py): its framing off, its
                            if (bare := unframed(line)) is None:  # comments and other fields skipped, [DONE] the end
                                continue
                            line = '{"done": true, "done_reason": "stop"}' if bare == "[DONE]" else bare
                        if (data := try_loads(line)) is NOT_JSON:
                            if resp.ended_in_line and line.lstrip()[:1] == "{":  # the body ended inside this
                                break  # line (a cut: see openai.py's stream), judged below as a stream that ended
                                # before it. Not a body that never was JSON lines and has no line ending at its end
                                # (a page under 200 — a proxy's, a web UI on the port: "<html>…</html>"): it was
                                # connection_dropped, asked again for the same page, where the OpenAI-compatible
                                # provider says malformed_response at once
                            loads(line, "Ollama stream line")  # raises
                        if isinstance(data, dict) and "choices" in data and not data.keys() & _OWN_KEYS:
                            data = from_chunk(data) or data  # an OpenAI-compatible chunk a relay passed on
                        if not isinstance(data, dict) or not data.keys() & _LINE_KEYS:
                            raise ProviderError(Reason.MALFORMED_RESPONSE, f"not an Ollama chat line: {line[:80]!r}")
                        if data.get("error"):
                            kind, words = _extract_error(data)
                            raise stream_error(kind, words if kind else f"Ollama: {words}")
                        message = (data.get("message") or (_generated(data) if "response" in data else {})) \
                            if prompt is None else _generated(data)
                        if not isinstance(message, dict):
                            raise ProviderError(Reason.MALFORMED_RESPONSE, "Ollama message is not an object")
                        thinking, _ = content_parts(message.get("thinking"), "message.thinking")
                        text, thought = content_parts(message.get("content"), "message.content")
                        if thinking or thought:
                            yield Chunk("thinking", text=thinking + thought)
                        if text:
                            yield Chunk("text", text=text)
                        calls = message.get("tool_calls") or []
                        if not isinstance(calls, list):  # an object or a text where Ollama writes a list: what it
                            # meant cannot be told (it was "AttributeError: 'str' object has no attribute 'get'")
                            raise ProviderError(Reason.MALFORMED_RESPONSE,
                                                f"message.tool_calls is a {type(calls).__name__}, not a list")
                        for call in calls:
                            fn = (call.get("function") if isinstance(call, dict) else None) or {}
                            if not isinstance(fn, dict) or not fn.get("name"):
                                raise ProviderError(Reason.MALFORMED_RESPONSE, "tool call without a name")
                            yield Chunk("tool_call", tool_call=tool_call(
                                fn["name"], fn.get("arguments"), call.get("id", "")))
                        if data.get("done"):
                            done = True
                            self._warn_cut(data, request)
                            self.parallel_watch.answered(data, others)
                            for chunk in _ended(data, request):
                                yield chunk
                            break
                        if data.get("done_reason"):
                            last = data
                    if not done:
                        if last is None:
                            raise ProviderError(Reason.CONNECTION_DROPPED, "Ollama stream ended without done:true" + (
                                ", cut off in the middle of a line" if resp.ended_in_line else ""))
                        # the body ended after a line that said why, without "done": true — Ollama's MLX engine
                        # ends so (ollama-vscode#60, #61: "Did not receive done or success response in stream"). It
                        # was connection_dropped: the whole answer asked again, the same end again, the next model.
                        # Not at that line itself: a server may say why mid-stream and go on (llama-swappo#13's
                        # tool-call line, "done": false, "done_reason": "tool_calls", then the done line)
                        self._warn_cut(last, request)
                        self.parallel_watch.answered(last, others)
                        for chunk in _ended(last, request):
                            yield chunk
                return
            except ProviderError as exc:
                if not opened and exc.reason is Reason.SERVER_ERROR and _NO_ROOM.search(exc.message):
                    # not a moment's fault worth a retry (it fails again at once), but the model's on this machine
                    # until memory is freed: the model cools as for a model the server does not have
                    newer = " (a model newer than this Ollama: upgrade it)" if "architecture" in exc.message else ""
                    raise ProviderError(Reason.MODEL_MISSING, f"Ollama cannot load the model here: {exc.message}"
                                        f"{newer}", status=exc.status) from None
                if not opened and exc.status == 403 and exc.message in _HOST_REFUSED:
                    # Ollama's allowedHostsMiddleware: listening on loopback, it answers a Host it does not know (a
                    # tunnel's or proxy's name) with a bare 403 — "auth_error: HTTP 403" sent people looking for a key
                    # Ollama never asks for (ollama#3215, ollama-app#40)
                    raise ProviderError(Reason.AUTH_ERROR, f"{exc.message} — Ollama refuses a request whose Host it "
                                        "does not know: behind a tunnel or proxy, forward Host as localhost:11434 "
                                        "(ngrok: --host-header=localhost:11434, Ollama's FAQ), or start Ollama with "
                                        "OLLAMA_HOST=0.0.0.0", status=403) from None
                if not opened and exc.reason is Reason.MODEL_MISSING and exc.status == 404:
                    # 'model "llama3" not found, try pulling it first': which tags it does have (a typo'd tag, a
                    # ':latest' never pulled) — the user had to run `ollama list` to see
                    names = await _installed(self.client)
                    if names is None:
                        raise
                    raise ProviderError(Reason.MODEL_MISSING, f"{exc.message}; {tags_said(self.model_id, names)}",
                                        status=exc.status, absent=exc.absent) from None
                if not opened and exc.reason in (Reason.BAD_REQUEST, Reason.SERVER_ERROR) and NOT_CHAT_WORDS.search(
                        exc.message):  # an embedding model named in a chain: never an answer (http.NOT_CHAT)
                    raise ProviderError(Reason.MODEL_MISSING, f"{exc.message} (an embedding model: it cannot answer a "
                                        "chat; name a chat model here)", status=exc.status,
                                        kind_refused=True) from None
                if exc.reason is Reason.RATE_LIMITED and exc.retry_after is None and _USAGE_LIMIT.search(exc.message):
                    # an allowance spent for the hour, the session or the week, not a moment's limit: as a rate limit
                    # without a wait it was asked again after a backoff, then every few seconds, refused each time.
                    # It cools as an account that cannot pay does (a 429 insufficient_quota), until someone acts
                    raise ProviderError(Reason.AUTH_ERROR, f"Ollama's cloud allowance is spent: {exc.message}",
                                        status=exc.status) from None
                if opened or tries or not (body.get("think") is not None and _NO_THINKING in exc.message):
                    raise
                # Ollama refuses ``think`` for a model that cannot think (400 "... does not support thinking"):
                # learned, as probe would have, so this and later requests go without it instead of falling back
                log.info("model %s: Ollama says it does not support thinking; asking without think from now on",
                         self.name)
                self.learn({"thinking": False})

    async def embeddings(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """``POST /api/embed`` (docs.ollama.com/api, "Generate Embeddings"): ``input`` a list of texts, ``truncate``
        as the client sent it (Ollama's default, on: a text past the context is cut to it; off: a 400), ``dimensions``
        where asked, the model's ``num_ctx`` and ``keep_alive`` as for chat. Answers ``embeddings`` (a vector per
        text) and ``prompt_eval_count``."""
        embed = request.embed
        assert embed is not None
        texts_only(embed, "Ollama's /api/embed")
        body = request_body(self.model_id, embed)
        if embed.truncate is not None:
            body["truncate"] = embed.truncate
        if self.config.context:
            body["options"] = {"num_ctx": self.config.context}
        if self.config.keep_alive:
            body["keep_alive"] = self.config.keep_alive
        data = await posted(self.client, "/api/embed", body, timeouts, _extract_error,
                            body_limit(self.response_limit, embed), "Ollama's embeddings answer")
        if data.get("error"):  # an error inside a 200
            kind, words = _extract_error(data)
            raise refusal(stream_error(kind, words if kind else f"Ollama: {words}"))
        tokens = data.get("prompt_eval_count")
        for chunk in answer(data.get("embeddings"),
                            tokens if tokens is not None else input_tokens(embed)):
            yield chunk

    #: learned: the model embeds and cannot chat, so it is loaded through ``/api/embed`` (:meth:`warmup`)
    _embeds_only = False

    async def warmup(self, keep_alive: str | None = None) -> None:
        """Ollama preloads a model on a request that has nothing to answer: a chat with no messages, or, for an
        embedding model, which refuses any chat (400 '"nomic-embed-text" does not support chat', routes.go
        ChatHandler's capability check), an embed with no ``input`` (EmbedHandler loads the model, then answers
        ``embeddings: []``; ollama#6401, #6295). Before, such a model in the config failed every keep-warm round
        with a warning and was never kept loaded: each embedding after Ollama's keep-alive paid its load."""
        body: dict[str, Any] = {"model": self.model_id}
        if keep_alive or self.config.keep_alive:
            body["keep_alive"] = keep_alive or self.config.keep_alive
        if not self._embeds_only:
            status, data = await self.client.request_json("POST", "/api/chat", {**body, "messages": []},
                                                          timeout=300.0)
            if status < 400 or not (isinstance(data, dict) and NOT_CHAT_WORDS.search(str(data.get("error") or ""))):
                self._warmed(status, data)
                return
            self._embeds_only = True
            log.info("model %s: an embedding model; kept warm through /api/embed", self.name)
        status, data = await self.client.request_json("POST", "/api/embed", body, timeout=300.0)
        self._warmed(status, data)

    @staticmethod
    def _warmed(status: int, data: Any) -> None:
        """Nothing, or the warm-up's failure in Ollama's words and the reason they mean."""
        if status >= 400:
            # Ollama's words, and the reason they mean: it was "server_error: warm-up failed: HTTP 500" for a model
            # the machine has no room for and for one never pulled (a 404) alike, which said neither why nor what to do
            words = said(str(data.get("error") or "")) if isinstance(data, dict) else ""
            detail = f"warm-up failed: HTTP {status}" + (f": {words}" if words else "")
            if NO_MEMORY_WORDS.search(words):
                raise no_memory(detail, status)
            reason = Reason.MODEL_MISSING if _NO_ROOM.search(words) else reason_for_status(status)
            raise ProviderError(reason, detail, status=status)

    # -- facts for ops -------------------------------------------------------------------

    async def _model_info(self) -> tuple[dict[str, Any] | None, str]:
        """``model_info`` from /api/show (None and why when the server does not give it)."""
        status, data = await self.client.request_json("POST", "/api/show", {"model": self.model_id},
                                                      timeout=FACT_TIMEOUT)
        if status != 200 or not isinstance(data, dict):
            return None, f"/api/show answered HTTP {status}"
        info = data.get("model_info")
        return (info, "") if isinstance(info, dict) else (None, "no model_info in /api/show")

    async def server_parallel(self) -> ServerParallel:
        """How many of this model's requests its Ollama runs at once (ollama_parallel.py): the model's architecture
        and kind from /api/show, the release from /api/version, the server's environment where this machine has
        it."""
        shown: Any = {}
        version: Any = {}
        with contextlib.suppress(ProviderError):  # a server that does not answer: the environment may still say
            status, shown = await self.client.request_json("POST", "/api/show", {"model": self.model_id},
                                                           timeout=FACT_TIMEOUT)
            shown = shown if status == 200 and isinstance(shown, dict) else {}
            _, version = await self.client.request_json("GET", "/api/version", timeout=FACT_TIMEOUT)
        caps = shown.get("capabilities")
        embedding = isinstance(caps, list) and "embedding" in caps and "completion" not in caps
        release = version.get("version") if isinstance(version, dict) else None
        url = urlsplit(self.endpoint)  # the server's own address, not a proxy's: its environment is read here
        host, port = url.hostname or "127.0.0.1", url.port or 11434
        return await asyncio.to_thread(server_parallel, str(_mapping(shown.get("details")).get("family") or ""),
                                       embedding, release if isinstance(release, str) else None, host, port,
                                       answered=bool(shown or version))

    async def _listing(self, route: str, timeout: float = FACT_TIMEOUT) -> dict[str, Any] | None:
        """This model's entry in /api/ps (loaded) or /api/tags (installed): {} if not listed,
        None if the server gave no listing."""
        status, data = await self.client.request_json("GET", route, timeout=timeout)
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("models"), list):
            return None
        wanted = self._names()
        for entry in data["models"]:
            if isinstance(entry, dict) and wanted & {entry.get("name"), entry.get("model")}:
                return entry
        return {}

    def _names(self) -> set[str]:
        """The names Ollama lists this model under: a model without a tag is its ``:latest``."""
        tail = self.model_id.rsplit("/", 1)[-1]
        return {self.model_id, self.model_id if ":" in tail else f"{self.model_id}:latest"}

    def not_running(self, address: tuple[str, int]) -> str:
        """Ollama's own address on this machine refusing: Ollama is not running — the commonest first failure, said
        until now as "nothing listening on 127.0.0.1:11434" and no more. How to start it (ollama docs, linux.md:
        `ollama serve`, or the systemd service its installer adds; the app on a Mac or Windows)."""
        if address[1] != 11434 or address[0] not in ("127.0.0.1", "localhost"):
            return ""
        return ("; Ollama is not running here: start it (`ollama serve`, `sudo systemctl start ollama`, or the Ollama "
                "app), then `ollama pull` the model if `ollama list` does not show it")

    def answer_path(self) -> str | None:
        return "/api/tags"

    async def not_served(self) -> str | None:
        """A model not pulled on its Ollama: `models` said 'available' until a request had failed on it (a config
        copied from the reference names qwen3.5 and gemma4:26b, whatever this Ollama has). "" when it lists it."""
        names = await _installed(self.client)
        if names is None:
            return await _not_ollama(self.client, self.endpoint, self.name)
        if self._names() & set(names):
            return ""
        return (f"'{self.model_id}' is not on the Ollama at {shown_url(self.endpoint)} (`ollama pull {self.model_id}` "
                f"there, or name one it has in models.{self.name}.model); {tags_said(self.model_id, names)}")

    async def _size(self, route: str) -> int | None:
        return _bytes((await self._listing(route) or {}).get("size"))

    async def template_family(self) -> str | None:
        """The config's ``template``, else the family of the template /api/show answers for the model (asked once;
        a server that does not answer is asked again next time)."""
        if self.config.template is not None:
            return self.config.template
        if self._family is None:
            shown = await _shown(self.client, self.model_id)
            if not shown:
                return None
            template = shown.get("template")
            self._family = (family_of(template) if isinstance(template, str) else None,)
        return self._family[0]

    def server_gone(self) -> None:
        super().server_gone()
        self._family = None  # another model may be pulled under the name

    async def context_window(self) -> ContextWindow:
        served = self.config.context or DEFAULT_CONTEXT
        try:
            info, why = await self._model_info()
        except ProviderError as exc:
            return ContextWindow(None, served, f"could not ask the server: {exc.reason}")
        if info is None:
            return ContextWindow(None, served, why)
        length = trained_context(info)
        if not length:
            return ContextWindow(None, served, "no context_length in model_info")
        return ContextWindow(length, served, "Ollama /api/show model_info")

    async def memory(self, *, ask_server: bool = True) -> MemoryFacts:
        """Ollama allocates ``num_ctx`` of KV cache for each of its parallel slots: OLLAMA_NUM_PARALLEL where it can
        be told (:meth:`server_parallel`), else taken to be ``max_concurrent``; a loaded model's /api/ps size
        already includes that cache."""
        context = self.config.context or DEFAULT_CONTEXT
        facts = MemoryFacts(context=context, parallel=self.config.max_concurrent, parallel_assumed=True)
        if not ask_server:
            return facts
        server = await self.server_parallel()
        if server.value is not None:
            facts = dataclasses.replace(facts, parallel=server.value, parallel_assumed=False)
        facts = dataclasses.replace(facts, server_parallel=server)
        try:
            if size := _bytes((loaded := await self._listing("/api/ps") or {}).get("size")):
                return dataclasses.replace(facts, weights_bytes=size,
                                           weights_source="Ollama /api/ps (loaded, KV included)",
                                           kv_included_in="/api/ps size",
                                           cpu_share=_cpu_share(size, loaded.get("size_vram")))
            size = await self._size("/api/tags")
            info, _ = await self._model_info()
            missing = "" if size else await self.not_served()
        except ProviderError as exc:  # `plan` said "set memory_gb" of a model whose server was only down
            return dataclasses.replace(facts, weights_source=f"unknown: {exc.message}")
        return dataclasses.replace(facts, weights_bytes=size, weights_source="Ollama /api/tags" if size else
                                   f"unknown: {missing}" if missing else "unknown", kv_shape=kv_shape(info or {}))

    #: the load started after a cold start's first-token timeout (:meth:`cold_start`), while it runs or failed
    _loading: asyncio.Task[None] | None = None

    async def cold_start(self, slot: PreloadSlot | None = None) -> str:
        """A first-token timeout on a model /api/ps does not list: the request paid its load (unloaded after its
        keep_alive, or evicted for OLLAMA_MAX_LOADED_MODELS), which Ollama aborts when the client hangs up ("client
        connection closed before server finished loading, aborting load": ollama#7408). It was a health failure:
        every later request began the load again, timed out again, and two of them cooled a healthy model. Now the
        load is finished behind the request (a preload, Ollama's own keep_alive) and the model is not cooled — unless
        such a load already failed, then the timeout counts as before.

        The load is a request at Ollama like any other: it goes inside ``slot``, one of the model's
        ``max_concurrent`` (the router's, shared on Redis when the state is). Sent beside them, each process that
        timed out added one request past ``max_concurrent`` at Ollama while the model loaded."""
        if self._loading is not None and self._loading.done():
            failed = not self._loading.cancelled() and self._loading.exception() is not None
            self._loading = None
            if failed:
                return ""
        if self._loading is not None:
            return "the model is still loading (started after an earlier timeout)"
        try:
            entry = await self._listing("/api/ps", TAGS_TIMEOUT)
        except ProviderError:
            return ""
        if entry != {}:  # loaded (a slow answer, not a load), or no listing to tell by
            return ""
        self._loading = asyncio.create_task(self._load_behind(slot), name=f"ollama-load-{self.name}")
        return ("the model was not loaded (Ollama's keep_alive or OLLAMA_MAX_LOADED_MODELS unloaded it) and a "
                "timed-out request aborts its load: loading it now, not cooled")

    async def _load_behind(self, slot: PreloadSlot | None) -> None:
        log.info("model %s: a request timed out while Ollama loaded the model; loading it in the background", self.name)
        async with (slot or no_slot)() as held:
            if not held:  # every slot stayed busy: the requests holding them are at Ollama, loading it themselves
                log.info("model %s: no slot of its max_concurrent came free for the background load; not sent",
                         self.name)
                return
            try:
                await self.warmup()
            except ProviderError as exc:
                log.warning("model %s: loading it in the background failed: %s", self.name, exc)
                raise

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ProviderError):
                await self._loading
        self._loading = None
        await super().aclose()

    async def loaded(self) -> bool | None:
        try:
            entry = await self._listing("/api/ps")
        except ProviderError:
            return None
        return None if entry is None else bool(entry)

    def keep_alive_seconds(self) -> float | None:
        return parse_duration(self.config.keep_alive)
