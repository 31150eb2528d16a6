"""An embeddings request split over one call's bound (``max_embed_batch``) sends its calls at once on the model's free
slots, not one after another on the attempt's one — within ``max_concurrent``, never ahead of a queued request, in
order, and all or nothing.

The fake server takes a while a call, as an embedding server's time tracks the text in a call (Ollama embeds a batch's
texts one after another: cbcoutinho/nextcloud-mcp-server#1347), and serves calls side by side as llama-server does with
``--parallel`` slots (tools/server/README.md: "-np, --parallel N  number of server slots"). Was: a 40-text request in
calls of 10 took four calls' time with three of four slots idle; the tests of the waves and the lender failed on the
old code, the failure test is a guard (the old code, one call at a time, also failed whole).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelyard.config.schema import Cooldown
from modelyard.ledger import connect
from modelyard.router.pool import LocalState
from modelyard.router.spare_slots import SpareSlots
from tests.fakes import Fault, OpenAIServer
from tests.fakes.embeddings import fake_vector
from tests.gateway.harness import GatewayServer
from tests.helpers import arrival_waves, make_config

DIMS = 8
DELAY = 0.6
TEXTS = [f"passage number {i} about embeddings" for i in range(40)]


@pytest.fixture
def slow() -> Iterator[OpenAIServer]:
    with OpenAIServer(embedding_dims=DIMS) as server:
        server.faults.set_default(Fault.delay(DELAY))
        yield server


def _config(tmp_path, url: str, max_concurrent: int) -> Any:
    models = {"emb": {"provider": "openai", "endpoint": url, "model": "bge-small-en-v1.5", "max_embed_batch": 10,
                      "max_concurrent": max_concurrent}}
    defaults = {"timeouts": {"queue": 5, "connect": 2, "first_token": 10, "idle": 10, "total": 30},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, {"rag": {"primary": "emb"}}, defaults=defaults, log={"path": str(tmp_path / "log.db")})


def _notes(gw: GatewayServer) -> list[str]:
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        return [r[0] for r in conn.execute("SELECT detail FROM attempts ORDER BY ts, seq")]
    finally:
        conn.close()


def _waves(server: OpenAIServer) -> list[int]:
    return arrival_waves((r.received_at for r in server.requests_to("/v1/embeddings")), DELAY / 2)


def _embed(gw: GatewayServer) -> httpx.Response:
    return httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": TEXTS}, timeout=30)


def test_the_calls_go_at_once_on_free_slots_and_come_back_in_order(tmp_path, slow):
    with GatewayServer(_config(tmp_path, slow.url, 4)) as gw:
        r = _embed(gw)
        assert r.status_code == 200, r.text
        assert [d["index"] for d in r.json()["data"]] == list(range(40))
        assert [d["embedding"] for d in r.json()["data"]] == [pytest.approx(fake_vector(t, DIMS)) for t in TEXTS]
        assert _waves(slow) == [4]
        assert sorted(len(q.json["input"]) for q in slow.requests_to("/v1/embeddings")) == [10] * 4
        assert _notes(gw) == ["embedded in 4 calls of at most 10 texts and 300,000 tokens, 4 at once on the model's "
                              "free slots"]


def test_never_past_max_concurrent(tmp_path, slow):
    with GatewayServer(_config(tmp_path, slow.url, 2)) as gw:
        r = _embed(gw)
        assert r.status_code == 200, r.text
        assert [d["embedding"] for d in r.json()["data"]] == [pytest.approx(fake_vector(t, DIMS)) for t in TEXTS]
        assert _waves(slow) == [2, 2]
        assert gw.router.pool.local("emb").slots.peak == 2


def test_a_failed_call_fails_the_whole_answer_and_gives_every_slot_back(tmp_path, slow):
    """Guard: one call failing fails the request (no vectors for some texts only), every lent slot given back."""
    slow.faults.push(Fault.delay(DELAY), Fault.status(500))
    with GatewayServer(_config(tmp_path, slow.url, 4)) as gw:
        r = _embed(gw)
        assert r.status_code >= 500 and "data" not in r.json(), r.text  # no partial answer reported as whole
        state = gw.router.pool.local("emb")
        assert state.slots.in_flight == 0 and state.slots.waiting == 0
        again = _embed(gw)  # the slots lent to the failed request's calls are the model's again
        assert again.status_code == 200 and len(again.json()["data"]) == 40, again.text


async def test_a_slot_is_lent_only_while_one_is_free():
    """The lender's rule in isolation: every slot busy lends nothing; a slot given back may be lent again."""
    state = LocalState("emb", 2, Cooldown())
    lanes = SpareSlots(state)
    await state.acquire(1)  # the attempt's own slot
    assert await lanes.take() and state.slots.in_flight == 2 and lanes.most == 2
    assert not await lanes.take() and state.slots.in_flight == 2  # both slots out: none waited for
    await lanes.give_back()
    assert state.slots.in_flight == 1 and await lanes.take()
    await lanes.give_back()
    await state.release()
    assert state.slots.in_flight == 0
