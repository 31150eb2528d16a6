"""The ``modelyard`` command's entry point: Ctrl-C at any moment ends it as ``interrupted``, exit 130.

Kept outside ``modelyard.cli``, whose import (typer, rich, every command module) takes a second or more on a
busy machine: a Ctrl-C during that import, or while typer builds the commands, came out as a traceback,
before any command's own handling (``cli.common.run``) was in place.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from modelyard.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
