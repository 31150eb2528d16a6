"""Fake Ollama server speaking the native API (/api/chat NDJSON, /api/tags, /api/ps).

Shapes follow Ollama's documented responses: NDJSON stream whose last line has
`done: true` and nanosecond durations, tool-call arguments as JSON objects, errors
as `{"error": "..."}` (even mid-stream, with HTTP 200).
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.chat import ChatServer, Plan, ReplyText, content_value, count_words, usage_values
from tests.fakes.embeddings import OLLAMA_NO_EMBEDDINGS, embed_call, ollama_answer
from tests.fakes.faults import Fault, FaultKind
from tests.fakes.playback import Rendering, json_bytes
from tests.fakes.server import RecordedRequest

NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"
QUEUE_FULL = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_DIED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, "
    "check ollama server logs for details"
)
_DEFAULT_MESSAGES = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: "model not found",
    429: "too many requests",
    500: RUNNER_DIED,
    502: "bad gateway",
    503: QUEUE_FULL,
}
_DEFAULT_KEEP_ALIVE = timedelta(minutes=5)
#: the context an embedding runs in when the request sets no ``num_ctx`` (Ollama's long-time default)
EMBED_CONTEXT = 2048
_FOREVER = datetime(2318, 1, 1, tzinfo=UTC)
#: the ns an answer waited for one of its model's ``num_parallel`` turns, counted into its ``total_duration``
_QUEUED_NS: contextvars.ContextVar[int] = contextvars.ContextVar("queued_ns", default=0)


def canonical_model(name: str) -> str:
    """Ollama resolves a bare model name to its `:latest` tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_keep_alive(value: Any) -> timedelta | None:
    """Duration until unload; None means "keep forever" (negative values)."""
    if value is None or value == "":
        return _DEFAULT_KEEP_ALIVE
    if isinstance(value, int | float):
        return None if value < 0 else timedelta(seconds=value)
    text = str(value).strip()
    if text.startswith("-"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text)
    if not match:
        return _DEFAULT_KEEP_ALIVE
    number, unit = float(match.group(1)), match.group(2) or "s"
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return timedelta(seconds=number * scale)


def model_entry(spec: str | dict[str, Any]) -> dict[str, Any]:
    """A full /api/tags entry from a name or a partial dict."""
    given = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = canonical_model(given.get("name") or given["model"])
    family = name.split(":")[0].split("/")[-1].rstrip("0123456789.") or "llama"
    details = {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "1.2B",
        "quantization_level": "Q4_K_M",
        **given.pop("details", {}),
    }
    entry = {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00.000000000Z",
        "size": 1_321_098_329,
        "digest": (name.encode().hex() * 64)[:64],
        "details": details,
    }
    entry.update(given)
    entry["name"] = entry["model"] = name
    return entry


class OllamaServer(ChatServer):
    """Ollama native API: /api/chat, /api/generate, /api/tags, /api/ps, /api/version."""

    tool_call_prefix = "call_"

    def __init__(
        self,
        models: Iterable[str | dict[str, Any]] | None = None,
        *,
        loaded: Iterable[str] = (),
        reply_text: ReplyText = "Hello from the fake server.",
        thinking_text: str = "Let me think about this briefly.",
        tool_arguments: dict[str, Any] | None = None,
        answer_tools: bool = True,
        tool_preamble: str = "",
        chunk_interval: float = 0.0,
        version: str = "0.12.6",
        embed_models: Iterable[str] | None = None,
        embedding_dims: int = 8,
        chat_models: Iterable[str] | None = None,
        template: str | None = None,
        num_parallel: int | None = None,
        max_queue: int | None = None,
        context_length: int = 4096,
        load_seconds: float = 0.0,
        vram: dict[str, int] | None = None,
    ) -> None:
        """``embed_models``: the models ``/api/embed`` answers for (None: every one); the others refuse as a chat
        model does (tests/fakes/embeddings.py). ``chat_models``: the models that chat (None: every one); the others
        are embedding models, and ``/api/chat`` refuses them, a preload too, as Ollama's capability check does (400
        '"nomic-embed-text" does not support chat': server/routes.go ChatHandler, errCapabilityCompletion).
        ``num_parallel`` and ``max_queue``: OLLAMA_NUM_PARALLEL and OLLAMA_MAX_QUEUE (envconfig). With
        ``num_parallel`` given, at most that many chats of one model run at once and the others wait their turn in
        arrival order, as llm/server.go's Completion does (``s.sem.Acquire(ctx, 1)``, a semaphore of numParallel;
        a client gone meanwhile aborts it: "aborting completion request due to client closing the connection"); the
        wait is inside the answer's ``total_duration`` (routes.go: ``time.Since(checkpointStart)``, taken when the
        handler began) and outside ``load_duration`` (``checkpointLoaded``, before the completion) and the runner's
        prompt_eval/eval durations. None: not modelled, every chat runs at once (Ollama's default of 1 for the
        queue bound). With ``max_queue``
        set, a chat beyond ``num_parallel + max_queue`` in flight is refused at once with 503 "server busy, please
        try again.  maximum pending requests exceeded", as server/sched.go's GetRunner does when its pendingReqCh
        (sized OLLAMA_MAX_QUEUE, 512 by default) is full (ErrMaxQueue; routes.go answers it with
        http.StatusServiceUnavailable); None: never full. ``context_length``: the num_ctx a chat runs in when the
        request sets none (Ollama's 4096 on a small GPU: docs/faq.md "How can I specify the context window size?").
        A prompt past it is cut, not refused: the answer is a 200 whose ``prompt_eval_count`` is num_ctx / 2 + 2 —
        the half of the window Ollama keeps (ollama/ollama#17427, #17889's 2050 at 4096, #3839; little-coder#128).
        ``load_seconds``: what a chat (or a preload) for a model not loaded waits before its first line — the load,
        stated after as ``load_duration`` by the real server (docs/api.md); a model unloads after its keep_alive, 5
        minutes by default (docs/faq.md "How do I keep a model loaded in memory"), or when OLLAMA_MAX_LOADED_MODELS
        evicts it (:meth:`unload`). A client that hangs up during the load aborts it, and the model stays unloaded:
        "client connection closed before server finished loading, aborting load", then a 499 (ollama/ollama#7408;
        rsynnot/magic-lists-for-navidrome#34, a 15 s client bound against a load that takes longer).
        ``vram``: a loaded model's ``size_vram`` in /api/ps (0 unless given: all on the CPU, as on a machine without
        a GPU); below its ``size``, Ollama split the model between GPU and CPU for want of GPU memory — ``ollama ps``
        shows "48%/52% CPU/GPU" (docs.ollama.com/api/ps: size_vram is the part in VRAM).
        ``template``: served as every model's chat template by ``/api/show`` (docs.ollama.com/api/show: ``modelfile``,
        ``parameters``, ``template``, ``details``, ``model_info``, ``capabilities``); None: no ``/api/show`` route."""
        self.template = template
        self.num_parallel, self.max_queue, self.context_length = num_parallel, max_queue, context_length
        self.load_seconds = load_seconds
        self.vram = {canonical_model(k): v for k, v in (vram or {}).items()}
        #: loads a client's hang-up aborted (ollama#7408)
        self.aborted_loads = 0
        self.chat_models = None if chat_models is None else {canonical_model(m) for m in chat_models}
        super().__init__(
            reply_text=reply_text,
            thinking_text=thinking_text,
            tool_arguments=tool_arguments,
            answer_tools=answer_tools,
            tool_preamble=tool_preamble,
            chunk_interval=chunk_interval,
        )
        self.models: list[dict[str, Any]] | None = (
            None if models is None else [model_entry(m) for m in models]
        )
        self.version = version
        self.embed_models = None if embed_models is None else {canonical_model(m) for m in embed_models}
        self.embedding_dims = embedding_dims
        self._loaded_lock = threading.Lock()
        self._loaded: dict[str, datetime] = {}
        self._turns: dict[str, asyncio.Semaphore] = {}
        for name in loaded:
            self._mark_loaded(name, "5m")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self._root, methods=["GET", "HEAD"]),
            Route("/api/version", self._version, methods=["GET"]),
            Route("/api/tags", self._tags, methods=["GET"]),
            Route("/api/ps", self._ps, methods=["GET"]),
            Route("/api/chat", self._chat, methods=["POST"]),
            Route("/api/generate", self._generate, methods=["POST"]),
            Route("/api/embed", self._embed, methods=["POST"]),
        ] + ([Route("/api/show", self._show, methods=["POST"])] if self.template is not None else [])

    async def _show(self, request: Request) -> Any:
        body = (await self.record(request)).json or {}
        model = str(body.get("model") or body.get("name") or "")
        if (entry := self._entry(model)) is None:
            return self.error_response(404, f"model '{model}' not found")
        # details as /api/tags lists them: Ollama's ShowHandler fills both from the model's config (ModelFamily…)
        return JSONResponse({"modelfile": f"FROM {model}\nTEMPLATE \"\"\"{self.template}\"\"\"\n", "parameters": "",
                             "template": self.template, "details": entry["details"],
                             "model_info": {}, "capabilities": self._capabilities(model)})

    def _capabilities(self, model: str) -> list[str]:
        """What /api/show says the model does: an embedding model (one not in ``chat_models``) says ``embedding``,
        not ``completion`` — nomic-embed-text's /api/show lists ["embedding"] (docs.ollama.com/api/show,
        types/model/capability.go); every model said "completion" here, so ``init --detect`` made it a chat model."""
        chats = self.chat_models is None or canonical_model(model) in self.chat_models
        return ["completion"] if chats else ["embedding"]

    async def _embed(self, request: Request) -> Any:
        def refuse(body: dict[str, Any]) -> JSONResponse | None:
            model = str(body["model"])
            if self._entry(model) is None:
                return self.error_response(404, f'model "{model}" not found, try pulling it first')
            if self.embed_models is not None and canonical_model(model) not in self.embed_models:
                return self.error_response(500, OLLAMA_NO_EMBEDDINGS)
            if body.get("truncate") is False and isinstance(texts := body.get("input"), list | str):
                # EmbedHandler: a text past the context is cut to it, unless `truncate` is false — then a 400
                # (docs/api.md "Generate Embeddings"; OllamaSharp users meet "the input length exceeds the context
                # length", jeastham1993/zettel-system INFRA-001); words stand in for tokens here
                context = (body.get("options") or {}).get("num_ctx") or EMBED_CONTEXT
                if any(count_words(t) > context for t in ([texts] if isinstance(texts, str) else texts)
                       if isinstance(t, str)):
                    return self.error_response(400, "the input length exceeds the context length")
            return None

        body = await request.json()
        if isinstance(body, dict) and "model" in body and body.get("input") is None:
            # no input: Ollama's EmbedHandler loads the model (keep_alive applied) and answers no vectors — the way
            # to preload an embedding model (ollama#6401)
            await self.record(request)
            if (refused := refuse(body)) is not None:
                return refused
            self._mark_loaded(str(body["model"]), body.get("keep_alive"))
            return JSONResponse({"model": body["model"], "embeddings": [], "total_duration": 1000,
                                 "load_duration": 500, "prompt_eval_count": 0})

        return await embed_call(self, request, answer=ollama_answer(self.embedding_dims), refuse=refuse)

    # ----- model registry --------------------------------------------------------------

    def _entry(self, name: str) -> dict[str, Any] | None:
        if self.models is None:
            return model_entry(name)
        wanted = canonical_model(name)
        return next((m for m in self.models if m["name"] == wanted), None)

    def _mark_loaded(self, name: str, keep_alive: Any) -> bool:
        """Apply keep_alive to the loaded set; returns False when it asked to unload."""
        duration = parse_keep_alive(keep_alive)
        with self._loaded_lock:
            if duration is not None and duration.total_seconds() <= 0:
                self._loaded.pop(canonical_model(name), None)
                return False
            expiry = _FOREVER if duration is None else datetime.now(UTC) + duration
            self._loaded[canonical_model(name)] = expiry
            return True

    @property
    def loaded_models(self) -> list[str]:
        with self._loaded_lock:
            return sorted(self._loaded)

    def unload(self, name: str) -> None:
        """Test helper: forget that a model is loaded."""
        with self._loaded_lock:
            self._loaded.pop(canonical_model(name), None)

    # ----- errors ----------------------------------------------------------------------

    def error_payload(self, status: int, message: str | None, error_type: str | None) -> dict[str, Any]:
        return {"error": message or _DEFAULT_MESSAGES.get(status, "internal server error")}

    def error_chunk(self, payload: dict[str, Any]) -> bytes:
        return json_bytes(payload) + b"\n"

    # ----- endpoints -------------------------------------------------------------------

    async def _root(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("Ollama is running")

    async def _version(self, request: Request) -> JSONResponse:
        return JSONResponse({"version": self.version})

    async def _tags(self, request: Request) -> JSONResponse:
        await self.record(request)
        return JSONResponse({"models": list(self.models or [])})

    async def _ps(self, request: Request) -> JSONResponse:
        await self.record(request)
        entries = []
        with self._loaded_lock:
            loaded = dict(self._loaded)
        for name, expiry in sorted(loaded.items()):
            entry = self._entry(name) or model_entry(name)
            entries.append(
                {
                    "name": entry["name"],
                    "model": entry["model"],
                    "size": entry["size"],
                    "digest": entry["digest"],
                    "details": entry["details"],
                    "expires_at": expiry.isoformat().replace("+00:00", "Z"),
                    "size_vram": self.vram.get(entry["name"], 0),
                    "context_length": 4096,
                }
            )
        return JSONResponse({"models": entries})

    async def _validated(
        self, request: Request
    ) -> tuple[RecordedRequest, dict[str, Any], JSONResponse | None]:
        """Record the request; an error response when the body or model is unacceptable."""
        recorded = await self.record(request)
        body = recorded.json
        if not isinstance(body, dict):
            return recorded, None, self.error_response(400, "invalid character in request body")
        model = body.get("model")
        if not model:
            return recorded, None, self.error_response(400, "model is required")
        if self._entry(model) is None:
            return (
                recorded,
                None,
                self.error_response(404, f'model "{model}" not found, try pulling it first'),
            )
        return recorded, body, None

    async def _chat(self, request: Request) -> ASGIApp:
        recorded, body, error = await self._validated(request)
        if error is not None:
            return error
        model: str = body["model"]
        if self.chat_models is not None and canonical_model(model) not in self.chat_models:
            return self.error_response(400, f'"{model}" does not support chat')
        messages = body.get("messages") or []
        if self.max_queue is not None and self.in_flight >= (self.num_parallel or 1) + self.max_queue:
            return self.error_response(503, QUEUE_FULL)  # sched.go: pendingReqCh full -> ErrMaxQueue
        if not await self._load(request, model):
            return PlainTextResponse("", status_code=499)  # nobody there to read it
        stays = self._mark_loaded(model, body.get("keep_alive"))
        if not messages:
            reason = "load" if stays else "unload"
            preload = {
                "model": model,
                "created_at": timestamp(),
                "message": {"role": "assistant", "content": ""},
                "done_reason": reason,
                "done": True,
            }
            return self.play(recorded, model, lambda fault: self._single(preload))
        turn = await self._turn(request, model)
        if turn is False:
            return PlainTextResponse("", status_code=499)  # gone while queued: nobody there to read it
        tools = [
            t.get("function", {}).get("name", "") for t in body.get("tools") or [] if isinstance(t, dict)
        ]
        last_role = messages[-1].get("role") if isinstance(messages[-1], dict) else None
        stream = body.get("stream", True) is not False

        def render(fault: Fault) -> Rendering:
            plan = self.plan(
                body,
                fault,
                tools=[t for t in tools if t],
                last_is_tool_result=last_role == "tool",
                thinking=_think_enabled(body.get("think")),
                input_tokens=self._read_tokens(body, max(count_words(messages), 1)),
            )
            return self._render_chat(model, plan, stream)

        app = self.play(recorded, model, render)
        _QUEUED_NS.set(0)
        return app if turn is None else self._holding(app, turn)

    async def _turn(self, request: Request, model: str) -> asyncio.Semaphore | bool | None:
        """Wait for one of the model's ``num_parallel`` turns (the semaphore held: give it back with
        :meth:`_holding`); None: not modelled; False: the client hung up while it waited."""
        if self.num_parallel is None:
            return None
        turns = self._turns.setdefault(canonical_model(model), asyncio.Semaphore(self.num_parallel))
        began = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(turns.acquire(), 0.05)
            except TimeoutError:
                if await request.is_disconnected():
                    return False
                continue
            _QUEUED_NS.set(round((time.monotonic() - began) * 1e9))
            return turns

    @staticmethod
    def _holding(app: ASGIApp, turn: asyncio.Semaphore) -> ASGIApp:
        async def run(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await app(scope, receive, send)
            finally:
                turn.release()

        return run

    async def _generate(self, request: Request) -> ASGIApp:
        recorded, body, error = await self._validated(request)
        if error is not None:
            return error
        model: str = body["model"]
        stays = self._mark_loaded(model, body.get("keep_alive"))
        prompt = body.get("prompt") or ""
        if not prompt:
            preload = {
                "model": model,
                "created_at": timestamp(),
                "response": "",
                "done": True,
                "done_reason": "load" if stays else "unload",
            }
            return self.play(recorded, model, lambda fault: self._single(preload))
        stream = body.get("stream", True) is not False

        def render(fault: Fault) -> Rendering:
            plan = self.plan(
                body,
                fault,
                tools=[],
                last_is_tool_result=False,
                thinking=_think_enabled(body.get("think")),
                input_tokens=max(count_words(prompt) + count_words(body.get("system") or ""), 1),
            )
            return self._render_generate(model, plan, stream)

        return self.play(recorded, model, render)

    async def _load(self, request: Request, model: str) -> bool:
        """Wait ``load_seconds`` for a model not loaded; False when the client hung up meanwhile (the load aborted)."""
        if not self.load_seconds or canonical_model(model) in self.loaded_models:
            return True
        until = time.monotonic() + self.load_seconds
        while time.monotonic() < until:
            if await request.is_disconnected():
                self.aborted_loads += 1
                return False
            await asyncio.sleep(0.02)
        return True

    def _read_tokens(self, body: dict[str, Any], words: int) -> int:
        """The prompt tokens Ollama reports reading: all of them, or, past num_ctx, the half of the window it keeps
        after cutting the front off in silence (ollama/ollama#17427: "only enough tokens to fill half of the buffer
        are used"; a 200 all the same)."""
        options = body.get("options")
        num_ctx = (options.get("num_ctx") if isinstance(options, dict) else None) or self.context_length
        return words if words <= num_ctx else num_ctx // 2 + 2

    # ----- rendering -------------------------------------------------------------------

    def _single(self, payload: dict[str, Any]) -> Rendering:
        return self._finish(
            Rendering(stream=False, media_type=JSON, body=json_bytes(payload)), payload["model"]
        )

    def _finish(self, rendering: Rendering, model: str) -> Rendering:
        broken = (
            b'{"model":"' + model.encode() + b'","created_at":"' + timestamp().encode() + b'","message":{"con'
        )
        rendering.invalid_chunk = broken + b"\n"
        rendering.invalid_body = broken
        return rendering

    def _stats(self, plan: Plan) -> dict[str, Any]:
        """Ollama's durations (ns). eval_duration is the time the tokens took: 10 ms each, or the pace the answer is
        sent at when slower (``chunk_interval``), as a real server's decoding is what paces its stream — a fake that
        drips at 20 tok/s and states 100 would be believed (the router takes the server's own eval timings)."""
        load, prompt_eval, evaluation = (
            1_000_000,
            plan.input_tokens * 500_000,
            plan.output_tokens * max(10_000_000, round(self.chunk_interval * 1e9)),
        )
        prompt_count, eval_count = usage_values(plan.fault, plan.input_tokens, plan.output_tokens)
        return {
            "total_duration": _QUEUED_NS.get() + load + prompt_eval + evaluation,
            "load_duration": load,
            "prompt_eval_count": prompt_count,
            "prompt_eval_duration": prompt_eval,
            "eval_count": eval_count,
            "eval_duration": evaluation,
        }

    @staticmethod
    def _tool_calls(plan: Plan) -> list[dict[str, Any]]:
        assert plan.tool_call is not None
        call = plan.tool_call
        return [{"id": call.id, "function": {"index": 0, "name": call.name, "arguments": call.arguments}}]

    def _render_chat(self, model: str, plan: Plan, stream: bool) -> Rendering:
        def line(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
            return {
                "model": model,
                "created_at": timestamp(),
                "message": {"role": "assistant", **message},
                "done": False,
                **extra,
            }

        if not stream:
            message: dict[str, Any] = {"content": plan.full_text}
            if plan.thinking:
                message["thinking"] = plan.full_thinking
            if plan.tool_call:
                message["tool_calls"] = self._tool_calls(plan)
            payload = line(message, done=True, done_reason="stop", **self._stats(plan))
            rendering = Rendering(stream=False, media_type=JSON, body=json_bytes(payload))
            rendering.token_count = plan.output_tokens
            return self._finish(rendering, model)

        objects = [line({"content": "", "thinking": piece}) for piece in plan.thinking]
        objects += [line({"content": content_value(piece, plan.fault, i == 0)}) for i, piece in enumerate(plan.text)]
        if plan.tool_call:
            objects.append(line({"content": "", "tool_calls": self._tool_calls(plan)}))
        objects.append(line({"content": ""}, done=True, done_reason="stop", **self._stats(plan)))
        if plan.fault.kind is FaultKind.NO_CHOICES:  # lines with no message, a bare done: nothing was said
            objects = [{"model": model, "created_at": timestamp(), "done": False},
                       {"model": model, "created_at": timestamp(), "done": True}]
        if plan.fault.kind is FaultKind.UNKNOWN_EVENTS:
            for o in objects:
                o["logprobs"] = None
                o["remote_host"] = "fake-runner"
        chunks = [json_bytes(o) + b"\n" for o in objects]
        rendering = Rendering(stream=True, media_type=NDJSON, chunks=chunks, token_count=plan.output_tokens)
        return self._finish(rendering, model)

    def _render_generate(self, model: str, plan: Plan, stream: bool) -> Rendering:
        def line(**fields: Any) -> dict[str, Any]:
            return {"model": model, "created_at": timestamp(), "response": "", "done": False, **fields}

        final = {"done": True, "done_reason": "stop", "context": [1, 2, 3], **self._stats(plan)}
        if not stream:
            extra = {"thinking": plan.full_thinking} if plan.thinking else {}
            payload = line(response=plan.full_text, **extra, **final)
            rendering = Rendering(stream=False, media_type=JSON, body=json_bytes(payload))
            rendering.token_count = plan.output_tokens
            return self._finish(rendering, model)
        objects = [line(thinking=piece) for piece in plan.thinking]
        objects += [line(response=piece) for piece in plan.text]
        objects.append(line(**final))
        chunks = [json_bytes(o) + b"\n" for o in objects]
        rendering = Rendering(stream=True, media_type=NDJSON, chunks=chunks, token_count=plan.output_tokens)
        return self._finish(rendering, model)


def _think_enabled(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() not in ("", "false", "none", "off")
    return bool(value)
