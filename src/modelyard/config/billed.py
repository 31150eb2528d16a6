"""Which endpoints bill per token although their provider is a local-server protocol.

``provider: openai`` speaks to llama-server, vLLM or LM Studio on a box of one's own — and equally to OpenRouter, Groq
or OpenAI itself. A model was local (free, its requests counted as moved off the cloud) unless it had a ``price``, so an
OpenRouter model without one showed as "local · $0" in ``models`` and ``report`` overstated the local share and the
savings. The hosts below are the documented OpenAI-compatible base URLs of paid APIs (each provider's API reference:
``https://openrouter.ai/api/v1``, ``https://api.groq.com/openai/v1``, ``https://api.together.xyz/v1``, …); a host of a
team's own (a dotted name on its network, an address) stays local — only a price says otherwise there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: host names (and their subdomains) of paid APIs reached through the OpenAI-compatible (or Ollama) protocol
BILLED_HOSTS = (
    "api.openai.com", "openai.azure.com", "openrouter.ai", "api.groq.com", "api.together.xyz", "api.together.ai",
    "api.fireworks.ai", "api.deepseek.com", "api.mistral.ai", "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com", "api.x.ai", "api.perplexity.ai", "api.cerebras.ai", "api.deepinfra.com",
    "api.anthropic.com", "api.cohere.ai", "api.cohere.com", "dashscope.aliyuncs.com",
    "dashscope-intl.aliyuncs.com", "api.moonshot.ai", "api.moonshot.cn", "api.novita.ai", "api.hyperbolic.xyz",
    "integrate.api.nvidia.com", "api.sambanova.ai", "router.huggingface.co", "api-inference.huggingface.co",
    "inference.ai.azure.com", "models.inference.ai.azure.com", "cognitiveservices.azure.com", "services.ai.azure.com",
    "models.github.ai", "api.minimax.io",
    "api.minimaxi.com", "open.bigmodel.cn", "api.z.ai", "api.lambda.ai", "api.studio.nebius.com",
    "api.studio.nebius.ai", "ollama.com",
)


def billed_endpoint(endpoint: str | None) -> bool:
    """Does ``endpoint`` name a paid API (one of :data:`BILLED_HOSTS` or a subdomain of one)?"""
    if not endpoint:
        return False
    try:
        host = (urlsplit(endpoint).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    return any(host == h or host.endswith("." + h) for h in BILLED_HOSTS)


#: a paid API's own key variable (the one its SDK and docs read), by the service and its documented
#: OpenAI-compatible base URL: a model named with one of these keys and no endpoint meant that API, not a server here
KEY_SERVICES = {
    "OPENAI_API_KEY": ("OpenAI", "https://api.openai.com/v1"),
    "OPENROUTER_API_KEY": ("OpenRouter", "https://openrouter.ai/api/v1"),
    "GROQ_API_KEY": ("Groq", "https://api.groq.com/openai/v1"),
    "TOGETHER_API_KEY": ("Together", "https://api.together.xyz/v1"),
    "DEEPSEEK_API_KEY": ("DeepSeek", "https://api.deepseek.com"),
    "MISTRAL_API_KEY": ("Mistral", "https://api.mistral.ai/v1"),
    "GEMINI_API_KEY": ("Gemini", "https://generativelanguage.googleapis.com/v1beta/openai"),
    "XAI_API_KEY": ("xAI", "https://api.x.ai/v1"),
    "FIREWORKS_API_KEY": ("Fireworks", "https://api.fireworks.ai/inference/v1"),
}
