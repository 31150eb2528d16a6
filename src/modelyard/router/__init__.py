"""Routing: per-model slots and health, and the chain walk that falls back between models."""

from modelyard.router.records import Attempt, ChainExhausted, RequestRecord, StreamInterrupted
from modelyard.router.router import ModelState, Routed, RoutedStream, Router

__all__ = ["Attempt", "ChainExhausted", "ModelState", "RequestRecord", "Routed", "RoutedStream", "Router",
           "StreamInterrupted"]
