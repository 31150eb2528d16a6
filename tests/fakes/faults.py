"""Fault descriptions and the per-server fault script.

A fake server pops one fault per model request so a test can script exactly how each
call misbehaves (hang, 529, drop mid-stream...) without touching the server code.
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
    ) -> Fault:
        return cls(
            FaultKind.STATUS,
            code=code,
            retry_after=_retry_after_text(retry_after),
            message=message,
            error_type=error_type,
            headers=tuple((headers or {}).items()),
        )

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
