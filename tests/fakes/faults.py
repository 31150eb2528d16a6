"""Fault descriptions and the per-server fault script.

A fake server pops one fault per model request so a test can script exactly how each
call misbehaves (hang, 529, drop mid-stream...) without touching the server code.

Besides timing and status faults, the *shape* faults below reproduce what real servers and
proxies send (issue 8), each with the source it was taken from:

- ``split_surrogate``: an emoji split into its two UTF-16 halves across chunks, as ``\\ud83d`` and
  ``\\ude00`` JSON escapes (JavaScript servers slice strings by UTF-16 code unit; ES2019's
  well-formed JSON.stringify escapes the lone halves). ``lone_surrogate``: a half never completed.
- ``invalid_utf8``: raw bytes that are not UTF-8 inside a JSON string.
- ``line_endings:crlf|cr``: SSE/NDJSON lines ended by CRLF or a lone CR (both allowed by the SSE spec).
- ``no_space``: ``data:{...}`` without the space after the colon (allowed by the SSE spec).
- ``keepalive``: SSE comment lines between events (OpenRouter's ``: OPENROUTER PROCESSING``);
  blank lines between NDJSON objects.
- ``gzip``: the stream compressed with ``content-encoding: gzip`` (proxies).
- ``content_parts:text|thinking|image|number``: ``content`` as a list of parts (Mistral,
  GLM relays, GPT-OSS on Databricks, LiteLLM): text parts, a Magistral-style thinking part
  then text, an image part (cannot be shown as text), or a bare number.
- ``no_choices:empty|missing``: OpenAI-style chunks with ``"choices": []`` or no ``choices``,
  then ``[DONE]``, no finish reason; Ollama ``done: true`` with nothing; Anthropic
  ``message_start`` then ``message_stop`` with no content block.
- ``odd_usage``: token counts as strings and null.
- ``unknown_events``: event types, content-block types and fields a client must ignore
  (Anthropic ``server_tool_use``/``web_search_tool_result`` blocks, ``citations_delta``;
  SSE ``id:``/``retry:`` lines; extra fields such as OpenRouter's ``provider``).
- ``not_a_stream:html|json|json_error``: HTTP 200 to a streaming request with an HTML page from
  a proxy, a plain JSON document, or a JSON error object.
- ``huge_line:N``: the answer as one line of N characters; ``huge_answer:N``: N characters in
  ordinary chunks.
- ``Fault.status(code, html=True)``: the error status with an HTML page (nginx's 502 page).
- ``Fault.raw(status, chunks, ...)``: bytes copied from what a real server sent (llama-server, vLLM,
  LM Studio, Ollama, Anthropic, a reverse proxy), played verbatim: the protocol renders nothing.
  ``variant`` says how the body ends: ``""`` (cleanly), ``"drop"`` (connection aborted) or ``"hang"``
  (kept open); ``interval`` paces the chunks (a slow drip).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """Names of the supported misbehaviours (string values usable directly)."""

    OK = "ok"
    HANG_BEFORE_HEADERS = "hang_before_headers"
    HANG_AFTER_FIRST_TOKEN = "hang_after_first_token"
    DRIP = "drip"
    STATUS = "status"
    ERROR_MIDSTREAM = "error_midstream"
    DROP_MIDSTREAM = "drop_midstream"
    INVALID_JSON = "invalid_json"
    TOOL_CALL_AS_TEXT = "tool_call_as_text"
    DELAY = "delay"
    SPLIT_SURROGATE = "split_surrogate"
    LONE_SURROGATE = "lone_surrogate"
    INVALID_UTF8 = "invalid_utf8"
    LINE_ENDINGS = "line_endings"
    NO_SPACE = "no_space"
    KEEPALIVE = "keepalive"
    GZIP = "gzip"
    CONTENT_PARTS = "content_parts"
    NO_CHOICES = "no_choices"
    ODD_USAGE = "odd_usage"
    UNKNOWN_EVENTS = "unknown_events"
    NOT_A_STREAM = "not_a_stream"
    HUGE_LINE = "huge_line"
    HUGE_ANSWER = "huge_answer"
    RAW = "raw"


#: stands for bytes that are not UTF-8 in a planned text: Playback swaps its UTF-8 form for them
INVALID_UTF8_MARK = "\ue000"
INVALID_UTF8_BYTES = b"\xff\xfe"
EMOJI = "\U0001f600"
HIGH, LOW = "\ud83d", "\ude00"  # EMOJI's two UTF-16 halves


#: the default variant of the shape faults that take one
_VARIANTS = {
    FaultKind.LINE_ENDINGS: "crlf",
    FaultKind.CONTENT_PARTS: "text",
    FaultKind.NO_CHOICES: "empty",
    FaultKind.NOT_A_STREAM: "html",
}
#: faults that change the answer's bytes, not its timing: they apply to the body as rendered
SHAPE_FAULTS = frozenset({
    FaultKind.SPLIT_SURROGATE, FaultKind.LONE_SURROGATE, FaultKind.INVALID_UTF8, FaultKind.LINE_ENDINGS,
    FaultKind.NO_SPACE, FaultKind.KEEPALIVE, FaultKind.GZIP, FaultKind.CONTENT_PARTS, FaultKind.NO_CHOICES,
    FaultKind.ODD_USAGE, FaultKind.UNKNOWN_EVENTS, FaultKind.NOT_A_STREAM, FaultKind.HUGE_LINE,
    FaultKind.HUGE_ANSWER,
})


@dataclass(frozen=True)
class Fault:
    """One scripted behaviour for one request; build it with the classmethods."""

    kind: FaultKind = FaultKind.OK
    interval: float = 0.0
    seconds: float = 0.0
    code: int = 0
    retry_after: str | None = None
    message: str | None = None
    error_type: str | None = None
    after_chunks: int = 1
    headers: tuple[tuple[str, str], ...] = ()
    #: which form of a shape fault (e.g. "crlf" or "cr" for line_endings), or "html" for a status page
    variant: str = ""
    #: characters, for huge_line / huge_answer
    size: int = 0
    #: the body, chunk by chunk, for raw
    chunks: tuple[bytes, ...] = ()

    @classmethod
    def ok(cls) -> Fault:
        return cls(FaultKind.OK)

    @classmethod
    def hang_before_headers(cls) -> Fault:
        return cls(FaultKind.HANG_BEFORE_HEADERS)

    @classmethod
    def hang_after_first_token(cls) -> Fault:
        return cls(FaultKind.HANG_AFTER_FIRST_TOKEN)

    @classmethod
    def drip(cls, interval: float = 0.2) -> Fault:
        return cls(FaultKind.DRIP, interval=interval)

    @classmethod
    def status(
        cls,
        code: int,
        retry_after: str | float | None = None,
        *,
        message: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        html: bool = False,
    ) -> Fault:
        return cls(
            FaultKind.STATUS,
            code=code,
            retry_after=_retry_after_text(retry_after),
            message=message,
            error_type=error_type,
            headers=tuple((headers or {}).items()),
            variant="html" if html else "",
        )

    @classmethod
    def shape(cls, kind: FaultKind | str, variant: str = "", size: int = 0) -> Fault:
        """A shape fault (see the module docstring), e.g. ``Fault.shape("content_parts", "image")``."""
        kind = FaultKind(kind)
        if kind not in SHAPE_FAULTS:
            raise ValueError(f"{kind} is not a shape fault")
        if kind in (FaultKind.HUGE_LINE, FaultKind.HUGE_ANSWER) and size <= 0:
            raise ValueError(f"{kind} needs a size in characters")
        return cls(kind, variant=variant or _VARIANTS.get(kind, ""), size=size)

    @classmethod
    def raw(cls, status: int, *chunks: bytes | str, headers: dict[str, str] | None = None, end: str = "",
            interval: float = 0.0) -> Fault:
        """Exactly these bytes (str is UTF-8 encoded) under ``status`` and ``headers`` (no content-type unless
        given); ``end`` is "" (clean), "drop" (aborted) or "hang" (open until the client leaves)."""
        if end not in ("", "drop", "hang"):
            raise ValueError(f"raw end must be '', 'drop' or 'hang', not {end!r}")
        body = tuple(c.encode() if isinstance(c, str) else c for c in chunks)
        return cls(FaultKind.RAW, code=status, chunks=body, headers=tuple((headers or {}).items()), variant=end,
                   interval=interval)

    @classmethod
    def error_midstream(
        cls, after_chunks: int = 1, *, message: str | None = None, error_type: str | None = None
    ) -> Fault:
        return cls(
            FaultKind.ERROR_MIDSTREAM, after_chunks=after_chunks, message=message, error_type=error_type
        )

    @classmethod
    def drop_midstream(cls, after_chunks: int = 2) -> Fault:
        return cls(FaultKind.DROP_MIDSTREAM, after_chunks=after_chunks)

    @classmethod
    def invalid_json(cls) -> Fault:
        return cls(FaultKind.INVALID_JSON)

    @classmethod
    def tool_call_as_text(cls) -> Fault:
        return cls(FaultKind.TOOL_CALL_AS_TEXT)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls(FaultKind.DELAY, seconds=seconds)

    @classmethod
    def parse(cls, value: FaultLike) -> Fault:
        """Accept a Fault, a FaultKind, or a string like "ok", "status:529", "drip:0.1", "delay:2"."""
        if isinstance(value, Fault):
            return value
        name, _, arg = str(value).partition(":")
        kind = FaultKind(name.strip())
        if kind is FaultKind.STATUS:
            if not arg:
                raise ValueError("status fault needs a code, e.g. 'status:529'")
            return cls.status(int(arg))
        if kind is FaultKind.DRIP:
            return cls.drip(float(arg)) if arg else cls.drip()
        if kind is FaultKind.DELAY:
            return cls.delay(float(arg) if arg else 1.0)
        if kind in (FaultKind.ERROR_MIDSTREAM, FaultKind.DROP_MIDSTREAM) and arg:
            return cls(kind, after_chunks=int(arg))
        if kind in (FaultKind.HUGE_LINE, FaultKind.HUGE_ANSWER):
            return cls.shape(kind, size=int(arg))
        if kind in SHAPE_FAULTS:
            return cls.shape(kind, arg)
        return cls(kind)


FaultLike = Fault | FaultKind | str


def _retry_after_text(value: str | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class FaultScript:
    """Thread-safe queue of one-shot faults with a sticky default for when it runs dry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._default = Fault.ok()

    def push(self, *faults: FaultLike, times: int = 1) -> None:
        """Queue faults for the next requests, in order (the whole group `times` times)."""
        parsed = [Fault.parse(f) for f in faults]
        with self._lock:
            for _ in range(times):
                self._queue.extend(parsed)

    def set_default(self, fault: FaultLike) -> None:
        """Fault used whenever the one-shot queue is empty."""
        with self._lock:
            self._default = Fault.parse(fault)

    def next(self) -> Fault:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    def clear(self) -> None:
        """Drop queued faults and restore the `ok` default."""
        with self._lock:
            self._queue.clear()
            self._default = Fault.ok()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._queue)

    @property
    def default(self) -> Fault:
        with self._lock:
            return self._default
