"""``modelyard serve`` keeps the garbage collector off the request path (issue #15): what exists at
start is frozen out of collections, and young collections wait for more than 50 requests in flight hold."""

from __future__ import annotations

import gc

from modelyard.gateway.server import GC_YOUNG_THRESHOLD, tune_gc


def test_startup_objects_are_frozen_and_young_collections_are_rarer() -> None:
    before = gc.get_threshold()
    started = [object() for _ in range(10)]  # stands for the gateway's modules, config and pools
    try:
        tune_gc()
        assert gc.get_freeze_count() >= len(started)
        young, older, oldest = gc.get_threshold()
        assert young == GC_YOUNG_THRESHOLD > 50 * 100  # 50 requests in flight, ~100 live objects each
        assert (older, oldest) == before[1:]
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # cyclic garbage made after start is still collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
