"""Direct model access: every configured model is also a one-model agent called ``model:NAME``.

The gateway serves these names, and ``replay`` replays the requests logged under them, so the
synthetic agents are defined once, here, next to the config they derive from.
"""

from __future__ import annotations

from modelyard.config.schema import AgentConfig, Config

DIRECT = "model:"


def direct_agent(model: str) -> str:
    return DIRECT + model


def derived_config(config: Config) -> Config:
    """The config plus one synthetic agent per model (no system prompt, no budget: a pass-through)."""
    synthetic = {direct_agent(name): AgentConfig(primary=name, description="") for name in config.models}
    return config.model_copy(update={"agents": {**synthetic, **config.agents}})
