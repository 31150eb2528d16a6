"""Per-model state shared by several processes and hosts through Redis (``state: redis://…``)."""

from modelyard.router.shared.link import LinkStatus, RedisLink, StoreUnreachable
from modelyard.router.shared.state import RedisState, SharedTicket

__all__ = ["LinkStatus", "RedisLink", "RedisState", "SharedTicket", "StoreUnreachable"]
