"""A stop sequence the backend did not take ends the model's stream at once (router/stop_watch.py).

An OpenAI-compatible server is sent the first 4 of a client's ``stop`` — "Up to 4 sequences where the API will stop
generating further tokens" (OpenAI's API reference, CreateChatCompletionRequest.stop) — and the Messages API's
``stop_sequences`` are sent to no backend (the answer must name the one it stopped at: Anthropic's Messages reference,
``stop_reason: "stop_sequence"`` — "one of your provided custom stop_sequences was generated" — and ``stop_sequence``,
"Which custom stop sequence was generated, if any": anthropic-sdk-python, src/anthropic/types/message.py). The
gateway cuts the text at those itself; before, the backend's stream was still read to its end — the model wrote on to
``max_tokens`` holding its slot, the client waited for the whole generation, and the log counted it. The fake streams
its answer a piece every 0.1 s (a slow model: 4 s for the 40 pieces), so a stream read to the end shows.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes import OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

WORDS = ["alpha", "beta", "gamma", *(f"w{i}" for i in range(37))]
INTERVAL = 0.1  # the whole answer: 4 s
#: the 5th is the one met, and it is past the 4 an OpenAI-compatible server is sent
STOPS = ["<1>", "<2>", "<3>", "<4>", "gamma"]
ASK = [{"role": "user", "content": "list"}]
#: what a stream read to its end takes at least; one closed at "gamma" (the 3rd piece) takes ~0.3 s
WHOLE = INTERVAL * len(WORDS)


@pytest.fixture(scope="module")
def slow() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply_text=" ".join(WORDS), chunk_interval=INTERVAL, honour_max_tokens=True) as server:
        yield server


@pytest.fixture
def gw(tmp_path, slow) -> Iterator[GatewayServer]:
    slow.reset()
    config = make_config({"slow": {"provider": "openai", "endpoint": slow.url + "/v1", "model": "m",
                                   "max_concurrent": 1}},
                         {"solo": {"primary": "slow"}}, log={"path": str(tmp_path / "log.db")},
                         defaults={"timeouts": {"queue": 10, "first_token": 5, "idle": 5, "total": 30},
                                   "retries": {"attempts": 0}})
    with GatewayServer(config) as server:
        yield server


def _rows(gw: GatewayServer, n: int) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]] | None:
        conn = sqlite3.connect(gw.runtime.log.path)
        conn.row_factory = sqlite3.Row
        try:
            found = [dict(r) for r in conn.execute(
                "SELECT r.tokens_out, r.finish_reason, r.outcome, r.queue_wait_ms, r.total_ms, a.detail, a.outcome AS "
                "attempt, a.duration_ms FROM requests r JOIN attempts a ON a.request_id = r.id ORDER BY r.ts")]
        finally:
            conn.close()
        return found if len(found) >= n else None
    return gw.wait_for(read)


def _closed_early(gw: GatewayServer, slow: OpenAIServer, wall: float) -> dict[str, Any]:
    """The client's answer and the backend's connection both ended at the stop, not after the whole answer; the
    row is an answer whose tokens and time are the three pieces'."""
    assert wall < WHOLE / 2, wall
    slow.wait_for(lambda: slow.in_flight == 0, timeout=WHOLE / 4)  # the fake saw its connection closed
    [row] = _rows(gw, 1)
    assert (row["outcome"], row["attempt"], row["finish_reason"]) == ("ok", "ok", "stop_sequence"), row
    assert row["tokens_out"] == 3 and row["duration_ms"] < WHOLE * 1000 / 2, row
    assert "stream closed at the stop sequence 'gamma'" in row["detail"], row
    return row


def test_a_stream_is_closed_at_a_stop_sequence_the_server_was_not_sent(gw, slow):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=30)
    start = time.perf_counter()
    chunks = list(client.chat.completions.create(model="solo", messages=ASK, stop=STOPS, max_tokens=100, stream=True,
                                                  stream_options={"include_usage": True}))
    wall = time.perf_counter() - start
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "alpha beta " and [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert slow.last_request.json["stop"] == STOPS[:4]
    _closed_early(gw, slow, wall)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3  # not 0: never reported


def test_a_whole_answer_stops_reading_at_the_stop_sequence(gw, slow):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=30)
    start = time.perf_counter()
    done = client.chat.completions.create(model="solo", messages=ASK, stop=STOPS, max_tokens=100)
    wall = time.perf_counter() - start
    assert done.choices[0].message.content == "alpha beta " and done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens == 3
    _closed_early(gw, slow, wall)


def test_the_messages_apis_stop_sequence_closes_the_stream_and_is_named(gw, slow):
    claude = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, timeout=30)
    start = time.perf_counter()
    with claude.messages.stream(model="solo", max_tokens=100, messages=ASK, stop_sequences=["gamma"]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    wall = time.perf_counter() - start
    assert text == "alpha beta " and (final.stop_reason, final.stop_sequence) == ("stop_sequence", "gamma")
    assert final.usage.output_tokens == 3
    assert "stop" not in slow.last_request.json  # not sent: a server that stopped there would not say which
    _closed_early(gw, slow, wall)
    whole = claude.messages.create(model="solo", max_tokens=100, messages=ASK, stop_sequences=["gamma"])
    assert (whole.stop_reason, whole.stop_sequence, whole.usage.output_tokens) == ("stop_sequence", "gamma", 3)


def test_the_models_slot_is_free_for_the_next_request_at_the_stop(gw, slow):
    """One slot (``max_concurrent: 1``): a request that comes while a stopped stream would still be read waits only
    for the stop, not for the whole generation."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=30)
    first = threading.Thread(target=lambda: list(client.chat.completions.create(
        model="solo", messages=ASK, stop=STOPS, max_tokens=100, stream=True)))
    first.start()
    slow.wait_for(lambda: slow.in_flight == 1)
    time.sleep(INTERVAL)
    client.chat.completions.create(model="solo", messages=ASK, max_tokens=2)  # 2 pieces: 0.1 s once it has the slot
    first.join(WHOLE)
    rows = _rows(gw, 2)
    assert rows[1]["queue_wait_ms"] < WHOLE * 1000 / 4, rows
