"""A sixth outside-in pass (helper-73's hunt), on the two native protocols: Anthropic's Messages API and Ollama's
/api/chat. Each refusal is the server's own words, taken from its source or an issue thread where its users met it
(cited per test), sent by the fakes (tests/fakes/anthropic.py's ``adaptive_only``) or replayed verbatim
(``Fault.raw``) through the router.

Each ends in what the server meant — asked again at once in the shape it takes, or the model cooled as the refusal
lasts — with one routing-log row; each failed on the code before this pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import AnthropicServer, Fault, OpenAIServer
from tests.fakes.anthropic import LOW_CREDIT, ORG_DISABLED
from tests.fakes.chat import DEFAULT_THINKING
from tests.helpers import make_config
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message, ToolCall

KEY = "sk-ant-round6-abcdefghijklmnopqrstuv"
REPLY = "Hello from Claude."


# -- Anthropic: Claude Opus 4.7 and later --------------------------------------------------------------------------

@pytest.fixture
def opus(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AnthropicServer, OpenAIServer]]:
    monkeypatch.setenv("ROUND6_ANTHROPIC_KEY", KEY)
    with AnthropicServer(api_key=KEY, reply_text=REPLY, adaptive_only=True) as claude, \
            OpenAIServer(models=["backup"], reply_text="backup answer") as backup:
        yield claude, backup


def opus_router(claude: AnthropicServer, backup: OpenAIServer, log: Path) -> tuple[Router, LogWriter]:
    config = make_config(
        {"opus": {"provider": "anthropic", "model": "claude-opus-4-7", "endpoint": claude.url,
                  "api_key_env": "ROUND6_ANTHROPIC_KEY"},
         "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
        {"agent": {"primary": "opus", "fallbacks": ["backup"]}},
        defaults={"retries": {"attempts": 1, "backoff": 0.01}, "cooldown": {"failures": 5, "seconds": 1,
                                                                             "max_seconds": 5}})
    writer = LogWriter(log, local_models=["backup"])
    return Router(config, sink=writer.submit), writer


async def ask_twice(opus: tuple[AnthropicServer, OpenAIServer], tmp_path: Path, ask: ChatRequest) -> list[Any]:
    """The same request twice through one router: both answered by Claude, the first after the refusal."""
    router, writer = opus_router(*opus, tmp_path / "log.db")
    answers = [await router.complete("agent", ask) for _ in range(2)]
    await router.aclose()
    writer.close()
    for routed in answers:
        assert outcomes(routed) == [("opus", "ok", None)], routed.record.attempts[0].detail
    return answers


async def test_a_model_that_takes_adaptive_thinking_only_is_asked_so_and_remembers(
        opus: tuple[AnthropicServer, OpenAIServer], tmp_path: Path) -> None:
    """Claude Opus 4.7 (and 4.8, Opus 5.x) refuse extended thinking with a budget: 400 invalid_request_error
    '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and
    "output_config.effort" to control thinking behavior.' (earendil-works/pi#3297, opencode#23007,
    hermes-agent#11145). Every request with thinking on was a bad_request: Claude never answered one, the backup
    did. Now the refusal is learned: asked again at once with adaptive thinking — ``display: "summarized"``, since
    those models' default "omitted" sends thinking blocks without their text (claude-code#49268) — and later
    requests go so from the start."""
    claude, _ = opus
    for routed in await ask_twice(opus, tmp_path, ChatRequest(messages=[Message("user", "Say hello")], thinking=True)):
        assert (routed.response.text, routed.response.thinking) == (REPLY, DEFAULT_THINKING)
    sent = [r.json["thinking"] for r in claude.requests]
    assert sent[0]["type"] == "enabled"
    assert sent[1:] == [{"type": "adaptive", "display": "summarized"}] * 2
    assert connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 2


async def test_a_model_that_refuses_temperature_is_asked_without_it(
        opus: tuple[AnthropicServer, OpenAIServer], tmp_path: Path) -> None:
    """Claude Opus 4.7 and later removed the sampling parameters: a request with ``temperature`` (an OpenAI client's
    0.7, sent by most of them) is refused, 400 "`temperature` is deprecated for this model." (inspect_ai#3721,
    Roo-Code#12162, models.dev#1468). Every such request fell back. Now asked again at once without it, and later
    requests go without it."""
    claude, _ = opus
    for routed in await ask_twice(opus, tmp_path, ChatRequest(messages=[Message("user", "Say hello")],
                                                              temperature=0.7)):
        assert routed.response.text == REPLY
    assert ["temperature" in r.json for r in claude.requests] == [True, False, False]


async def test_thinking_in_a_tool_loop_goes_without_it_for_the_turn(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """With thinking on, the API wants the last assistant turn of a tool loop to open with its signed thinking block:
    400 "Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final
    `assistant` message must start with a thinking block … To avoid this requirement, disable `thinking`."
    (OpenRouterTeam/ai-sdk-provider#162, n8n#22550, opencode#3077). modelyard does not keep signed blocks (another
    model may have made the turn): every tool turn after the first was a bad_request, answered by the backup. The
    turn is now asked again at once without thinking, as the API says; a turn outside a tool loop keeps it."""
    loop = ChatRequest(messages=[
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, "toolu_1")]),
        Message("tool", "sunny", tool_call_id="toolu_1", name="get_weather")], thinking=True)
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    routed = await router.complete("agent", loop)
    fresh = await router.complete("agent", ChatRequest(messages=[Message("user", "Say hello")], thinking=True))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text and not routed.response.thinking
    assert outcomes(fresh) == [("primary", "ok", None)] and fresh.response.thinking == DEFAULT_THINKING
    assert ["thinking" in r.json for r in servers["anthropic"].requests] == [True, False, True]


# -- Anthropic: an account the API will not serve -------------------------------------------------------------------

@pytest.mark.parametrize("said", [LOW_CREDIT, ORG_DISABLED], ids=["credit_balance_too_low", "organization_disabled"])
async def test_an_account_refused_under_a_400_cools_the_model(said: str, servers: dict[str, Any],  # noqa: F811
                                                              tmp_path: Path) -> None:
    """The API refuses an account with an empty balance, or a disabled organization, as a 400
    ``invalid_request_error`` (claude-code#4684, #66314, claude-quickstarts#229; claude-code#54311, #72457). As a
    bad_request it said nothing of the model: Claude was asked, and refused, on every request, and never cooled.
    It lasts until someone pays (or Anthropic lifts it): auth_error, as for a 402 billing_error."""
    routed, cooling = await route_cooling("anthropic", servers, tmp_path, Fault.status(400, message=said))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)]
    assert said in (routed.record.attempts[0].detail or "")
    assert cooling > 4  # cooldown.max_seconds (5)


async def test_an_anthropic_error_keeps_its_request_id(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """The API's error bodies carry the failed request's id (``"request_id": "req_011C…"``, as every claude-code
    report above quotes it), which Anthropic's support asks for. The attempt's detail dropped it; it is kept."""
    routed, _ = await route_cooling("anthropic", servers, tmp_path, Fault.status(500), Fault.status(500))
    assert "(request_id req_" in (routed.record.attempts[0].detail or "")


# -- Ollama: no room for the model, in each runner's words ------------------------------------------------------------

NO_ROOM = [
    # the new engine (0.11 – 0.2x): llm/server.go before 9db4bdbad; ollama#15517 (0.20.5)
    "memory layout cannot be allocated",
    "memory layout cannot be allocated with num_gpu = 999",
    # the llama.cpp runner loading a model larger than the machine (ollama#5958, #5941)
    "llama runner process has terminated: error loading model: unable to allocate backend buffer",
    # the llama-server runner (0.30, May 2026): llm/llama_server.go, server/sched.go at fb30760
    "llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory",
    "unable to load full model on GPU",
    # a model newer than the server: 0.30.5 (ollama#16547, meta-llama/llama-models#496), and before (ollama#14499)
    "llama-server process has terminated: exit status 1: error loading model: unknown model architecture: 'mllama'",
    "unable to load model: /root/.ollama/models/blobs/sha256-499c2c0a0394da8c0c7c22a93850d75e743579f1320d4d05",
]
#: of those, the host without memory for the model now (the first five): overloaded and rested since the twelfth hunt
#: (test_wire_shapes_round12.py), not a model missing
NO_MEMORY_NOW = frozenset(NO_ROOM[:5])


@pytest.mark.parametrize("kind", ["ollama", "openai"])
@pytest.mark.parametrize("said", NO_ROOM)
async def test_ollama_without_room_for_the_model_in_each_runners_words(said: str, kind: str,
                                                                       servers: dict[str, Any],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """Ollama's 500 for a model the machine cannot load was recognised in one wording only, "model requires more
    system memory"; its later runners say it otherwise, and each was a server_error: asked again at once (the same
    refusal) and on every request until the breaker opened for seconds. On /api/chat and on its /v1 (the
    OpenAI-compatible provider) alike, the model now cools as for one the server does not have — or, for a host with
    no memory for it now, rests as an overloaded one (round 12)."""
    body = json.dumps({"error": said} if kind == "ollama" else {"error": {"message": said, "type": "api_error"}})
    routed, cooling = await route_cooling(kind, servers, tmp_path, Fault.raw(500, body, headers=JSON))
    reason = "overloaded" if said in NO_MEMORY_NOW else "model_missing"
    assert outcomes(routed) == [("primary", "fallback", reason), ("backup", "ok", None)]
    assert said in (routed.record.attempts[0].detail or "")
    assert cooling > 4


@pytest.mark.parametrize(("kind", "status", "body"), [
    # routes.go's capability check at fb30760 (ChatHandler): a 400 on /api/chat
    ("ollama", 400, {"error": '"embeddinggemma:latest" does not support chat'}),
    # before 0.2: "embedding models do not support chat" (ollama#2778; chat-ollama#67 met it as a 500)
    ("ollama", 500, {"error": "embedding models do not support chat"}),
    # through Ollama's /v1 (middleware/openai.go wraps the words as an OpenAI error)
    ("openai", 400, {"error": {"message": '"embeddinggemma:latest" does not support chat',
                               "type": "invalid_request_error", "param": None, "code": None}}),
])
async def test_an_embedding_model_in_a_chain_is_not_asked_again(kind: str, status: int, body: dict[str, Any],
                                                                servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """An embedding model named in a chain (the user pulled ``embeddinggemma`` and listed it; openhuman#3360 met it
    in the field) can never answer a chat: as a bad_request it was asked, and refused, on every request and never
    cooled (a 500 was even retried). It is the config's mistake, as a model not there is: model_missing, with what
    to do. It does not cool: the model serves embeddings well, and a cooldown skipped those too (README
    "Embeddings"); the chat is not asked of it again (tests/gateway/test_embeddings_rag.py)."""
    routed, cooling = await route_cooling(kind, servers, tmp_path, Fault.raw(status, json.dumps(body), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "model_missing"), ("backup", "ok", None)]
    assert "embedding model" in (routed.record.attempts[0].detail or "")
    assert cooling == 0


async def test_ollama_cloud_model_on_a_server_not_signed_in_says_what_to_do(servers: dict[str, Any],  # noqa: F811
                                                                            tmp_path: Path) -> None:
    """A cloud model on a server not signed in to ollama.com: 401 ``{"error": "unauthorized", "signin_url": …}``
    (routes.go's ChatHandler at fb30760). "auth_error: HTTP 401: unauthorized" from a local server that takes no key
    left users looking for one (continue#11404, #11082); the detail now says to run ``ollama signin``, and the URL,
    which carries the host's key, is not repeated."""
    url = "https://ollama.com/connect?name=box&key=c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUtleQ"
    routed, cooling = await route_cooling("ollama", servers, tmp_path, Fault.raw(
        401, json.dumps({"error": "unauthorized", "signin_url": url}), headers=JSON))
    first = routed.record.attempts[0]
    assert (first.reason, first.outcome) == ("auth_error", "fallback") and cooling > 4
    assert "ollama signin" in (first.detail or "") and "c3NoLWVk" not in (first.detail or "")


# -- Ollama: a cloud model's spent allowance --------------------------------------------------------------------------

@pytest.mark.parametrize("said", [
    "you've reached your hourly usage limit, please wait or upgrade to continue",  # continue#9233
    "you (ae2055838) have reached your session usage limit, upgrade for higher limits: https://ollama.com/upgrade",
    "you've reached your weekly usage limit, please wait or upgrade to continue",  # Scylla#346
])
async def test_ollama_cloud_allowance_spent_cools_the_model(said: str, servers: dict[str, Any],  # noqa: F811
                                                            tmp_path: Path) -> None:
    """Ollama's cloud models (``glm-5:cloud``, ``gpt-oss:120b-cloud``) answer a spent allowance with a 429 and no
    retry-after (continue#9233, #11444). As a rate limit with no wait it was retried after a backoff and asked again
    every few seconds, refused each time; it lasts the hour, the session or the week: it cools as an account that
    cannot pay does. A 429 without those words stays a rate limit."""
    routed, cooling = await route_cooling("ollama", servers, tmp_path, Fault.status(429, message=said))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)]
    assert cooling > 4
    plain, _ = await route_cooling("ollama", servers, tmp_path / "plain",
                                   Fault.status(429, message="too many requests"))
    assert outcomes(plain)[0] == ("primary", "retry", "rate_limited")


@pytest.mark.parametrize(("status", "said", "reason"), [
    (500, NO_ROOM[3], "overloaded"),
    (500, NO_ROOM[5], "model_missing"),
    (404, "model 'qwen3.5:latest' not found, try pulling it first", "model_missing"),
])
async def test_ollama_warm_up_says_why_it_failed(status: int, said: str, reason: str,
                                                 servers: dict[str, Any]) -> None:  # noqa: F811
    """A warm-up (``modelyard warm``, serve's keep-warm) Ollama refused said "server_error: warm-up failed: HTTP
    500" whatever Ollama said: a model the machine has no room for and one never pulled read alike, neither with
    what to do. Now with Ollama's words and the reason they mean, as a request would be."""
    from modelyard.ops.warmup import warm_one
    from modelyard.providers.ollama import OllamaProvider

    servers["ollama"].push(Fault.raw(status, json.dumps({"error": said}), headers=JSON))
    config = make_config({"local": {"provider": "ollama", "model": "qwen3.5:latest",
                                    "endpoint": servers["ollama"].url}}, {"agent": {"primary": "local"}})
    provider = OllamaProvider("local", config.models["local"])
    try:
        result = await warm_one(provider)
    finally:
        await provider.aclose()
    assert not result.ok and result.detail.startswith(f"{reason}: warm-up failed: HTTP {status}: ")
    assert said in result.detail
    # a model the machine has no room for says what to do (it said Ollama's words alone)
    advice = "the server has no memory for it now: stop the models holding it (`ollama ps`"
    assert (advice in result.detail and "`modelyard plan` says what fits" in result.detail) is (reason == "overloaded")


# -- the server's word on asking again --------------------------------------------------------------------------------

@pytest.mark.parametrize(("said", "first"), [("false", "fallback"), ("true", "retry"), (None, "retry")])
async def test_x_should_retry_false_moves_on_at_once(said: str | None, first: str, servers: dict[str, Any],  # noqa: F811
                                                     tmp_path: Path) -> None:
    """``x-should-retry`` is the server's own word on asking again, which the Anthropic SDK obeys before any status
    rule (``_base_client._should_retry``). An Anthropic-compatible proxy that already spent its retries upstream
    sends "false" (free-claude-code, earendil-works/pi#6586), as does another modelyard whose chain is exhausted
    (gateway/exhausted.py); the same 529 was asked again here after a backoff, for the same answer. Now the next
    model is asked at once; the failure still counts against the model, and without the header nothing changes."""
    headers = {"x-should-retry": said} if said else {}
    routed, _ = await route_cooling("anthropic", servers, tmp_path, Fault.status(529, headers=headers),
                                    Fault.status(529, headers=headers))
    assert outcomes(routed)[0] == ("primary", first, "overloaded")
    assert routed.response.text or routed.response.tool_calls
