"""The lease keeper (``router/shared/keeper.py``) runs on a thread of its own beside the event loop and reads the
link and the model states across it. It reads them through a public seam (``RedisLink.running``, ``keep_calls``,
``RedisState.keep_call``) that says what is safe to read from another thread — before, it reached into six private
fields of both (``link._loop``, ``link._closing``, ``state._remote``, ``state._slots``…), which a change to either
class could break without a test or a type checker noticing the thread."""

from __future__ import annotations

import ast
from pathlib import Path

import modelyard.router.shared.keeper as keeper


def test_the_lease_keeper_reads_no_private_field_of_another_object() -> None:
    tree = ast.parse(Path(keeper.__file__).read_text())
    reached = sorted({f"{ast.unparse(node.value)}.{node.attr}" for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                      and not node.attr.startswith("__")
                      and not (isinstance(node.value, ast.Name) and node.value.id == "self")})
    assert reached == [], f"the keeper reads private fields across its thread: {reached}"


def test_a_loop_that_renews_on_schedule_is_not_taken_for_stalled() -> None:
    """The loop renews when its heartbeat is due, looked at once a tick, by a call bounded by ``timeout``: a renewal up
    to ``heartbeat + tick + timeout`` after the last is on schedule. The keeper took anything past ``1.1 × heartbeat``
    for a stall — with the defaults 3.67 s where the loop may take 4.33 s — and under a loop busy in 30 ms slices (a
    loaded gateway, no single block longer: made here on a private Redis, default settings) said "the event loop
    stalled 4.2s" and renewed from its thread. Checked for the defaults and the shortest leases the lease rule allows;
    its own renewal still lands before the lease runs out."""
    from modelyard.config.schema import StateConfig
    from modelyard.router.shared.keeper import LeaseKeeper
    from modelyard.router.shared.link import RedisLink

    for state in ({}, {"lease": 9 * 1.5, "refresh": 1.0, "timeout": 0.5}, {"lease": 0.9, "refresh": 0.05,
                                                                           "timeout": 0.05}):
        link = RedisLink(StateConfig.model_validate({"url": "redis://127.0.0.1:1/0", **state}))
        keeper = LeaseKeeper(link)
        assert keeper.late >= link.heartbeat + link.tick + link.settings.timeout, state
        assert keeper.late + keeper.every + link.settings.timeout < link.window_ms / 1000, state
