"""Errors of the agent layer: each carries a message fit to show a user as-is."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class AgentError(ModelyardError):
    """A turn could not be run as asked (bad agent name, refused hand-off, bad tool setup)."""


class UnknownAgent(AgentError):
    def __init__(self, name: str, known: list[str]):
        self.name = name
        super().__init__(f"unknown agent '{name}' (agents: {', '.join(sorted(known))})")


class HandoffRefused(AgentError):
    """The configured hand-offs loop or go deeper than ``orchestration.max_depth``."""
