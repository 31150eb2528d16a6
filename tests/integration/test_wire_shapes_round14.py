"""A fourteenth outside-in pass (prov14): shapes relays and hosted APIs send that the fakes never did, each the
server's own, rebuilt from the report where its users met it (cited per test and in ``tests/fakes/stream_quirks.py``),
replayed through the router.

- a ``data: null`` event inside a good answer (AgentRouter): read past, not the whole answer refused;
- ``finish_reason: "network_error"`` (OpenCode Zen), and OpenRouter's ``native_finish_reason: "network_error"`` under a
  "stop": the upstream broke — asked again, then the next model, never a cut answer passed on as whole;
- Anthropic's 429 for a spent subscription window, its reset only in ``anthropic-ratelimit-unified-*``: the model
  rests until the window reopens;
- a one-chunk answer (text and finish reason, nothing after, the connection held open) from a server whose earlier
  answers ended on a chunk of their own: it ends within the short grace, not 80% of the idle bound each time.

Each failed on the code before this pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fakes.relays import one_chunk_no_end
from tests.fakes.stream_quirks import (
    deepseek_no_room,
    finish_on_every_chunk,
    glm_finish,
    minimax_refusal,
    native_network_error,
    network_error_finish,
    null_event,
    relay_reset_in_words,
    subscription_429,
)
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling
from tests.integration.test_wire_shapes_round9 import _routed, _rows

from modelyard.gateway.wire import finish_reason
from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message

PLAIN = ChatRequest(messages=[Message("user", "Say hello")])


def _posts(server: Any) -> int:
    return len([r for r in server.requests if r.method == "POST"])


# -- AgentRouter: "data: null" between the reasoning and the answer ---------------------------------------------------

async def test_a_null_event_inside_an_answer_is_read_past(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa
    """AgentRouter's relay of Claude sends ``data: null`` between the reasoning and the completion
    (Kilo-Org/kilocode#3083: "They send a 'data: null' between the reasoning and completion"). It was "SSE data is
    not an object": the whole good answer refused as malformed_response, never asked again. JSON's null says nothing:
    read past, the answer kept."""
    servers["openai"].push(null_event("Hello!"))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Hello!"
    assert _posts(servers["openai"]) == 1 and _rows(tmp_path) == 1


# -- an upstream's network broken: "network_error" as the finish reason -----------------------------------------------

@pytest.mark.parametrize("said", ["", "The answer is"], ids=["empty", "after_text"])
async def test_a_network_error_finish_is_the_upstream_breaking(said: str, servers: dict[str, Any],  # noqa: F811
                                                               tmp_path: Path) -> None:
    """OpenCode Zen ends a stream cleanly with ``finish_reason: network_error`` and nothing said (hermes-agent#92161;
    OpenCode retries it since 1.18.20, gajae-code#4918 likewise). It was an empty answer refused as unusable_reply —
    the model's fault, never asked again — and after some text, that text passed on as the whole answer, its finish
    reason "network_error" handed to the client as a normal end. It is the upstream's connection: a stream_error,
    asked again (here: the same, then the next model), nothing passed on from the broken attempt."""
    servers["openai"].push(network_error_finish(said), network_error_finish(said))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "retry", "stream_error"), ("primary", "fallback", "stream_error"),
                                ("backup", "ok", None)]
    assert "network_error" in (routed.record.attempts[0].detail or "")
    assert _posts(servers["openai"]) == 2 and _rows(tmp_path) == 1
    assert "The answer is" not in (routed.response.text or "")


async def test_openrouters_native_network_error_under_a_stop_is_not_an_empty_answer(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """OpenRouter wraps an upstream's ``network_error`` as ``finish_reason: "stop"`` with empty content and no usage
    chunk, the real cause only in ``native_finish_reason`` (earendil-works/pi#8511: "the user hears the completion
    chime with no reply and no error"). It was unusable_reply ("empty answer"), the model blamed, never asked again.
    The upstream's own reason is read: a stream_error, asked again."""
    servers["openai"].push(native_network_error(), native_network_error())
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "retry", "stream_error"), ("primary", "fallback", "stream_error"),
                                ("backup", "ok", None)]
    assert "network_error" in (routed.record.attempts[0].detail or "")
    assert _posts(servers["openai"]) == 2


async def test_glms_network_error_is_asked_again_too(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Z.ai documents ``network_error`` among its GLM API's finish reasons (promptfoo#9905: "falls through … a
    provider-side network failure as a valid completion"): read as OpenCode Zen's is, after the text it had said."""
    servers["openai"].push(glm_finish("network_error", "Sun"), glm_finish("network_error", "Sun"))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert [o[1:] for o in outcomes(routed)] == [("retry", "stream_error"), ("fallback", "stream_error"), ("ok", None)]
    assert routed.response.text == "backup answer"


async def test_deepseeks_insufficient_system_resource_rests_the_model(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """DeepSeek ends an answer its inference system has no room for with ``finish_reason:
    "insufficient_system_resource"`` (its docs: "the request is interrupted due to insufficient resource of the
    inference system"; oh-my-pi#8563: the truncated turn was finalized as a clean stop). The text before it was passed
    on as the whole answer. It is the server's capacity: overloaded, the next model asked, nothing of the cut answer
    passed on."""
    servers["openai"].push(deepseek_no_room("The first step is"), deepseek_no_room("The first step is"))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert routed.record.attempts[0].reason == "overloaded" and routed.record.model == "backup"
    assert routed.response.text == "backup answer"
    assert "insufficient_system_resource" in (routed.record.attempts[0].detail or "")


async def test_a_relay_saying_its_upstream_reset_is_a_dropped_connection(servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """A relay whose upstream reset mid-reasoning appends its own plain-text line, ``upstream error: read
    ECONNRESET``, and closes the response cleanly (tetsuo-ai/agenc-core#2492). It was malformed_response — "not an
    event stream", never asked again, as if the same bytes would come back. The relay said the connection broke: a
    dropped connection, asked again (here it answers the second time), its words in the detail."""
    servers["openai"].push(relay_reset_in_words())
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "retry", "connection_dropped"), ("primary", "ok", None)]
    assert "ECONNRESET" in (routed.record.attempts[0].detail or "")
    assert _posts(servers["openai"]) == 2 and _rows(tmp_path) == 1


# -- Z.ai's GLM: the safety audit's "sensitive" -----------------------------------------------------------------------

@pytest.mark.parametrize("said", ["", "The capital of"], ids=["empty", "after_text"])
async def test_glms_sensitive_finish_is_a_filtered_answer(said: str, servers: dict[str, Any],  # noqa: F811
                                                          tmp_path: Path) -> None:
    """GLM stops an answer its safety audit flags with ``finish_reason: "sensitive"`` (docs.z.ai; dify#7559:
    "Sometimes when Zhipu encounters sensitive words, it will stop returning and give a finish_reason: sensitive";
    any-llm#1204 maps it to content_filter). The cut answer was passed on as whole (the gateway said "stop"), an empty
    one refused as unusable_reply and the model blamed. It is the provider's policy, as OpenAI's content_filter and
    Gemini's SAFETY: passed on as a filtered answer, so logged and so told to the client."""
    servers["openai"].push(glm_finish("sensitive", said))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == said and finish_reason(routed.response) == "content_filter"
    row = connect(tmp_path / "log.db").execute("SELECT finish_reason FROM requests").fetchone()
    assert row["finish_reason"] == "content_filter"


# -- MiniMax: a refusal under a 200, in base_resp ---------------------------------------------------------------------

@pytest.mark.parametrize(("code", "message", "reason"), [
    (1002, "rate limit exceeded(RPM)", "rate_limited"),
    (1008, "insufficient balance", "auth_error"),
    (1004, "login fail: Please carry the API secret key in the 'Authorization' field of the request header",
     "auth_error"),
    (2013, "invalid params, tool call id is invalid", "bad_request"),
    (1000, "unknown error", "stream_error"),
])
async def test_minimaxs_refusal_in_base_resp_is_read_by_its_code(code: int, message: str, reason: str,
                                                                  servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """MiniMax answers a refused request with a 200 whose chunk has ``choices: null`` and the refusal in ``base_resp``
    (Roo-Code#9105 "Add provider-specific error handling for MiniMax base_resp errors"; dify's minimax provider reads
    its codes: 1002/1039 rate limits, 1004 the key, 1008 the balance, 2013 the parameters). Read as a usage-only
    object it was skipped, and the stream that then ended was a dropped connection: asked again at once, for the same
    refusal, a spent balance or a refused key never cooled. The code is read as the status it means."""
    servers["openai"].push(minimax_refusal(code, message), minimax_refusal(code, message))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    first = routed.record.attempts[0]
    assert (first.model, first.reason) == ("primary", reason)
    assert f"MiniMax {code}" in (first.detail or "") and routed.record.model == "backup"
    assert _rows(tmp_path) == 1


# -- Anthropic: a subscription window spent, its reset only in the unified headers ------------------------------------

async def test_a_spent_subscription_window_rests_the_model_until_it_reopens(servers: dict[str, Any],  # noqa: F811
                                                                            tmp_path: Path) -> None:
    """Anthropic's 429 for a spent five-hour window carries ``anthropic-ratelimit-unified-status: rejected`` and the
    epoch each window reopens (``-reset``), with no count to be 0 and, often, no ``retry-after`` (opencodex#3809:
    "Retry-After is not guaranteed on an Anthropic 429, but a rejected window's -reset epoch is … without it such a
    refusal cooled for the 60s default"; CLIProxyAPI#3148's capture; sub2api#3249). It cooled for the breaker's second
    and was asked, and refused, again and again. The rejected window's reset is the wait; a window still allowed
    (the weekly one here, further out) is not."""
    routed, cooling = await route_cooling("anthropic", servers, tmp_path, subscription_429(600, weekly_in=86400))
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert 585 < cooling <= 600, cooling


# -- a one-chunk answer from a server whose answers end on a chunk of their own ---------------------------------------

async def test_a_one_chunk_answer_from_a_server_that_ends_its_answers_apart_is_not_waited_for(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Round 13 kept a one-chunk answer (its text and ``finish_reason`` in one chunk, then nothing on a connection held
    open: bifrost#6784) by waiting 80% of the idle bound for more — on every such answer, since a server that puts a
    finish reason on every chunk (LiteLLM relaying Gemini, litellm#2195) goes on after one. A server whose earlier
    answer sent its text without a finish reason and the reason at the end does not: learned from that answer, its
    one-chunk answers end within the short grace (half the idle bound once, then END_GRACE once the lost end marker is
    learned too). Here the idle bound is 2 s: it was 1.6 s for each."""
    servers["openai"].push("ok", one_chunk_no_end("Sunny."), one_chunk_no_end("Cloudy."))
    first, second, third = await _routed("openai", servers, tmp_path, PLAIN, PLAIN, PLAIN)
    assert [outcomes(r) for r in (first, second, third)] == [[("primary", "ok", None)]] * 3
    assert (second.response.text, third.response.text) == ("Sunny.", "Cloudy.")
    assert second.record.total_ms / 1000 < 1.5, second.record.total_ms  # the grace, idle / 2: 1 s
    assert third.record.total_ms / 1000 < 1.2, third.record.total_ms  # END_GRACE: 0.5 s
    assert _rows(tmp_path) == 3


async def test_a_server_that_put_a_finish_reason_mid_answer_is_still_waited_for(servers: dict[str, Any],  # noqa: F811
                                                                                tmp_path: Path) -> None:
    """The guard of the above: a server that once went on after a finish reason (litellm#2195) is never taken to end
    its answers on a chunk of their own, whatever its other answers did: its one-chunk answer is waited for as
    before (80% of the idle bound), and kept."""
    servers["openai"].push("ok", finish_on_every_chunk(), one_chunk_no_end("Sunny."))
    *_, last = await _routed("openai", servers, tmp_path, PLAIN, PLAIN, PLAIN)
    assert outcomes(last) == [("primary", "ok", None)] and last.response.text == "Sunny."
    assert 1.5 < last.record.total_ms / 1000 < 2.0, last.record.total_ms

