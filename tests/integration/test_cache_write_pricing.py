"""Prompt-cache writes priced as billed: Anthropic's one-hour writes, OpenRouter's cache writes and stated cost.

- Anthropic's Messages API splits ``cache_creation_input_tokens`` by lifetime in ``usage.cache_creation``
  (``ephemeral_5m_input_tokens``, ``ephemeral_1h_input_tokens``: the SDKs' CacheCreation model, "the number of input
  tokens used to create the 1 hour cache entry"), in a whole message and in a stream's ``message_start`` /
  cumulative ``message_delta``; a one-hour write is billed 2x the input price, a five-minute one 1.25x (Anthropic's
  prompt-caching pricing). All writes were priced as five-minute ones: a one-hour write 37.5% under.
- OpenRouter's usage (its Usage Accounting page) puts ``cache_write_tokens`` beside ``cached_tokens`` in
  ``prompt_tokens_details`` — both part of ``prompt_tokens`` — and states the ``cost`` it billed (credits, a credit a
  dollar), adding ``cost_details.upstream_inference_cost`` billed to the caller's own key when ``is_byok``. The writes
  were priced as plain input and the stated cost unread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, primary, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON
from tests.integration.test_wire_shapes_round3 import REQ, outcomes
from tests.integration.test_wire_shapes_round4 import _text_answer, route_anthropic

from modelyard.ledger import connect
from modelyard.replay.source import arrivals

# -- Anthropic's one-hour cache writes --------------------------------------------------------------------------------

#: 10 plain, 5,000 read, 1,000 written: 400 to the five-minute cache, 600 to the one-hour one
SPLIT = {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600}
START = {"input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 5000,
         "cache_creation": SPLIT, "output_tokens": 1}
#: at $3/$15 (the test router's PRICE): reads 0.1x, five-minute writes 1.25x, one-hour writes 2x the input price
COST = (10 * 3.0 + 5000 * 0.3 + 400 * 3.75 + 600 * 6.0 + 20 * 15.0) / 1e6


@pytest.mark.parametrize("answer", [
    _text_answer(START, {"output_tokens": 20}),
    # message_delta's usage is cumulative: the split may come again, or only there (a proxy's zeros at the start)
    _text_answer({"input_tokens": 0, "output_tokens": 0}, {**START, "output_tokens": 20}),
    Fault.raw(200, json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                               "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn",
                               "usage": {**START, "output_tokens": 20}}), headers=JSON),
], ids=["stream_start", "delta_only", "whole_message"])
async def test_one_hour_cache_writes_are_priced_at_twice_the_input(answer: Fault, servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    routed = await route_anthropic(answer, servers, tmp_path)
    assert routed.record.tokens_in == 6010
    assert routed.record.cost_usd == pytest.approx(COST)  # was $0.00558 (all 1,000 writes at 1.25x): 19% less
    conn = connect(tmp_path / "log.db")
    row = conn.execute("SELECT cache_write_tokens, cache_write_1h_tokens FROM attempts").fetchone()
    assert tuple(row) == (1000, 600)
    # replay reads the split back, to price a simulated answer as the router priced this one
    (arrival,) = arrivals(conn, 0, float("inf"))
    assert (arrival.cache_write, arrival.cache_write_1h) == (1000, 600)


def test_one_hour_writes_take_a_configured_price() -> None:
    from modelyard.config.schema import Price

    price = Price(input=3, output=15, cache_read=0.3, cache_write=3.75, cache_write_1h=5.0)
    assert price.cost(6010, 20, 5000, 1000, cache_write_1h=600) == pytest.approx(
        (10 * 3 + 5000 * 0.3 + 400 * 3.75 + 600 * 5.0 + 20 * 15) / 1e6)


def test_the_gateways_anthropic_wire_gives_the_split_back() -> None:
    """Through modelyard's /v1/messages a client (Claude Code) reads the writes by lifetime, as the API gives them."""
    from modelyard.gateway.messages_wire import _usage
    from modelyard.types import Usage

    assert _usage(Usage(6010, 20, 5000, 1000, cache_write_1h_tokens=600))["cache_creation"] == SPLIT


# -- OpenRouter's cache writes and stated cost -------------------------------------------------------------------------

def _openrouter_answer(usage: dict[str, Any]) -> Fault:
    """A whole chat completion with OpenRouter's usage object (its Usage Accounting page's shape)."""
    return Fault.raw(200, json.dumps({
        "id": "gen-1", "object": "chat.completion", "model": "anthropic/claude-sonnet-4.5",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"}],
        "usage": usage}), headers=JSON)


OPENROUTER_USAGE = {"prompt_tokens": 6010, "completion_tokens": 20, "total_tokens": 6030,
                    "completion_tokens_details": {"reasoning_tokens": 0},
                    "prompt_tokens_details": {"cached_tokens": 5000, "cache_write_tokens": 1000, "audio_tokens": 0}}
OR_PRICE = {"input": 3.0, "output": 15.0, "cache_read": 0.3}


async def _route_openrouter(servers: dict[str, Any], tmp_path: Path, usage: dict[str, Any]) -> Any:  # noqa: F811
    from tests.helpers import make_config

    from modelyard.ledger import LogWriter
    from modelyard.router import Router

    servers["openai"].push(_openrouter_answer(usage))
    config = make_config({"primary": {**primary("openai", servers), "price": OR_PRICE}},
                         {"agent": {"primary": "primary"}}, defaults={"retries": {"attempts": 0}})
    writer = LogWriter(tmp_path / "log.db")
    router = Router(config, sink=writer.submit)
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)]
    return routed


async def test_openrouter_cache_writes_are_read_and_priced_as_writes(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    routed = await _route_openrouter(servers, tmp_path, OPENROUTER_USAGE)
    (attempt,) = routed.record.attempts
    assert (attempt.tokens_in, attempt.cache_read_tokens, attempt.cache_write_tokens) == (6010, 5000, 1000)
    # 10 plain at $3, 5,000 read at the configured $0.30, 1,000 written at 1.25x, 20 out
    assert routed.record.cost_usd == pytest.approx((10 * 3 + 5000 * 0.3 + 1000 * 3.75 + 20 * 15) / 1e6)


@pytest.mark.parametrize(("stated", "billed"), [
    ({"cost": 0.00752}, 0.00752),
    # BYOK: usage.cost is OpenRouter's fee; the provider billed the upstream cost to the caller's own key
    ({"cost": 0.0004, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.0075}}, 0.0079),
    # not BYOK: upstream_inference_cost is filled too (equal to the cost) and is not billed again
    ({"cost": 0.0075, "is_byok": False, "cost_details": {"upstream_inference_cost": 0.0075}}, 0.0075),
], ids=["credits", "byok", "not_byok"])
async def test_the_cost_openrouter_states_is_what_the_log_counts(stated: dict[str, Any], billed: float,
                                                                 servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    routed = await _route_openrouter(servers, tmp_path, {**OPENROUTER_USAGE, **stated})
    assert routed.record.cost_usd == pytest.approx(billed)
    row = connect(tmp_path / "log.db").execute("SELECT cost_usd FROM requests").fetchone()
    assert row[0] == pytest.approx(billed)
