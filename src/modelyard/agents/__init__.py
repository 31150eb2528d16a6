"""Agents: turns of a conversation, the orchestrator, tools and the agent loop."""
