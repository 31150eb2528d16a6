"""Load llama.cpp models without its chatter and without silencing the rest of the process.

llama-cpp-python's ``verbose=False`` hides llama.cpp's start-up chatter by pointing file descriptors
1 and 2 at /dev/null while a model loads. That is process-wide: whatever any other thread wrote in
that window was lost too — a ``serve`` whose port was taken exited with status 3 and no message,
because the warm-up was loading the model while uvicorn reported the failed bind. Here a model loads
with ``verbose=True`` (no descriptor is touched); llama.cpp's own log lines go to the
``modelyard.llamacpp`` logger (errors as errors, the rest at debug level), and the Python
prints llama-cpp-python makes while loading are dropped for the loading thread only.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO, TypeVar

from modelyard.providers.llama_abort import aborting

log = logging.getLogger("modelyard.llamacpp")
T = TypeVar("T")

#: ggml_log_level (0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continues the last line; llama-cpp-python's
#: own table predates this order) → logging level. Its warnings are notes about the model file ("this is
#: probably a bug in the model", of the model modelyard ships) a user can do nothing about: debug — at info
#: they reached the terminal of `modelyard telegram` after a person's first message. Errors stay errors.
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.DEBUG, 4: logging.ERROR}
_load_lock = threading.Lock()
_callback: Any = None


def _route_llama_logs() -> None:
    """Send llama.cpp's log lines to :data:`log` (once per process; replaces llama-cpp-python's printer)."""
    global _callback
    if _callback is not None:
        return
    import llama_cpp

    last = [logging.DEBUG]

    @llama_cpp.llama_log_callback
    def route(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        last[0] = _LEVELS.get(level, last[0])  # 5 continues the previous line's level
        if last[0] >= logging.ERROR and aborting():  # "failed to decode, ret = 2": the stop asked for, not a fault
            last[0] = logging.DEBUG
        if log.isEnabledFor(last[0]):
            log.log(last[0], "%s", text.decode("utf-8", "replace").rstrip())

    llama_cpp.llama_log_set(route, ctypes.c_void_p(0))
    _callback = route  # kept: llama.cpp holds only a C pointer to it


def _close_devnull_files() -> None:
    """llama-cpp-python opens /dev/null twice when imported (``llama_cpp._utils``, for ``verbose=False``, which
    modelyard never passes) and never closes it: every process that imported it — ``models`` asking whether it is
    installed, ``plan``, the test runs — ended with two "ResourceWarning: unclosed file <… name='/dev/null'>"
    lines. Closed at exit, before the interpreter collects them."""
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        file = getattr(utils, name, None)
        if isinstance(file, io.IOBase):
            file.close()


atexit.register(_close_devnull_files)  # registered with the module that every import of llama_cpp goes through


class _OtherThreads(io.TextIOBase):
    """sys.stderr while one thread loads a model: that thread's writes are dropped, others' go through."""

    def __init__(self, real: TextIO, quiet: int):
        self.real = real
        self.quiet = quiet

    def write(self, text: str) -> int:
        if threading.get_ident() == self.quiet:
            return len(text)
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()


@contextlib.contextmanager
def _quiet_prints() -> Iterator[None]:
    with _load_lock, contextlib.redirect_stderr(_OtherThreads(sys.stderr, threading.get_ident())):
        yield


def quiet_load(load: Callable[..., T], **kwargs: Any) -> T:
    """``load(verbose=True, **kwargs)`` (``Llama`` or alike), quietly (see the module docstring); the
    result is made non-verbose so generating prints nothing either."""
    _route_llama_logs()
    with _quiet_prints():
        model = load(verbose=True, **kwargs)
    model.verbose = False  # type: ignore[attr-defined]
    return model
