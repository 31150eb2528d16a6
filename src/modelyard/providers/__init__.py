"""Providers: one module per wire protocol, all behind :class:`Provider`."""

from __future__ import annotations

from modelyard.config.schema import ModelConfig
from modelyard.providers.base import Provider


def build_provider(name: str, config: ModelConfig) -> Provider:
    """The provider for one configured model (modules imported on demand: startup stays fast)."""
    if config.provider == "ollama":
        from modelyard.providers.ollama import OllamaProvider

        return OllamaProvider(name, config)
    if config.provider == "openai":
        from modelyard.providers.openai import OpenAIProvider

        return OpenAIProvider(name, config)
    if config.provider == "anthropic":
        from modelyard.providers.anthropic import AnthropicProvider

        return AnthropicProvider(name, config)
    if config.provider == "llamacpp":
        from modelyard.providers.llamacpp import LlamaCppProvider

        return LlamaCppProvider(name, config)
    raise ValueError(f"unknown provider {config.provider!r}")  # config validation prevents this


__all__ = ["Provider", "build_provider"]
