"""The value labels of ``--help``: ``TEXT``, ``INTEGER``, ``PATH``, choices as ``a|b``, and none for a flag.

typer 0.29 labels every option with its Python annotation — ``--json <bool>``, ``--host <str>``,
``--port <int range>``, ``PROMPT <list[str]>`` — so a flag that takes no value reads as if it wanted
one. Its only hook is ``display_type`` of its parameter class (``metavar=`` on each option would
cover options, not flags), so that one method is wrapped here, once, when the CLI is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from typer import core

_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "bool": "BOOLEAN", "datetime": "DATE"}


def readable(label: str) -> str:
    """``<int range>`` → ``INTEGER``, ``<list[str]>`` → ``TEXT``, ``<ok|failed>`` → ``ok|failed``."""
    inner = label.strip("<>")
    inner = re.fullmatch(r"list\[(.*)\]", inner).group(1) if inner.startswith("list[") else inner  # type: ignore[union-attr]
    inner = inner.removesuffix(" range")
    return _NAMES.get(inner.lower(), inner)


def _wrap(original: Callable[[Any, Any], str]) -> Callable[[Any, Any], str | None]:
    def display_type(param: Any, ctx: Any) -> str | None:
        if getattr(param, "is_flag", False):
            return None  # --json, --reach/--no-reach: nothing to type after them
        return readable(original(param, ctx))

    return display_type


def install() -> None:
    if not getattr(core._TyperParameter.display_type, "modelyard", False):
        wrapped = _wrap(core._TyperParameter.display_type)
        wrapped.modelyard = True  # type: ignore[attr-defined]
        core._TyperParameter.display_type = wrapped  # type: ignore[method-assign,assignment]
