"""The ``modelyard`` command's entry point: Ctrl-C at any moment ends it as ``interrupted``, exit 130.

Kept outside ``modelyard.cli``, whose import (typer, rich, every command module) takes a second or more on a
busy machine: a Ctrl-C during that import, or while typer builds the commands, came out as a traceback,
before any command's own handling (``cli.common.run``) was in place. Until a command starts, the package's
``__init__`` now says it, whatever was being imported; this ``except`` is for a Ctrl-C raised as KeyboardInterrupt
(an install whose package ``__init__`` predates that, or ``console.main`` called by another script).
"""

from __future__ import annotations

import codecs
import sys

#: what a character of modelyard's own lines becomes on a terminal that cannot show it
_PLAIN = {"→": "->", "←": "<-", "↳": "->", "·": "-", "–": "-", "—": "--", "…": "...", "✓": "ok", "✗": "x",
          "‘": "'", "’": "'", "“": '"', "”": '"', "👍": "+1", "👎": "-1", "×": "x", "≈": "~", "−": "-"}


def _plainly(exc: UnicodeError) -> tuple[str, int]:
    """The codec error handler for a terminal that is not UTF-8: a close ASCII stand-in, else '?'."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(_PLAIN.get(c, "?") for c in exc.object[exc.start:exc.end]), exc.end


def _plain_output() -> None:
    """On a terminal whose encoding is not UTF-8 (LANG=de_DE.ISO-8859-1, a Windows console's cp1252,
    PYTHONIOENCODING=latin-1) the first '→' or '–' of a route line, a table or ``--help`` ended the command in a
    UnicodeEncodeError traceback. Such characters are written as ASCII stand-ins instead."""
    codecs.register_error("modelyard.plain", _plainly)
    for stream in (sys.stdout, sys.stderr):
        encoding = codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name
        if not encoding.startswith("utf") and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="modelyard.plain")


def main() -> None:
    _plain_output()
    if sys.argv[1:] == ["--version"]:  # said at once: importing the CLI to say it took 2.3 s on a busy machine
        from modelyard import __version__

        print(f"modelyard {__version__}")
        return
    try:
        from modelyard.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
