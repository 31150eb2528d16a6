"""A fifteenth outside-in pass (prov15): refusals under a rate limit's status that are the request's, not the
moment's — in the words OpenAI, Groq and Anthropic send them (cited per test), replayed through the router.

A request larger by itself than a hosted model's tokens-per-minute allowance:

Both count the prompt *and* the request's ``max_tokens`` against the allowance before they run it, and refuse a
request whose own count is past it — OpenAI with a 429, Groq with a 413, both ``type: "tokens"``, ``code:
"rate_limit_exceeded"``. No wait makes that request pass; a smaller ``max_tokens`` may, and any other request would:

- the 429 was a rate limit — asked again after a backoff for the same refusal, and the model cooled for every other
  request; now a bad_request: the next model at once, this one not counted as sick;
- where the prompt fits and the ``max_tokens`` does not (a one-word request with a 32k ``max_tokens``), the request is
  asked once more at once within the allowance, as for a stated output limit ("max_tokens N clamped to M");
- Groq's "Rate limit reached … Used …, Requested …, try again in 4.77s" stays a rate limit (a guard).

And Anthropic's 429 ``rate_limit_error`` "Extra usage is required for long context requests." — a subscription's
prompt past the standard context: it was a rate limit (asked again, the model cooled for every request); now a
bad_request, the next model at once, the model not cooled.

Each failed on the code before this pass, but the guard and the official SDKs' reading of the fakes' bodies (which
check the fakes, not modelyard).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import KEY, _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON
from tests.integration.test_wire_shapes_round3 import outcomes

from modelyard.types import ChatRequest, Message

#: Groq's 413 as its users quote it (HunorLaczko/ha-groq-cloud-api#27, assafelovic/gpt-researcher#985; the numbers of
#: zeeyado/koassistant.koplugin#106: "every request is refused with HTTP 413 'Request too large ... Limit 8000,
#: Requested 32979', even a one-word dictionary lookup" — its 32k max_tokens counted against the 8k allowance)
GROQ_413 = {"error": {"message": "Request too large for model `openai/gpt-oss-20b` in organization `org_01hw8f0aa0e` "
                                 "service tier `on_demand` on tokens per minute (TPM): Limit 8000, Requested 32979, "
                                 "please reduce your message size and try again. Need more tokens? Upgrade to Dev Tier "
                                 "today at https://console.groq.com/settings/billing",
                      "type": "tokens", "code": "rate_limit_exceeded"}}
#: OpenAI's 429 for a request past the tier's per-minute allowance by itself (vanna-ai/vanna-flask#11: "Error Code: 429
#: … Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 342389. The input or output tokens
#: must be reduced in order to run successfully.")
OPENAI_429 = {"error": {"message": "Request too large for gpt-4o in organization org-abc on tokens per min (TPM): "
                                   "Limit 30000, Requested 342389. The input or output tokens must be reduced in order "
                                   "to run successfully. Visit https://platform.openai.com/account/rate-limits to "
                                   "learn more.", "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
#: Groq's real rate limit: the allowance is spent for now, the request itself fits it (elizaOS/eliza#4040)
GROQ_SPENT = {"error": {"message": "Rate limit reached for model `llama-3.1-8b-instant` in organization `org_01j5b4pz` "
                                   "service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5034, "
                                   "Requested 1443. Please try again in 0.5s. Need more tokens? Upgrade to Dev Tier "
                                   "today at https://console.groq.com/settings/billing",
                        "type": "tokens", "code": "rate_limit_exceeded"}}

ONE_WORD = ChatRequest(messages=[Message("user", "Define: serendipity")], max_tokens=32000)
LONG = ChatRequest(messages=[Message("user", "Summarise this book: " + "word " * 2000)])


def _posts(server: Any) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


async def _route(servers: dict[str, Any], tmp_path: Path, request: ChatRequest,  # noqa: F811
                 *faults: Fault, kind: str = "openai") -> tuple[Any, float]:
    """The routed answer, and how long the primary cools down after it."""
    servers[kind].push(*faults)
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    try:
        routed = await router.complete("agent", request)
        return routed, router.pool.local("primary").health.seconds_left()
    finally:
        await router.aclose()
        writer.close()


async def test_a_max_tokens_past_the_per_minute_allowance_is_asked_again_within_it(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Groq refused the one-word request for its max_tokens (Requested 32979 = 979 of prompt + 32000): it was a
    bad_request and the next model answered, whatever max_tokens asked. Now asked once more at once with the room the
    allowance leaves, 8000 - 979 = 7021 — said in the route, as any clamp is — and the primary answers."""
    routed, cooling = await _route(servers, tmp_path, ONE_WORD, Fault.raw(413, json.dumps(GROQ_413), headers=JSON))
    assert outcomes(routed) == [("primary", "retry", "bad_request"), ("primary", "ok", None)]
    assert "Request too large" in (routed.record.attempts[0].detail or "")
    assert [p.json.get("max_tokens") for p in _posts(servers["openai"])] == [32000, 7021]
    assert "max_tokens 32000 clamped to 7021" in (routed.record.attempts[1].detail or "")
    assert cooling == 0


@pytest.mark.parametrize(("status", "body"), [(429, OPENAI_429), (413, GROQ_413)], ids=["openai_429", "groq_413"])
async def test_a_prompt_past_the_per_minute_allowance_is_the_requests_not_a_rate_limit(
        status: int, body: dict[str, Any], servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """No max_tokens sent, so no smaller one helps: the next model at once, the primary neither asked again nor cooled.
    OpenAI's 429 was a rate_limited — asked again after a backoff for the same refusal, then the primary cooled for
    every other request; Groq's 413 was already a bad_request, the next model at once (both kinds, one rule)."""
    routed, cooling = await _route(servers, tmp_path, LONG, Fault.raw(status, json.dumps(body), headers=JSON),
                                   Fault.raw(status, json.dumps(body), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "tokens-per-minute allowance" in (routed.record.attempts[0].detail or "")
    assert len(_posts(servers["openai"])) == 1
    assert cooling == 0


async def test_guard_a_spent_per_minute_allowance_stays_a_rate_limit(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """Guard (passed before too): Groq's "Rate limit reached … Used 5034, Requested 1443" is the allowance spent for
    now, not a request too large for it: asked again after its wait, never clamped."""
    routed, _ = await _route(servers, tmp_path, ONE_WORD,
                             Fault.raw(429, json.dumps(GROQ_SPENT), headers={**JSON, "retry-after": "0.1"}))
    assert outcomes(routed) == [("primary", "retry", "rate_limited"), ("primary", "ok", None)]
    assert [p.json.get("max_tokens") for p in _posts(servers["openai"])] == [32000, 32000]


@pytest.mark.parametrize(("status", "body", "error"), [(413, GROQ_413, openai.APIStatusError),
                                                       (429, OPENAI_429, openai.RateLimitError)],
                         ids=["groq_413", "openai_429"])
def test_the_official_sdk_reads_the_fakes_refusal_as_the_servers(status: int, body: dict[str, Any],
                                                                 error: type[Exception],
                                                                 servers: dict[str, Any]) -> None:  # noqa: F811
    """openai-python reads the fake's body as it reads the server's: its error class for the status, the code and
    type from the error object (its users quote exactly these: "Error code: 413 - {'error': {'message': 'Request too
    large …', 'type': 'tokens', 'code': 'rate_limit_exceeded'}}")."""
    servers["openai"].push(Fault.raw(status, json.dumps(body), headers=JSON))
    client = openai.OpenAI(base_url=servers["openai"].url + "/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(error) as caught:
        client.chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(caught.value, openai.APIStatusError) and caught.value.status_code == status
    assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "tokens"
    assert "on tokens per min" in caught.value.message
    client.close()


# -- Anthropic: a subscription's long-context refusal under a 429 ------------------------------------------------------

#: the API's 429 as Claude Code logs it (anthropics/claude-code#33514, #50784: "Error: 429 {"type":"error","error":
#: {"type":"rate_limit_error","message":"Extra usage is required for long context requests."},"request_id":…}")
LONG_CONTEXT_429 = {"type": "error", "error": {"type": "rate_limit_error",
                                               "message": "Extra usage is required for long context requests."},
                    "request_id": "req_011CZf8TJf84hAUziB6LuRoc"}


async def test_anthropics_long_context_refusal_is_the_requests_not_a_rate_limit(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """A subscription refuses a prompt past the standard context unless extra usage pays for it (a ~317k-token
    context: griffinmartin/opencode-claude-auth#64), under a 429 ``rate_limit_error``. It was a rate limit: asked
    again for the same refusal, then the model cooled for every request, short ones too (router-for-me/CLIProxyAPI#2464,
    "I need to wait for model cooling down"; Wei-Shaw/sub2api#572: it "should not be rate-limited for 5 minutes").
    Now the request's, as a prompt past the context is: the next model at once, the model not cooled."""
    fault = Fault.raw(429, json.dumps(LONG_CONTEXT_429), headers=JSON)
    routed, cooling = await _route(servers, tmp_path, LONG, fault, fault, kind="anthropic")
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "Extra usage is required" in (routed.record.attempts[0].detail or "")
    assert len(_posts(servers["anthropic"])) == 1
    assert cooling == 0


def test_the_anthropic_sdk_reads_the_fakes_long_context_refusal_as_the_apis(servers: dict[str, Any]) -> None:  # noqa
    """anthropic-python reads the fake's 429 as the API's: a RateLimitError whose body keeps the type and words."""
    servers["anthropic"].push(Fault.raw(429, json.dumps(LONG_CONTEXT_429), headers=JSON))
    client = anthropic.Anthropic(base_url=servers["anthropic"].url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 429 and isinstance(caught.value.body, dict)
    assert caught.value.body["error"] == LONG_CONTEXT_429["error"]
    client.close()
