"""Routing: a pool of per-model state (slots, breaker), and the chain walk that falls back between models."""

from modelyard.outcomes import AttemptOutcome, RequestOutcome
from modelyard.router.pool import LocalState, ModelPool
from modelyard.router.records import Attempt, ChainExhausted, RequestRecord, StreamInterrupted
from modelyard.router.router import Routed, RoutedStream, Router
from modelyard.router.state import Condition, ModelState, ModelStatus, Ticket

__all__ = ["Attempt", "AttemptOutcome", "ChainExhausted", "Condition", "LocalState", "ModelPool", "ModelState",
           "ModelStatus", "RequestOutcome", "RequestRecord", "Routed", "RoutedStream", "Router", "StreamInterrupted",
           "Ticket"]
