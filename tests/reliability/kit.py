"""Shared pieces of the reliability suite: fake backends, a gateway config with tight bounds, and
read-only views of the routing log.

Timeouts are short on purpose: every hang in the suite is ended by one of these bounds, so a
fault costs well under a second and the whole short profile stays inside CI's budget.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.helpers import make_config

from modelyard.config import Config
from modelyard.gateway.embeddings_wire import MAX_DIMENSIONS
from modelyard.ledger import connect

ANTHROPIC_KEY = "sk-ant-api03-reliability-SECRET-0123456789abcdefABCDEF"
ANTHROPIC_ENV = "RELIABILITY_ANTHROPIC_KEY"

#: per-attempt bounds of the fault tests (seconds)
TIGHT = {"queue": 0.5, "connect": 1.0, "first_token": 0.5, "idle": 0.3, "total": 8.0}


def _peer_closed(sock: Any) -> bool:
    """The client's FIN or RST is already in this connection's socket, whatever this server's loop has noticed yet
    (a peek at the kernel's receive queue: b"" is its end of stream)."""
    fd = sock.fileno()
    if fd < 0:  # the server has closed it already
        return True
    peek = socket.socket(fileno=os.dup(fd))
    try:
        return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:  # open, nothing to read
        return False
    except OSError:  # reset
        return True
    finally:
        peek.close()


class _HangupAware:
    """Counts a request in flight until it finishes *or its client has closed the connection*, whichever is first.

    The stock fakes count until their handler returns, which happens a few event-loop turns after the disconnect;
    meanwhile the router (having closed that connection and released the slot) may already have opened the next one,
    and the backend would count one request too many. So when a request comes in, every request still counted whose
    connection already has its client's end of stream in the kernel (the router closed it before sending this one)
    is counted out first — by the socket's state, not after a settle delay (20 ms was one: on 2 cores at load ~11 the
    loop had not read an EOF sent before the next request within it, and 'fast' counted 3 of its 2). A router that
    sent the next request before closing the last one is still counted as overlapping it. The router's own slot peak
    is asserted exactly alongside.
    """

    def tracked(self, app: ASGIApp, model: str | None = None) -> ASGIApp:
        counted: dict[int, tuple[Any, Callable[[], None]]] = self.__dict__.setdefault("_counted", {})
        key = id(app)
        entered = False
        left = False

        def leave() -> None:
            nonlocal left
            if entered and not left:
                left = True
                counted.pop(key, None)
                self._leave(model)  # type: ignore[attr-defined]

        async def run(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal entered
            for sock, other_leave in list(counted.values()):
                if sock is not None and _peer_closed(sock):
                    other_leave()
            entered = True
            self._enter(model)  # type: ignore[attr-defined]
            counted[key] = (self._socket_of(scope), leave)

            async def watched() -> Message:
                message = await receive()
                if message["type"] == "http.disconnect":
                    leave()
                return message

            try:
                await app(scope, watched, send)
            finally:
                leave()

        return run

    def _socket_of(self, scope: Scope) -> Any:
        """This request's connection's socket, found by the client's address among the server's connections."""
        client = tuple(scope.get("client") or ())
        server = self._uvicorn  # type: ignore[attr-defined]
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and getattr(connection, "client", None) == client:
                return transport.get_extra_info("socket")
        return None


class FakeOpenAI(_HangupAware, OpenAIServer):
    pass


class FakeOllama(_HangupAware, OllamaServer):
    pass


class FakeAnthropic(_HangupAware, AnthropicServer):
    pass


@contextlib.contextmanager
def backends(chunk_interval: float = 0.0) -> Iterator[tuple[FakeOpenAI, FakeOllama, FakeAnthropic]]:
    """Three fakes speaking OpenAI, Ollama and Anthropic on loopback."""
    # vectors as wide as a client may ask for (``dimensions``): a schema-valid request must be answerable
    with FakeOpenAI(models=["fast-model"], reply_text="Hello from fast.", chunk_interval=chunk_interval,
                    embedding_dims=MAX_DIMENSIONS) as oa, \
            FakeOllama(models=["backup-model"], reply_text="Hello from backup.",
                       chunk_interval=chunk_interval, embedding_dims=MAX_DIMENSIONS) as ol, \
            FakeAnthropic(api_key=ANTHROPIC_KEY, models=["claude-test"], reply_text="Hello from cloud.",
                            chunk_interval=chunk_interval) as an:
        yield oa, ol, an


def models_for(oa_url: str, ol_url: str, an_url: str, *, fast_slots: int = 2, backup_slots: int = 2,
               cloud_slots: int = 2) -> dict[str, dict[str, Any]]:
    return {
        "fast": {"provider": "openai", "endpoint": oa_url, "model": "fast-model", "max_concurrent": fast_slots},
        "backup": {"provider": "ollama", "endpoint": ol_url, "model": "backup-model", "max_concurrent": backup_slots},
        "cloud": {"provider": "anthropic", "endpoint": an_url, "model": "claude-test", "api_key_env": ANTHROPIC_ENV,
                  "max_concurrent": cloud_slots, "price": {"input": 1.0, "output": 5.0}},
    }


def gateway_config(tmp_path: Path, oa_url: str, ol_url: str, an_url: str, *, timeouts: dict[str, float] | None = None,
                   cooldown: dict[str, float] | None = None, slots: dict[str, int] | None = None,
                   model_overrides: dict[str, dict[str, Any]] | None = None, **extra: Any) -> Config:
    """Agents: ``coder`` fast→backup, ``writer`` cloud→fast, ``chain`` fast→backup→cloud, ``solo`` fast only."""
    models = models_for(oa_url, ol_url, an_url, **(slots or {}))
    for name, override in (model_overrides or {}).items():
        models[name].update(override)
    agents = {
        "coder": {"primary": "fast", "fallbacks": ["backup"]},
        "writer": {"primary": "cloud", "fallbacks": ["fast"]},
        "chain": {"primary": "fast", "fallbacks": ["backup", "cloud"]},
        "solo": {"primary": "fast"},
    }
    defaults = {"timeouts": timeouts or TIGHT, "retries": {"attempts": 0},
                "cooldown": cooldown or {"failures": 50, "seconds": 30}}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")}, **extra)


@contextlib.contextmanager
def fuzz_gateway(directory: Path) -> Iterator[Any]:
    """A gateway over healthy fake backends (the Anthropic key set), for the fuzzers."""
    import pytest
    from tests.gateway.harness import GatewayServer

    mp = pytest.MonkeyPatch()
    mp.setenv(ANTHROPIC_ENV, ANTHROPIC_KEY)
    try:
        with backends() as (oa, ol, an), GatewayServer(gateway_config(directory, oa.url, ol.url, an.url)) as gw:
            yield gw
    finally:
        mp.undo()


def read_db(path: Path) -> sqlite3.Connection:
    return connect(path, readonly=True)


def attempts_of(path: Path, request_id: str) -> list[tuple[str, str, str | None]]:
    conn = read_db(path)
    try:
        rows = conn.execute("SELECT model, outcome, reason FROM attempts WHERE request_id = ? ORDER BY seq",
                            (request_id,)).fetchall()
        return [(r["model"], r["outcome"], r["reason"]) for r in rows]
    finally:
        conn.close()


def count_rows(path: Path, where: str = "1", params: tuple = ()) -> int:
    conn = read_db(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM requests WHERE {where}", params).fetchone()[0]
    finally:
        conn.close()


#: "no model could answer": status -> error code (gateway/exhausted.py; only 503 invites a retry)
EXHAUSTED = {400: "rejected_by_models", 424: "no_model_available", 502: "unusable_answer", 503: "chain_exhausted",
             504: "deadline_exceeded"}


def is_openai_error(payload: Any) -> bool:
    """``{"error": {"message": str, "type": str, ...}}`` with a non-empty message."""
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return False
    err = payload["error"]
    return isinstance(err.get("message"), str) and bool(err["message"]) and isinstance(err.get("type"), str)
