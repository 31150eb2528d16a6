"""Which provider backends exist: the built-in modules, plus plugins.

A backend is a name (what a config's ``provider:`` says) and the :class:`Provider` subclass
that speaks to it. Built-ins are listed here, one line each, as import paths so nothing is
imported until a model uses it. A third-party package adds a backend without touching
modelyard, the way `llm` plugins do, through an entry point::

    [project.entry-points."modelyard.providers"]
    mybackend = "my_package.module:MyProvider"

or, at run time (tests, notebooks), with :func:`register_provider` — the function the entry
points end up in. This module sits below ``config`` (which validates ``provider:`` against
:func:`provider_names`) and imports nothing of modelyard, so the import graph stays one-way.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

GROUP = "modelyard.providers"


@dataclass(frozen=True)
class Backend:
    """``target`` is the Provider class or its ``"module:Class"`` path (imported on first use).
    ``hosted``: a billed cloud service, whatever a config's price says (never "local")."""

    name: str
    target: Any
    hosted: bool = False

    def load(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


# One registration line per built-in provider module.
_BUILTIN = (
    Backend("ollama", "modelyard.providers.ollama:OllamaProvider"),
    Backend("openai", "modelyard.providers.openai:OpenAIProvider"),
    Backend("anthropic", "modelyard.providers.anthropic:AnthropicProvider", hosted=True),
    Backend("llamacpp", "modelyard.providers.llamacpp:LlamaCppProvider"),
)
_backends: dict[str, Backend] = {b.name: b for b in _BUILTIN}
_broken: dict[str, str] = {}
_plugins_loaded = False


def register_provider(name: str, provider: Any, *, hosted: bool | None = None) -> None:
    """Make ``provider`` (a Provider subclass, or ``"module:Class"``) the backend called ``name``.

    ``hosted`` defaults to the class's own ``hosted`` attribute. Registering a name again
    replaces it; an entry point never shadows a name already known (built-ins included)."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"provider name {name!r}: use letters, digits, '-' and '_'")
    if hosted is None:
        hosted = bool(getattr(provider, "hosted", False))
    _backends[name] = Backend(name, provider, hosted)


def unregister_provider(name: str) -> None:
    """Forget a backend registered at run time (tests clean up with this)."""
    _backends.pop(name, None)


def _load_plugins() -> None:
    """Register every ``modelyard.providers`` entry point, once. Only runs when a name is not
    found among those already known, so a config of built-ins never scans installed packages."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=GROUP):
        if ep.name in _backends:
            continue  # a built-in or a run-time registration keeps its name
        try:
            register_provider(ep.name, ep.load())
        except Exception as exc:  # a broken plugin must never stop modelyard from starting
            _broken[ep.name] = f"{type(exc).__name__}: {exc}"


def _find(name: str) -> Backend | None:
    if name not in _backends:
        _load_plugins()
    return _backends.get(name)


def provider_names() -> list[str]:
    """Every backend a config may name, plugins included, sorted."""
    _load_plugins()
    return sorted(_backends)


def broken_plugins() -> dict[str, str]:
    """Entry points that failed to load: name → why."""
    _load_plugins()
    return dict(_broken)


def is_known(name: str) -> bool:
    return _find(name) is not None


def backend(name: str) -> Backend:
    """The backend called ``name``; KeyError naming the known ones otherwise."""
    found = _find(name)
    if found is None:
        raise KeyError(f"unknown provider {name!r} (known providers: {', '.join(provider_names())})")
    return found


def is_hosted(name: str) -> bool:
    found = _find(name)
    return bool(found and found.hosted)
