"""In-process llama.cpp (llama-cpp-python) on a GGUF file: the zero-setup embedded default.

llama.cpp inference is synchronous and one ``Llama`` object serves one generation at a
time, so generation runs in a worker thread behind a lock and chunks cross back to the
event loop through a queue.

Stopping (Ctrl-C, SIGTERM, a client gone): closing the stream sets a flag the worker checks
between tokens, and llama.cpp's own abort flag (:mod:`~modelyard.providers.llama_abort`), which
it checks inside a batch — so a long prompt's evaluation stops within moments, not at its end
(a minute and more on a slow CPU, past uvicorn's graceful wait and the 60 s give-up below) —
then *waits for the worker to finish* before the stream's ``finally`` ends —
however often the waiting task is cancelled again. So no llama.cpp call outlives the event
loop that asked for it (a worker still generating when the loop closed, or when ``atexit``
freed the model, crashed the process: "Event loop is closed", a segfault). The prompt's
token count is reported with the first token, so a stopped answer is logged with its real
input and output tokens. At exit, models are freed only once no worker holds them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.paths import default_model_path
from modelyard.providers.base import Provider
from modelyard.providers.embeddings import cannot_embed
from modelyard.providers.http import openai_tools, tool_call
from modelyard.providers.llama_abort import AbortFlag, Stop, is_abort
from modelyard.providers.llama_quiet import quiet_load
from modelyard.providers.llama_threads import generation_threads
from modelyard.providers.metadata import compute_terms, gguf_metadata, kv_shape, trained_context
from modelyard.providers.profile import ContextWindow, MemoryFacts, ModelProfile
from modelyard.providers.sampling import biases_left_out, put_native, token_ids
from modelyard.types import CONTEXT_FULL, ChatRequest, Chunk, Message, Usage

_END = object()

#: the first bytes of what is saved in place of a model, and what it is
_NOT_GGUF = ((b"version https://git-lfs", "a git-lfs pointer, not the model: `git lfs pull` in its clone, or download "
              "the file itself"),
             (b"<", "a web page (HTML), not the model: download the file's own link (on Hugging Face: the "
              "download arrow, a URL with /resolve/)"),
             (b"{", "JSON text, not the model (an error page or a listing?): download the .gguf file itself"))


def not_gguf(path: Path) -> str | None:
    """Why the file at ``path`` is no GGUF model, from its first bytes (a GGUF starts with b"GGUF"), else None:
    a browser's saved page or a git-lfs pointer loaded as "available" and failed every request as
    internal_error "Failed to load model from file"."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"cannot read the GGUF file {path}: {exc.strerror or exc}"
    if head[:4] == b"GGUF":
        return None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    what = next((why for start, why in _NOT_GGUF if text.lower().startswith(start)), None)
    return f"{path} is {what}" if what else (
        f"{path} is no GGUF model file (it does not start with 'GGUF'; {path.stat().st_size:,} bytes)")
#: loaded models by (GGUF path, context, generation threads, GPU layers)
_models: dict[tuple[str, int, int, int], Any] = {}
_models_lock = threading.Lock()
#: stop flags of the generations running now (exit stops them before it frees their model)
_running: set[Stop] = set()
#: longest wait for a stopped worker: a token, or one batch of prompt evaluation (seconds on a slow CPU)
STOP_WAIT = 60.0


@atexit.register
def _close_models() -> None:
    """Free models before interpreter teardown, when llama.cpp's own __del__ would fail noisily —
    but never one a worker is still using: stop the workers, then take each model's lock."""
    for flag in list(_running):
        flag.set()
    with _models_lock:
        for llm in _models.values():
            lock = getattr(llm, "_modelyard_lock", None)
            if lock is not None and not lock.acquire(timeout=STOP_WAIT):
                continue  # still generating after STOP_WAIT: leaking it beats freeing it under the worker
            try:
                with contextlib.suppress(Exception):
                    llm.close()
            finally:
                if lock is not None:
                    lock.release()
        _models.clear()


async def _wait_stopped(finished: asyncio.Future[None]) -> None:
    """Wait until the worker has let go of the model, even if this task is cancelled again meanwhile
    (a second Ctrl-C): the cancel is passed on afterwards, once nothing runs behind the loop's back."""
    cancelled = False
    while not finished.done():
        try:
            await asyncio.wait_for(asyncio.shield(finished), STOP_WAIT)
        except asyncio.CancelledError:
            cancelled = True
        except TimeoutError:
            break  # a worker stuck in one call for a minute: give up waiting rather than hang the caller
    if cancelled:
        raise asyncio.CancelledError


def load_llama(path: str, n_ctx: int, threads: int, gpu_layers: int = -1) -> Any:
    """Load (once per process) and return the ``Llama`` for a GGUF file; ``threads`` generate tokens,
    every core evaluates the prompt (``llama_threads.py`` says why). ``gpu_layers`` -1 offloads every
    layer on a GPU build: llama-cpp-python's own default (0) leaves a Mac's Metal GPU idle."""
    with _models_lock:
        key = (path, n_ctx, threads, gpu_layers)
        if key not in _models:
            from llama_cpp import Llama  # imported late: it is optional and slow to import

            _models[key] = quiet_load(Llama, model_path=path, n_ctx=n_ctx, n_threads=threads,
                                      n_threads_batch=os.cpu_count() or 1, n_gpu_layers=gpu_layers)
            _models[key]._modelyard_lock = threading.Lock()
            _models[key]._modelyard_abort = AbortFlag.install(_models[key])
        return _models[key]




def over_context(n_ctx: int, prompt_tokens: int, asked: int) -> str:
    """A prompt that fits the context but leaves less room than ``max_tokens`` asks. llama-cpp-python clamps such a
    request in silence: the answer stopped where the context ended, e.g. 42 tokens into 2,000 asked, with finish
    ``length`` and the route saying "TRUNCATED at max_tokens=2000". Refused in the words OpenAI-compatible servers
    use for it (output_cap.py reads them): the router asks once more within the room, and the route says the
    max_tokens was clamped; the prompt's evaluation is reused from llama.cpp's cache."""
    return (f"This model's maximum context length is {n_ctx} tokens. However, you requested {prompt_tokens + asked} "
            f"tokens ({prompt_tokens} in the messages, {asked} in the completion).")


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id
    return out


def _parts(llm: Any, kwargs: dict[str, Any]) -> Any:
    """The answer's stream as chat chunks (``choices[0].delta.content``): a chat completion's as they come, a text
    completion's (``Llama.create_completion``: ``choices[0].text``; with a ``suffix``, the prompt and the suffix go
    in the model's own FIM tokens when its vocabulary has them, llama-cpp-python's infill) reshaped to them."""
    if "prompt" not in kwargs:
        return llm.create_chat_completion(**kwargs)
    return _as_chat(llm.create_completion(**kwargs))


def _as_chat(parts: Any) -> Iterator[dict[str, Any]]:
    try:
        for part in parts:
            choice = part["choices"][0]
            yield {"choices": [{"delta": {"content": choice.get("text") or ""},
                                "finish_reason": choice.get("finish_reason")}]}
    finally:
        parts.close()  # under the model's lock, as the chat stream is closed (not left to the collector)


class LlamaCppProvider(Provider):
    preloads = True
    sends_prompts = True
    runs_in_process = True

    def __init__(self, name: str, config: ModelConfig):
        super().__init__(name, config)
        self.path = Path(config.path).expanduser() if config.path else None
        self.n_ctx = config.context or 4096
        self.threads = generation_threads(config.threads)
        self.gpu_layers = config.gpu_layers

    def base_profile(self) -> ModelProfile:
        # llama-cpp-python's chat handlers neither switch thinking nor hand its text over apart;
        # response_format json_object is grammar-constrained, so JSON mode holds
        return ModelProfile(shows_thinking=False, json_mode=True)

    def _resolved_path(self) -> Path:
        return self.path or default_model_path()

    def unavailable_reason(self) -> str | None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            # the command for the installer that put modelyard here (pipx, uv tool, a venv's pip): installer.py,
            # imported only here (~10 ms of start-up for every command that builds its providers otherwise)
            from modelyard.installer import add_extra_command

            return f"llama-cpp-python is not installed ({add_extra_command('local')})"
        path = self._resolved_path()
        if not path.is_file():
            # `modelyard fetch-model` works wherever modelyard is installed (pip too); bootstrap.sh only in a clone
            if self.path is None:
                return f"GGUF file not found: {path} (run `modelyard fetch-model` to fetch the default model)"
            if written := self.config.path_written:  # the file, line and key, as a config error says them
                # a path written relative may be meant from elsewhere; one written absolute (or ~/…) is just wrong
                fix = ("write its path at that line (absolute, or ~/…)" if self.config.path_was_relative
                       else "correct the path at that line")
                return f"GGUF file not found: {path} — {written}: put the file there, or {fix}"
            return f"GGUF file not found: {path} (check the model's `path:` in the config)"
        wrong = not_gguf(path)
        return f"{wrong} — {self.config.path_written}" if wrong and self.config.path_written else wrong

    def _kwargs(self, request: ChatRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "messages": [_message(m) for m in request.messages],
            "stream": True,
            "max_tokens": request.max_tokens or 512,
        }
        if request.prompt is not None:  # a text completion: create_completion, no chat template (_parts)
            kwargs = {"prompt": request.prompt.text, "suffix": request.prompt.suffix or None, "stream": True,
                      "max_tokens": kwargs["max_tokens"]}
            put_native(request, kwargs)
            self._put_biases(request, kwargs)
            return kwargs
        put_native(request, kwargs)  # create_chat_completion's and create_completion's own names
        self._put_biases(request, kwargs)
        if request.frequency_penalty:  # create_chat_completion's own (0, its default, left out)
            kwargs["frequency_penalty"] = request.frequency_penalty
        if request.presence_penalty:
            kwargs["presence_penalty"] = request.presence_penalty
        if request.tools:
            kwargs["tools"] = openai_tools(request.tools)
        if request.json_schema:  # llama-cpp-python compiles the schema into a grammar
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif request.json_output:
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def _vocabulary(self) -> int | None:
        """The loaded model's count of token ids (None: not loaded in this process yet)."""
        llm = _models.get(self._key())
        return int(llm.n_vocab()) if llm is not None else None

    def _put_biases(self, request: ChatRequest, kwargs: dict[str, Any]) -> None:
        """The client's ``logit_bias`` as create_chat_completion's and create_completion's ``logit_bias``: keyed by
        token id, the keys that are none of the model's left out (:meth:`left_out` says so)."""
        if request.logit_bias is not None and (biases := token_ids(request.logit_bias, self._vocabulary())):
            kwargs["logit_bias"] = biases

    def left_out(self, request: ChatRequest) -> str:
        if request.logit_bias is None:
            return ""
        return biases_left_out(request, len(token_ids(request.logit_bias, self._vocabulary())))

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        reason = self.unavailable_reason()
        if reason:
            raise ProviderError(Reason.UNAVAILABLE, reason)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = Stop()
        finished: asyncio.Future[None] = loop.create_future()
        kwargs = self._kwargs(request)
        key = self._key()
        asked = request.max_tokens  # the client's own budget (None: ours, 512, which the context may cut)

        def put(item: Any) -> None:
            # a last resort only: the stream waits for this thread, so its loop is normally still open
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def mark_finished() -> None:
            if not finished.done():
                finished.set_result(None)

        def work() -> None:
            try:
                llm = load_llama(*key)
                if biases := kwargs.get("logit_bias"):  # asked before the model was loaded: its vocabulary now
                    kwargs["logit_bias"] = {t: b for t, b in biases.items() if t < llm.n_vocab()} or None
                with llm._modelyard_lock:
                    abort: AbortFlag | None = getattr(llm, "_modelyard_abort", None)
                    if abort is not None:
                        cancel.attach(abort)
                    produced = 0
                    prompt_tokens: int | None = None
                    finish = "stop"
                    calls: dict[int, dict[str, str]] = {}
                    parts = _parts(llm, kwargs)
                    while True:
                        try:
                            part = next(parts)
                        except StopIteration:
                            break
                        except RuntimeError as exc:
                            if not (cancel.is_set() and is_abort(exc)):
                                raise
                            if prompt_tokens is None:  # stopped in the prompt: the batches it got through
                                prompt_tokens = max(0, int(getattr(llm, "n_tokens", 0)))
                            llm.reset()  # llama.cpp dropped the sequence's cache: nothing of it is reusable
                            finish = "cancelled"
                            break
                        if cancel.is_set():
                            finish = "cancelled"
                            break
                        if prompt_tokens is None:  # the prompt is evaluated, the first token not yet
                            prompt_tokens = max(0, int(getattr(llm, "n_tokens", 0)))
                            # from now on a stop is seen between tokens (one decode, a fraction of a second): an
                            # aborted decode drops the sequence's cache, and the next request on the same prompt (a
                            # stream closed at a client's stop sequence, router/stop_watch.py) evaluated it all
                            # again — 4 s of the embedded model's 44-token prompt on this loaded machine, not 0.1
                            cancel.detach()
                            if asked is not None and prompt_tokens + asked > self.n_ctx:
                                parts.close()  # now, under the model's lock: not left to the collector
                                raise ProviderError(Reason.BAD_REQUEST, over_context(self.n_ctx, prompt_tokens, asked))
                            put(Chunk("usage", usage=Usage(prompt_tokens, 0)))
                        choice = part["choices"][0]
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            produced += 1
                            put(Chunk("text", text=delta["content"]))
                        for frag in delta.get("tool_calls") or []:
                            slot = calls.setdefault(frag.get("index", 0), {"id": "", "name": "", "args": ""})
                            fn = frag.get("function") or {}
                            slot["id"] = frag.get("id") or slot["id"]
                            slot["name"] += fn.get("name") or ""
                            slot["args"] += fn.get("arguments") or ""
                        finish = choice.get("finish_reason") or finish
                    for c in calls.values():
                        put(("tool", c))
                    if prompt_tokens is None:
                        prompt_tokens = max(0, int(getattr(llm, "n_tokens", 0)) - produced)
                    if finish == "length" and prompt_tokens + kwargs["max_tokens"] > self.n_ctx:
                        finish = CONTEXT_FULL  # cut where the context ended, not at max_tokens
                    put(Chunk("usage", usage=Usage(prompt_tokens, produced)))
                    put(Chunk("done", stop_reason=finish))
            except Exception as exc:  # crosses the thread boundary as a value
                put(exc)
            finally:
                cancel.detach()
                _running.discard(cancel)
                put(_END)
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(mark_finished)

        thread = threading.Thread(target=work, name=f"llamacpp-{self.name}", daemon=True)
        _running.add(cancel)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, ValueError) and "context window" in str(item):
                    # the prompt is too long for this model: a bad request, not a sick model (no cooldown)
                    raise ProviderError(Reason.BAD_REQUEST, f"llama.cpp: {item}")
                if isinstance(item, Exception):
                    raise ProviderError(Reason.INTERNAL_ERROR, f"llama.cpp failed: {type(item).__name__}: {item}")
                if isinstance(item, tuple):
                    c = item[1]
                    yield Chunk("tool_call", tool_call=tool_call(c["name"], c["args"], c["id"]))
                    continue
                yield item
        finally:
            cancel.set()
            await _wait_stopped(finished)

    def embeds(self) -> bool:
        return False  # see embeddings

    def embeddings(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """Refused: llama-cpp-python embeds only with a ``Llama`` loaded ``embedding=True``, a second copy of the model
        beside the one that generates (the default model's: +738 MB of resident memory, measured 2026-11-30), and a
        chat model's GGUF has no pooling — it gave a vector per token, not one per text. Embed through Ollama or an
        OpenAI-compatible server running an embedding model."""
        return cannot_embed(f"model '{self.name}' cannot embed: the embedded llama.cpp model is loaded to generate "
                            "(embedding needs a second copy loaded for it); serve an embedding model through Ollama or "
                            "an OpenAI-compatible server")

    async def warmup(self, keep_alive: str | None = None) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise ProviderError(Reason.UNAVAILABLE, reason)
        await asyncio.to_thread(load_llama, *self._key())

    # -- facts for ops -------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        """The GGUF header: from the loaded model if this process has it, else read (no weights loaded)."""
        llm = _models.get(self._key())
        return dict(llm.metadata) if llm is not None else gguf_metadata(self._resolved_path())

    async def context_window(self) -> ContextWindow:
        meta = await asyncio.to_thread(self._metadata)
        length = trained_context(meta)
        if length:
            return ContextWindow(length, self.n_ctx, "GGUF metadata")
        return ContextWindow(None, self.n_ctx, "no context_length in the GGUF metadata")

    async def memory(self, *, ask_server: bool = True) -> MemoryFacts:
        """Weights = the GGUF file; one KV cache of ``context`` tokens (one generation at a time); llama.cpp's
        compute buffer (:func:`compute_buffer_bytes`)."""
        path = self._resolved_path()
        if not path.is_file():
            return MemoryFacts(context=self.n_ctx, parallel=1)
        meta = await asyncio.to_thread(gguf_metadata, path)
        return MemoryFacts(path.stat().st_size, "GGUF file size", None, kv_shape(meta), context=self.n_ctx, parallel=1,
                           compute=compute_terms(meta))

    async def loaded(self) -> bool | None:
        return self._key() in _models

    def _key(self) -> tuple[str, int, int, int]:
        """What :func:`load_llama` takes, and what names a loaded model."""
        return str(self._resolved_path()), self.n_ctx, self.threads, self.gpu_layers
