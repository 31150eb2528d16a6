"""Stop llama.cpp inside a batch: its abort callback, read without the GIL.

A stopped generation (Ctrl-C, SIGTERM, a client gone) was noticed between tokens only: during a long prompt's
evaluation that meant its end — 85 s for a 3,300-token prompt on this loaded 2-core machine, while ``serve`` logged
uvicorn's "Cancel 1 running task(s)" after its 5 s graceful wait and ``ask`` gave up waiting after 60 s. llama.cpp
asks an abort callback between the nodes of its compute graph (many times per batch) and then fails the decode
(``llama_decode`` returns 2), dropping the sequence's cache.

The callback is libc's ``strlen`` on a two-byte buffer: 0 while the generation may go on, 1 once it is stopped
(``bool (*)(void *)`` and ``size_t strlen(const char *)`` are called alike; 0 and 1 read as false and true). A
Python callback would take the GIL at every graph node, from llama.cpp's compute threads, against the event loop.
Where the library or libc lacks the symbol, nothing is installed and a stop is seen between tokens, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

#: llama_decode's return value when the abort callback stopped it
ABORTED = "llama_decode returned 2"
#: flags raised now: llama.cpp's error lines about the decode they fail are the stop, not a fault (llama_quiet)
_raised: set[int] = set()


def aborting() -> bool:
    """A generation is being stopped through its abort flag right now."""
    return bool(_raised)


def is_abort(exc: BaseException) -> bool:
    """The error llama-cpp-python raises for a decode the abort callback stopped."""
    return isinstance(exc, RuntimeError) and str(exc) == ABORTED


def _strlen() -> int | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        return ctypes.cast(libc.strlen, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None


class AbortFlag:
    """llama.cpp's abort flag of one loaded model (one context, one generation at a time)."""

    def __init__(self) -> None:
        self._buffer = ctypes.create_string_buffer(2)  # b"\0\0": go on; b"\1\0": stop

    @classmethod
    def install(cls, llm: Any) -> AbortFlag | None:
        """Point ``llm``'s context at a new flag; None where it cannot be done (kept alive by the model)."""
        strlen = _strlen()
        try:
            import llama_cpp

            setter = llama_cpp.llama_cpp._lib.llama_set_abort_callback
            ctx = llm._ctx.ctx
        except (ImportError, AttributeError):
            return None
        if strlen is None or ctx is None:
            return None
        flag = cls()
        setter.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        setter.restype = None
        setter(ctx, strlen, ctypes.addressof(flag._buffer))
        return flag

    def raise_(self) -> None:
        _raised.add(id(self))
        self._buffer[0] = b"\x01"

    def lower(self) -> None:
        self._buffer[0] = b"\x00"
        _raised.discard(id(self))

    @property
    def raised(self) -> bool:
        return self._buffer[0] != b"\0"


class Stop(threading.Event):
    """A generation's stop flag: setting it also raises the abort flag of the model it runs on, if attached."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._abort: AbortFlag | None = None

    def attach(self, abort: AbortFlag) -> None:
        """The worker holds the model: from now on a stop aborts its decode (at once, if already stopped)."""
        with self._lock:
            self._abort = abort
            if self.is_set():
                abort.raise_()
            else:
                abort.lower()

    def detach(self) -> None:
        """The worker lets go of the model: the next generation on it starts with the flag down."""
        with self._lock:
            if self._abort is not None:
                self._abort.lower()
            self._abort = None

    def set(self) -> None:
        with self._lock:
            super().set()
            if self._abort is not None:
                self._abort.raise_()
