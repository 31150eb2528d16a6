"""/api/summary under many pollers: one read of the log at a time, reused while fresh (gateway/dashboard.py)."""

from __future__ import annotations

import asyncio

import httpx


def chat(gateway) -> None:
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "coder", "messages": [
        {"role": "user", "content": "hello"}]}, timeout=15)
    assert r.status_code == 200


async def _poll(url: str, n: int) -> list[dict]:
    async with httpx.AsyncClient(timeout=30) as client:
        answers = await asyncio.gather(*(client.get(url + "/api/summary") for _ in range(n)))
    assert all(a.status_code == 200 for a in answers)
    return [a.json() for a in answers]


def test_many_pollers_share_one_read_of_the_log(gateway, fakes):
    """Every open dashboard asks every 2 s, and each answer read the whole month of the log (7–20 s at 300,000 rows):
    20 pollers were 20 reads at once, each pass. Now they wait for the one read under way, and its result serves
    until it goes stale."""
    chat(gateway)
    summaries = gateway.gateway.summaries
    summaries.MIN_FRESH = 60.0  # this test's pace must not matter on a loaded machine
    answers = asyncio.run(_poll(gateway.url, 20))
    assert summaries.reads == 1
    assert {a["cost"]["requests"] for a in answers} == {1}
    assert all(a["models"] and a["options"]["agents"] for a in answers)  # live parts added to each
    asyncio.run(_poll(gateway.url, 5))
    assert summaries.reads == 1  # still fresh


def test_a_stale_summary_is_read_again(gateway, fakes):
    summaries = gateway.gateway.summaries
    summaries.MIN_FRESH = 0.0
    summaries.DUTY = 0.0
    chat(gateway)
    assert httpx.get(gateway.url + "/api/summary").json()["cost"]["requests"] == 1
    chat(gateway)
    assert httpx.get(gateway.url + "/api/summary").json()["cost"]["requests"] == 2
    assert summaries.reads == 2
