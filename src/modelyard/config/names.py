"""The nearest known name to a mistyped one, said the same way wherever a name is refused ("did you mean")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


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


def entry_of_provider_id(name: str, provider_ids: Mapping[str, str | None]) -> str | None:
    """The entry under ``models:`` whose provider id (``model:``) is ``name`` — ``llama3.2:3b`` as ``ollama list``
    shows it for the entry ``llama3.2-3b`` that ``init --detect`` wrote — or None. Ollama's implied ``:latest`` does
    not count (``qwen3.5`` and ``qwen3.5:latest`` are one model to Ollama)."""
    bare = name.removesuffix(":latest")
    return next((entry for entry, model in provider_ids.items()
                 if model is not None and model.removesuffix(":latest") == bare), None)
