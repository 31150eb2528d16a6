"""modelyard: which model serves each agent request, and what happens when it is busy or broken.

When this process is the ``modelyard`` command (its console script, or ``python -m modelyard``), a Ctrl-C from here
until a command starts (:func:`interrupt_as_usual`) ends the process as ``interrupted``, exit 130. It came as a
KeyboardInterrupt traceback from ``<frozen runpy>`` or the CLI's imports (1 run in 60 at load ~13, a Ctrl-C in the
first 0.1 s), or as "Exception ignored in: <function _get_module_lock.<locals>.cb>" with the command then run to
its end (a KeyboardInterrupt raised in a weakref callback is dropped: python/cpython#95959). Set here, the
package's first line, since nothing of modelyard runs earlier; with the interpreter's builtin modules only
(``import signal`` alone took 11 ms, enum with it).
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _is_the_command() -> bool:
    """Whether this process was started as ``modelyard`` rather than importing the package (a test, a script, a
    worker process the command started)."""
    argv, orig = _sys.argv, getattr(_sys, "orig_argv", [])
    if argv[:1] == ["-m"]:  # set so while `python -m NAME` imports NAME's package
        return "-m" in orig and orig[orig.index("-m") + 1:][:1] == ["modelyard"]
    # the end of this process's own command line: a multiprocessing "spawn" worker is given its parent's sys.argv
    # (multiprocessing/spawn.py prepare), and no command starts in it to set Python's handler back
    return (0 < len(argv) <= len(orig) and orig[-len(argv):] == argv
            and _os.path.basename(argv[0]).lower() in ("modelyard", "modelyard.exe"))


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Nothing is open or half written before a command starts: say it and end, no exception to unwind — also when
    it cannot be said (stderr a pipe whose reader is gone: raised here, the EPIPE ended the start with 1, or was
    swallowed by an ``except OSError`` wherever the start was)."""
    try:  # noqa: SIM105 - contextlib is no builtin module, and a handler that interrupted an import imports nothing
        _os.write(2, b"interrupted\n")
    except OSError:
        pass
    _os._exit(130)


def interrupt_as_usual() -> None:
    """Ctrl-C raises KeyboardInterrupt again, from where a command starts: the commands stop their work on it
    (replay its workers, serve its server) and say ``interrupted`` themselves."""
    import signal

    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if _is_the_command():
    import _signal  # type: ignore[import-not-found,unused-ignore]  # builtin: loaded with the interpreter

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:  # not a Ctrl-C ignored by the parent
        _signal.signal(_signal.SIGINT, _interrupted_while_starting)
