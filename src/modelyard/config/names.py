"""The nearest known name to a mistyped one, said the same way wherever a name is refused ("did you mean")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.config.schema import Config


def closest(name: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known name nearest to ``name`` (case does not count: ``Writer`` finds ``writer``), or None. ``cutoff``: as
    :func:`difflib.get_close_matches` (a server's listing, short and all of what it answers, takes a looser one)."""
    names = list(known)
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=cutoff)
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


def not_an_agent(config: Config, name: str, switch: str = "--agent", auto: str = "auto") -> str:
    """Why NAME is refused as an agent; a model's name (an easy slip: `models` and `/status` list them) says which
    agents use it, and the agent to name with ``switch`` (``--agent`` on the command line, ``/agent`` in chat and
    Telegram); ``auto`` is how that front-end says automatic routing."""
    agents = f"agents: {', '.join(config.agents)}, or {auto}"
    if not name.strip():  # `--agent ""` (a script's unset variable) was called the in-process model, whose id is ''
        return f"{switch} needs an agent's name ({agents})"
    models = config.models
    # `--agent llama3.2:3b`, as `ollama list` names it: said "unknown agent" and nothing of the model
    entry = name if name in models else entry_of_provider_id(name, {n: m.model for n, m in models.items()})
    if entry is not None:
        users = [a for a, cfg in config.agents.items() if entry in cfg.chain]
        first = [a for a in users if config.agents[a].primary == entry]
        verb = "uses" if len(users) == 1 else "use"  # "chat use it"
        used = (f"; {', '.join(users)} {verb} it"
                + (f" ({', '.join(first)} first: {switch} {first[0]})" if first else "") if users
                else "; no agent uses it")
        what = f"a model (the provider's id of '{entry}')" if entry != name else "a model"
        # the command line's --agent takes a model alone as model:NAME (cli/ask.py), as the gateway does
        alone = f"; {switch} model:{entry} asks it alone" if switch == "--agent" else ""
        return f"'{name}' is {what}, not an agent{used}{alone} ({agents})"
    return f"unknown agent '{name}'" + did_you_mean(name, config.agents) + f" ({agents})"
