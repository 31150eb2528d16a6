"""The nearest known name to a mistyped one, said the same way wherever a name is refused ("did you mean")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name nearest to ``name`` (case does not count: ``Writer`` finds ``writer``), or None."""
    names = list(known)
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'writer'?)`` for a near miss, else ''."""
    guess = closest(name, known)
    return f" (did you mean '{guess}'?)" if guess else ""
