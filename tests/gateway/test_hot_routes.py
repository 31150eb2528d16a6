"""The model endpoints skip Starlette's middleware and router (gateway/app.py ``GatewayApp``, issue #15)
and still answer everything else as Starlette would: wrong methods, unknown paths, internal errors."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.app import GatewayApp, _internal_error


async def test_an_exception_in_a_hot_handler_is_the_gateways_500_and_reaches_the_server() -> None:
    async def boom(request: Request) -> Response:
        assert request.app is app
        raise RuntimeError("bug")

    app = GatewayApp(routes=[], exception_handlers={Exception: _internal_error}, hot={"/v1/chat/completions": boom})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        r = await client.post("/v1/chat/completions", json={})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error" and "RuntimeError" in r.json()["error"]["message"]


def test_other_methods_and_paths_still_go_through_starlette(gateway) -> None:
    r = httpx.get(gateway.url + "/v1/chat/completions")
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    r = httpx.post(gateway.url + "/v1/chat/completion", json={})
    assert r.status_code == 404 and "POST /v1/chat/completions" in r.json()["error"]["message"]
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
