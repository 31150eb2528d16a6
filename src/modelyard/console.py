"""The ``modelyard`` command's entry point: Ctrl-C at any moment ends it as ``interrupted``, exit 130.

Kept outside ``modelyard.cli``, whose import (typer, rich, every command module) takes a second or more on a
busy machine: a Ctrl-C during that import, or while typer builds the commands, came out as a traceback,
before any command's own handling (``cli.common.run``) was in place. Until a command starts, the package's
``__init__`` now says it, whatever was being imported; this ``except`` is for a Ctrl-C raised as KeyboardInterrupt
(an install whose package ``__init__`` predates that, or ``console.main`` called by another script).
"""

from __future__ import annotations

import sys


def main() -> None:
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
