"""Short load and crash profiles (CI): the gateway process under misbehaving backends.

The long profile (5,000 requests at 200 clients), the soak and a bigger crash run are the same
code with bigger numbers: ``python -m tests.reliability.run_profiles --profile long`` (see
RELIABILITY.md). Here: 500 requests at 50 clients, and a kill -9 in the middle of 300.
"""

from __future__ import annotations

from pathlib import Path

from tests.reliability.loadgen import crash_profile, load_profile


def test_short_load_loses_nothing(tmp_path: Path) -> None:
    fig = load_profile(tmp_path, 500, 50, seed=11)
    print("\n" + fig.table())
    assert fig.lost == 0, fig.lost_details
    assert sum(fig.counts.values()) == 500
    assert fig.counts.get("fallback", 0) > 0  # the primary (max_concurrent 2) cannot take 50 clients alone
    assert fig.log.rows == 500 and fig.log.duplicates == 0, "one log row per request"
    assert fig.log.missing_ids == [], "every request id a client saw is in the log"
    assert fig.log.integrity == "ok"
    assert sum(fig.log.outcomes.values()) == 500
    assert fig.gateway_errors == [], fig.gateway_errors
    assert 0 < fig.peak_rss_mb < 400


def test_fault_shapes_mixed_under_load_lose_nothing_and_print_no_traceback(tmp_path: Path) -> None:
    """Issue 8, done when: issue 8's shapes (split surrogates, no choices, content parts, a 200 that is not
    a stream, huge lines, a missing model, retry-after...) mixed on all three backends under load."""
    fig = load_profile(tmp_path, 500, 50, seed=21, mix="shapes")
    print("\n" + fig.table())
    assert fig.lost == 0, fig.lost_details
    assert sum(fig.counts.values()) == 500 and fig.counts.get("fallback", 0) > 0
    assert fig.log.rows == 500 and fig.log.duplicates == 0, "every request exactly once in the log"
    assert fig.log.missing_ids == [] and fig.log.integrity == "ok"
    assert fig.gateway_errors == [], fig.gateway_errors  # no traceback, no ERROR line in the gateway's output
    assert fig.log.router_ms[2] <= 8_000 + 2_000, "no request outlived its total bound (8 s) in the gateway"
    assert fig.seconds < 240


def test_kill_9_mid_load_loses_no_answered_request(tmp_path: Path) -> None:
    fig = crash_profile(tmp_path, 300, 50, kill_after=100, seed=12)
    print("\n" + fig.table())
    assert fig.answered_before_kill >= 100
    assert fig.integrity == "ok"
    assert fig.missing == [], "a response reached the client but its row is not in the log"
    assert fig.served_after_restart
