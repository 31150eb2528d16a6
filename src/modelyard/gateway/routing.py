"""Which chain serves an OpenAI ``model`` name: an agent's, or a single configured model's.

Every agent is addressable by its name; ``auto`` (unless an agent or model has that name) lets the
orchestrator pick the agent, as a turn in ``chat`` or Telegram does. Every configured model is addressable as
``model:NAME``, and by its bare name when no agent has that name. Direct model access is a
synthetic agent whose chain is just that model: the gateway routes through a second
:class:`Router` over a derived config that adds those agents, on the runtime's *pool*, so
concurrency limits, queues and cooldowns are the same objects for agents, direct calls and
other front-ends in the process.
"""

from __future__ import annotations

from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config.direct import DIRECT, derived_config, direct_agent
from modelyard.config.schema import Config
from modelyard.router import Router
from modelyard.router.router import Sink

__all__ = ["AUTO", "DIRECT", "PICKED_BY_ORCHESTRATOR", "derived_config", "direct_agent", "listed_names", "resolve",
           "shared_router"]

#: the model name that asks the orchestrator to choose the agent (OpenRouter's ``openrouter/auto`` is the same idea)
AUTO = "auto"
#: what :func:`resolve` answers for ``auto``: not a name any agent can have, so an agent called "auto" stays itself
PICKED_BY_ORCHESTRATOR = "<picked by the orchestrator>"


def shared_router(base: Router, sink: Sink | None) -> Router:
    """A router over :func:`derived_config` on ``base``'s pool (providers, slots, breakers)."""
    return Router(derived_config(base.config), pool=base.pool, sink=sink)


def resolve(config: Config, name: str) -> str | None:
    """The agent (real or synthetic) that serves the OpenAI model name ``name``, or None."""
    if name in config.agents:
        return name
    if name == AUTO and AUTO not in config.models and orchestrator_name(config):
        return PICKED_BY_ORCHESTRATOR
    bare = name[len(DIRECT):] if name.startswith(DIRECT) else name
    if bare in config.models:
        return direct_agent(bare)
    return None


def listed_names(config: Config) -> list[tuple[str, str, list[str]]]:
    """(id, kind, chain) for /v1/models: ``auto`` (its chain: the agents it picks from), agents, then models
    (prefixed only when a name clashes)."""
    out = [(name, "agent", agent.chain) for name, agent in config.agents.items()]
    if (orchestrator := orchestrator_name(config)) and AUTO not in config.agents and AUTO not in config.models:
        out.insert(0, (AUTO, "router", routing_targets(config, orchestrator)))
    for name in config.models:
        out.append((direct_agent(name) if name in config.agents else name, "model", [name]))
    return out
