"""The OpenAI-compatible HTTP gateway (``modelyard serve``): agents and models as OpenAI model
names, Prometheus metrics, health, and a one-page dashboard."""

from modelyard.gateway.app import Gateway, create_app

__all__ = ["Gateway", "create_app"]
