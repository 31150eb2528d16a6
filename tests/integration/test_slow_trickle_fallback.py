"""A primary that keeps answering, only too slowly to finish, no longer spends the whole request's time while the
client has been sent nothing: its fallback is asked in the time kept for it (router/kept.py).

The shape, from users of peer routers: "a ~2 tok/s turn never times out, never retries, and never falls back"
(code-yeongyu/senpi#1739 — every watchdog was a silence detector); a provider that "can return a fast first chunk and
then continue sending small deltas often enough that stream_idle_timeout … never fires", 0.8–1.6 tok/s, "the slow
primary remained selected" (maximhq/bifrost#6472); a per-model timeout equal to the run's, so "the fallback mechanism
never triggers" (openclaw/openclaw#43400). Played by the fake OpenAI-compatible server's drip: each word its own
event, a pause under the idle bound between them.

Before, the buffered request's primary ran into ``timeouts.total``: ``deadline``, the backup skipped for want of
time, the chain exhausted (failed on the old code). Once a streaming client has text, nothing is cut early (ended by
the total, said); with no later model that may be asked, the primary keeps the whole time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault, OpenAIServer
from tests.helpers import make_config

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.router.records import StreamInterrupted
from modelyard.types import ChatRequest, Message

REQUEST = ChatRequest(messages=[Message("user", "Tell me about the weather.")])
SLOW = " ".join(f"word{i}" for i in range(40))  # 40 events 0.2 s apart: 8 s, past the request's 4 s
BOUNDS = {"timeouts": {"queue": 1, "connect": 1, "first_token": 1, "idle": 1, "total": 4},
          "retries": {"attempts": 1, "backoff": 0.01, "max_wait": 0.5},
          "cooldown": {"failures": 1, "seconds": 30, "max_seconds": 30}}


@pytest.fixture
async def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.delenv("TRICKLE_UNSET_KEY", raising=False)
    slow = OpenAIServer(models=["local"], reply_text=SLOW).start()
    backup = OpenAIServer(models=["backup"], reply_text="backup answer").start()
    routers: list[tuple[Router, LogWriter]] = []

    def make(backup_entry: dict[str, Any] | None = None, failures: int = 1, first_token: float = 1) -> Router:
        bounds = {**BOUNDS, "cooldown": {**BOUNDS["cooldown"], "failures": failures},
                  "timeouts": {**BOUNDS["timeouts"], "first_token": first_token}}
        primary = {"provider": "openai", "model": "local", "endpoint": slow.url}
        if first_token != BOUNDS["timeouts"]["first_token"]:  # the primary's own bound; the backup keeps 1 s
            primary["timeouts"] = {"first_token": first_token}
            bounds["timeouts"]["first_token"] = BOUNDS["timeouts"]["first_token"]
        config = make_config(
            {"primary": primary,
             "backup": backup_entry or {"provider": "openai", "model": "backup", "endpoint": backup.url}},
            {"agent": {"primary": "primary", "fallbacks": ["backup"]}}, defaults=bounds)
        writer = LogWriter(tmp_path / "log.db", local_models=["primary", "backup"])
        routers.append((Router(config, sink=writer.submit), writer))
        return routers[-1][0]

    slow.set_default(Fault.drip(0.2))
    try:
        yield make, slow, backup
    finally:
        for router, writer in routers:
            await router.aclose()
            writer.close()
        slow.stop()
        backup.stop()


def _attempts(record: Any) -> list[tuple[str, str, str | None]]:
    return [(a.model, a.outcome, a.reason) for a in record.attempts]


async def test_a_trickling_primary_leaves_the_backup_its_time(made: Any, tmp_path: Path) -> None:
    make, _, backup = made
    router = make()
    routed = await router.complete("agent", REQUEST)
    assert routed.response.text == "backup answer"
    assert _attempts(routed.record) == [("primary", "fallback", "too_slow"), ("backup", "ok", None)]
    first = routed.record.attempts[0]
    assert "nothing sent to the client yet" in first.detail and "kept for backup" in first.detail, first.detail
    assert "tok/s" in first.detail and first.tokens_out > 0  # what it did produce is counted, as for any cut
    assert 2.5 <= first.duration_ms / 1000 < 3.5  # cut where the backup's 1 s first-token bound is left
    assert routed.record.total_ms < 4000
    assert len(backup.requests) == 1
    rows = connect(tmp_path / "log.db").execute("SELECT outcome FROM requests").fetchall()
    assert [r[0] for r in rows] == ["fallback"]


async def test_a_model_always_too_slow_cools_and_the_backup_is_asked_at_once(made: Any, tmp_path: Path) -> None:
    """The cut counts towards the cooldown as the model's own bounds do (router/kept.py, Kept.cut_short): with
    ``cooldown.failures: 2`` the second cut in a row cools the primary, and the next request is the backup's at once
    instead of waiting ~3 s of its 4 s for the primary first (before: never cooled, every request paid the wait)."""
    make, slow, backup = made
    router = make(failures=2)
    first = await router.complete("agent", REQUEST)
    assert _attempts(first.record) == [("primary", "fallback", "too_slow"), ("backup", "ok", None)]
    second = await router.complete("agent", REQUEST)
    assert _attempts(second.record) == [("primary", "fallback", "too_slow"), ("backup", "ok", None)]
    asked = len(slow.requests)
    third = await router.complete("agent", REQUEST)
    assert _attempts(third.record) == [("primary", "skipped", "cooling_down"), ("backup", "ok", None)]
    assert third.record.total_ms < 1000 and len(slow.requests) == asked  # not asked, not waited for
    assert len(backup.requests) == 3


async def test_a_primary_cut_before_its_first_token_is_a_first_token_timeout(made: Any) -> None:
    """Cut in the time kept for the backup before anything came: the first token did not come in the time the attempt
    had — a ``first_token_timeout`` (an Ollama model being loaded is not cooled for it), counted as one."""
    make, slow, _ = made
    slow.set_default(Fault.delay(3.5))  # headers, then nothing for 3.5 s: past the cut at ~3 s, under no own bound
    router = make(first_token=5)
    routed = await router.complete("agent", REQUEST)
    assert _attempts(routed.record) == [("primary", "fallback", "first_token_timeout"), ("backup", "ok", None)]
    assert "no answer in" in routed.record.attempts[0].detail and "kept for backup" in routed.record.attempts[0].detail
    again = await router.complete("agent", REQUEST)
    assert _attempts(again.record) == [("primary", "skipped", "cooling_down"), ("backup", "ok", None)]


async def test_a_stream_the_client_already_reads_is_not_cut_to_make_room(made: Any) -> None:
    """Text has gone to the client: a fallback cannot be spliced on, so the primary keeps the whole time and the
    total bound ends it — an interrupted stream, said as the total's."""
    make, _, backup = made
    router = make()
    got: list[str] = []
    with pytest.raises(StreamInterrupted) as caught:
        async for chunk in router.stream("agent", REQUEST):
            got.append(chunk.text)
    record = caught.value.record
    assert _attempts(record) == [("primary", "interrupted", "deadline")]
    assert record.attempts[0].detail == "the request's total time bound ran out"
    assert record.attempts[0].duration_ms / 1000 >= 3.5 and "".join(got).startswith("word0")
    assert backup.requests == []


async def test_with_no_later_model_that_may_be_asked_the_primary_keeps_the_whole_time(made: Any) -> None:
    """The backup cannot be asked (its key is not set): nothing is kept for it, and a primary that needs 3 of the
    4 s answers (it was cut at 3 s it would have been, for a backup that is then skipped)."""
    make, slow, _ = made
    slow.reply_text = " ".join(f"word{i}" for i in range(15))  # 15 events 0.2 s apart: ~3 s
    router = make({"provider": "openai", "model": "backup", "endpoint": "http://127.0.0.1:9/v1",
                   "api_key_env": "TRICKLE_UNSET_KEY"})
    routed = await router.complete("agent", REQUEST)
    assert _attempts(routed.record) == [("primary", "ok", None)]
    assert routed.response.text == slow.reply_text
