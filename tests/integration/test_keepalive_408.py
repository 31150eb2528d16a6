"""A ``408 Request Timeout`` on a kept-alive connection the server had let idle past its keep-alive bound is the
server closing a stale connection, not a failing model: asked once more at once on a new connection, no row of it.

The shape (tests/fakes/keepalive_408.py): ntex's 5 s keep-alive answered a reused pooled connection with a 408
(graphql-hive/router#1144); servers that send "408 RequestTimeout … with a Connection: close" to an idle connection
(eclipse-rdf4j/rdf4j#3698); RFC 9110 §15.5.9 lets the client repeat the request (on a new connection,
httpwg/http-core#579) — what browsers do for a 408 on a reused socket.

Before, it was a ``server_error``: retried after a backoff (a row of it, the route saying the model failed), and where
no retry was left (``retries.attempts: 0``, or the retry also taken from the pool's stale connections) the next model
was asked and the failure counted towards the healthy model's cooldown. Both paths: the lean client and aiohttp's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import OpenAIServer
from tests.fakes.fixed_reply import FixedReply, routed_once
from tests.fakes.keepalive_408 import ANSWER, KeepAlive408Server
from tests.helpers import make_config

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

REQUEST = ChatRequest(messages=[Message("user", "Weather?")])


@pytest.fixture
def servers() -> Iterator[tuple[KeepAlive408Server, OpenAIServer]]:
    with KeepAlive408Server(keep_alive=0.3) as stale, OpenAIServer(models=["backup"], reply_text="backup") as backup:
        yield stale, backup


@pytest.mark.parametrize("client", ["lean", "aiohttp"])
@pytest.mark.parametrize("attempts", [0, 1])
async def test_a_408_on_a_stale_kept_alive_connection_is_asked_again_on_a_new_one(
        client: str, attempts: int, servers: tuple[KeepAlive408Server, OpenAIServer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if client == "aiohttp":
        monkeypatch.setenv("MODELYARD_HTTP_CLIENT", "aiohttp")
    stale, backup = servers
    config = make_config(
        {"primary": {"provider": "openai", "model": "local", "endpoint": stale.url},
         "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 2, "connect": 1, "first_token": 2, "idle": 2, "total": 10},
                  "retries": {"attempts": attempts, "backoff": 0.01, "max_wait": 1.5},
                  "cooldown": {"failures": 1, "seconds": 30, "max_seconds": 30}})
    writer = LogWriter(tmp_path / "log.db", local_models=["primary", "backup"])
    router = Router(config, sink=writer.submit)
    try:
        first = await router.complete("agent", REQUEST)
        await asyncio.sleep(0.6)  # past the server's keep-alive (0.3 s), within the pool's own idle bound (4 s)
        second = await router.complete("agent", REQUEST)
        third = await router.complete("agent", REQUEST)  # the model was not cooled
    finally:
        await router.aclose()
        writer.close()
    assert stale.timed_out == 1, "the second request went out on the stale connection and got its 408"
    for routed in (first, second, third):
        assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [("primary", "ok", None)]
        assert routed.response.text == ANSWER
    assert backup.requests == []
    rows = connect(tmp_path / "log.db").execute("SELECT outcome FROM requests").fetchall()
    assert [r[0] for r in rows] == ["ok", "ok", "ok"]


async def test_a_408_that_keeps_the_connection_is_the_servers_word() -> None:
    """LiteLLM's proxy answers its upstream's timeout with a 408 on a kept-alive connection (its JSON error, ``"code":
    408``, BerriAI/litellm#3279): the model timed out there, so it is not asked again at once — a ``server_error``
    as before (here with no retries: the next model)."""
    said = json.dumps({"error": {"message": "litellm.Timeout: APITimeoutError - Request timed out.", "type": None,
                                 "param": None, "code": 408}}).encode()
    reply = FixedReply(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                       % len(said) + said)
    routed = await routed_once(reply, {"retries": {"attempts": 0}})
    assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [
        ("primary", "fallback", "server_error"), ("backup", "ok", None)]
    assert "Request timed out" in routed.record.attempts[0].detail
    assert reply.asked == 1
