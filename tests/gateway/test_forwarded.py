"""``serve`` applies X-Forwarded-For / X-Forwarded-Proto itself, only to the requests that carry them, instead of
uvicorn's middleware around every request (gateway/forwarded.py, issue #15): what a handler sees must be what
uvicorn's own middleware gives, header for header. Both servers here are real uvicorn servers on loopback: one
configured as ``serve`` configures it (``uvicorn_config``), one with uvicorn's defaults (its middleware on). The
cases follow uvicorn's proxy-headers documentation and its tests (trusted hosts, the last untrusted address of a
chain, a scheme outside http/https/ws/wss ignored)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelyard.gateway.app import GatewayApp
from modelyard.gateway.server import uvicorn_config


def seen(request: Request) -> dict[str, Any]:
    client = request.scope.get("client")
    return {"client": list(client) if client else None, "scheme": request.scope.get("scheme")}


async def hot(request: Request) -> Response:  # a model endpoint's way: past Starlette's stack
    return JSONResponse(seen(request))


async def plain(request: Request) -> Response:  # every other route: through Starlette
    return JSONResponse(seen(request))


def app() -> GatewayApp:
    return GatewayApp(routes=[Route("/plain", plain)], hot={"/v1/chat/completions": hot})


class Running:
    def __init__(self, config: uvicorn.Config):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(config)

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.server.serve(sockets=[sock]))
            finally:
                sock.close()
                loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Running, Running]]:
    ours = Running(uvicorn_config(app(), "127.0.0.1", 0, access_log=False, log_level="warning"))
    theirs = Running(uvicorn.Config(app(), log_level="warning", access_log=False))  # proxy_headers: uvicorn's default
    try:
        yield ours, theirs
    finally:
        ours.stop()
        theirs.stop()


CASES = [
    {},
    {"x-forwarded-for": "203.0.113.7"},
    {"x-forwarded-proto": "https"},
    {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"},
    {"x-forwarded-for": "198.51.100.1, 203.0.113.7, 127.0.0.1"},  # the last address not trusted is the client
    {"x-forwarded-for": "127.0.0.1"},  # only trusted hosts: uvicorn's answer, whatever it is
    {"x-forwarded-proto": "gopher"},  # not a scheme uvicorn takes: ignored
    {"x-forwarded-for": ""},
    {"x-forwarded-for": "[2001:db8::1]:8080"},
]


@pytest.mark.parametrize("headers", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "none" for c in CASES])
def test_a_handler_sees_the_client_and_scheme_uvicorns_middleware_gives(servers: tuple[Running, Running],
                                                                      headers: dict[str, str]) -> None:
    ours, theirs = servers
    for path, method in (("/v1/chat/completions", "POST"), ("/plain", "GET")):
        a = httpx.request(method, ours.url + path, headers=headers).json()
        b = httpx.request(method, theirs.url + path, headers=headers).json()
        # the client's port is the connection's own: the two servers saw two connections
        if a["client"] and b["client"] and a["client"][0] == b["client"][0] == "127.0.0.1":
            a["client"][1] = b["client"][1] = "port"
        assert a == b, (path, headers)


def test_a_trusted_proxys_client_and_scheme_reach_the_handler(servers: tuple[Running, Running]) -> None:
    ours, _ = servers
    got = httpx.post(ours.url + "/v1/chat/completions",
                     headers={"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}).json()
    assert got == {"client": ["203.0.113.7", 0], "scheme": "https"}
    got = httpx.post(ours.url + "/v1/chat/completions").json()
    assert got["client"][0] == "127.0.0.1" and got["scheme"] == "http"
