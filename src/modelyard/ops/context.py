"""The context length a model was trained for, where its server (or file) says so."""

from __future__ import annotations

import asyncio
from typing import Any

from modelyard.errors import ProviderError
from modelyard.ops.metadata import trained_context
from modelyard.providers import Provider


async def context_length(provider: Provider) -> tuple[int | None, str]:
    """(tokens, where it came from); (None, why) when the server does not tell."""
    kind = provider.config.provider
    try:
        if kind == "ollama":
            return await _ollama(provider)
        if kind == "llamacpp":
            return await asyncio.to_thread(_llamacpp, provider)
        if kind == "openai":
            return await _openai(provider)
    except (ProviderError, ValueError, AttributeError, TypeError) as exc:
        return None, f"could not ask the server: {type(exc).__name__}"
    return None, f"the {kind} API does not report it"


async def _ollama(provider: Any) -> tuple[int | None, str]:
    status, data = await provider.client.request_json("POST", "/api/show", {"model": provider.model_id})
    if status != 200 or not isinstance(data, dict):
        return None, f"/api/show answered HTTP {status}"
    info = data.get("model_info") or {}
    length = trained_context(info)
    return (length, "Ollama /api/show model_info") if length else (None, "no context_length in model_info")


def _llamacpp(provider: Any) -> tuple[int | None, str]:
    from modelyard.providers.llamacpp import load_llama

    llm = load_llama(str(provider._resolved_path()), provider.n_ctx)  # cached: the probe already loaded it
    length = trained_context(llm.metadata)
    if not length:
        try:
            length = int(llm._model.n_ctx_train())
        except Exception:
            length = 0
    return (length, "GGUF metadata") if length else (None, "no context_length in the GGUF metadata")


async def _openai(provider: Any) -> tuple[int | None, str]:
    path = "/models" if provider.endpoint.endswith("/v1") else "/v1/models"
    status, data = await provider.client.request_json("GET", path)
    if status != 200 or not isinstance(data, dict):
        return None, f"{path} answered HTTP {status}"
    for entry in data.get("data") or []:
        if not isinstance(entry, dict) or entry.get("id") != provider.model_id:
            continue
        meta = entry.get("meta") or {}
        # llama.cpp server: meta.n_ctx_train; vLLM: max_model_len; LM Studio / others: context_length
        for value in (meta.get("n_ctx_train"), entry.get("max_model_len"), entry.get("context_length"),
                      meta.get("context_length")):
            if isinstance(value, int) and value > 0:
                return value, f"{path} metadata"
        return None, f"{path} lists the model without a context length"
    return None, f"{path} does not list the model"
