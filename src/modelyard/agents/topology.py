"""Who talks to whom, read from the config: the orchestrator, its targets, and hand-off chains.

Topology is configuration, not code. The orchestrator is ``orchestration.agent`` (or an agent
named ``orchestrator``); it delegates to the agents in its ``consumers``. If the default agent
is a plain chat agent (it delegates to nobody), it is a routing target too, for small talk: the
classifier then sends "hi, thanks!" to chat and real work to a specialist, with no model call
in between. A specialist hands its output to the first agent among its own ``consumers``
("user" means the answer goes back to the person).

What a hand-off is *for* is read from the receiving agent's role (:func:`handoff_purpose`):
a ``utility`` agent (mechanical transformations, "never writes new content") *revises* the
answer — formats, proofreads, converts it — and must give all of it back; any other agent
*builds on* it (a writer turning research notes into prose). Either way the upstream answer
is the user's answer until the hand-off's result passes its check (agents/handoff.py).
"""

from __future__ import annotations

from enum import StrEnum

from modelyard.agents.errors import HandoffRefused
from modelyard.agents.roles import Role, agent_role
from modelyard.config.schema import Config

USER = "user"


class HandoffPurpose(StrEnum):
    #: edit the upstream answer and return all of it (format, proofread, convert): a result much shorter
    #: than its input lost the content, so it is not a revision
    REVISE = "revise"
    #: use the upstream answer as material for an answer of one's own
    BUILD_ON = "build_on"


#: roles whose agents only transform what they are given
_REVISERS = frozenset({Role.UTILITY})


def handoff_purpose(config: Config, receiver: str) -> HandoffPurpose:
    """What the hand-off to ``receiver`` is for, from its role (``role:`` or its name)."""
    return HandoffPurpose.REVISE if agent_role(config, receiver) in _REVISERS else HandoffPurpose.BUILD_ON


def agent_consumers(config: Config, name: str) -> list[str]:
    return [c for c in config.agents[name].consumers if c != USER]


def orchestrator_name(config: Config) -> str | None:
    """The routing agent, or None when the config has no orchestrator (turns go to the default agent)."""
    name = config.orchestration.agent
    if name is None and "orchestrator" in config.agents:
        name = "orchestrator"
    if name is None or name not in config.agents or not agent_consumers(config, name):
        return None
    return name


def routing_targets(config: Config, orchestrator: str) -> list[str]:
    """Agents the orchestrator may pick: its consumers, plus a delegation-free default chat agent."""
    targets = [c for c in agent_consumers(config, orchestrator) if c in config.agents]
    entry = config.default_agent
    if (entry and entry in config.agents and entry != orchestrator and entry not in targets
            and not agent_consumers(config, entry)):
        targets.insert(0, entry)
    return targets


def handoff_path(config: Config, start: str) -> list[str]:
    """``[start, next, ...]`` following each agent's first agent consumer; refuses loops and depth."""
    limit = config.orchestration.max_depth
    path = [start]
    while True:
        nxt = next(iter(agent_consumers(config, path[-1])), None)
        if nxt is None:
            return path
        if nxt not in config.agents:
            raise HandoffRefused(f"agent '{path[-1]}' hands off to unknown agent '{nxt}'")
        if nxt in path:
            loop = " → ".join([*path[path.index(nxt):], nxt])
            raise HandoffRefused(f"hand-off loop refused: {loop} (fix the agents' consumers)")
        path.append(nxt)
        if len(path) > limit:
            raise HandoffRefused(f"hand-off chain {' → '.join(path)} is deeper than "
                                 f"orchestration.max_depth={limit}; refused")
