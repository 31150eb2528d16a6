"""Providers: one module per backend, all behind :class:`Provider`, found through the registry.

Adding a backend is one module (a :class:`Provider` subclass) plus one registration line:
in ``modelyard.registry`` for a built-in, an entry point in the ``modelyard.providers`` group
for a plugin package, or :func:`register_provider` at run time.
"""

from __future__ import annotations

from modelyard.config.schema import ModelConfig
from modelyard.providers.base import Provider
from modelyard.providers.profile import ContextWindow, MemoryFacts, ModelProfile, ThinkingSwitch
from modelyard.registry import backend, provider_names, register_provider, unregister_provider


def provider_class(kind: str) -> type[Provider]:
    """The Provider subclass registered as ``kind`` (its module is imported on first use)."""
    cls = backend(kind).load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"provider {kind!r} is registered as {cls!r}, which is not a Provider subclass")
    return cls


def build_provider(name: str, config: ModelConfig) -> Provider:
    """The provider for one configured model."""
    return provider_class(config.provider)(name, config)


__all__ = ["ContextWindow", "MemoryFacts", "ModelProfile", "Provider", "ThinkingSwitch", "build_provider",
           "provider_class", "provider_names", "register_provider", "unregister_provider"]
