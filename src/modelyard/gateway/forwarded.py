"""``X-Forwarded-For`` / ``X-Forwarded-Proto`` from a trusted proxy, applied as uvicorn applies them, but only to the
requests that carry one (issue #15).

uvicorn wraps the app in its ``ProxyHeadersMiddleware``: for every request a Python loop over all its headers, the
trusted-host check and one more coroutine that each suspension of the request passes through — ~145 of a model
answer's ~12,500 bytecodes, for headers a gateway is rarely sent. ``serve`` turns uvicorn's off
(``gateway/server.py: uvicorn_config``) and the app runs that same middleware itself, its inner app a no-op (it only
rewrites the scope's ``client`` and ``scheme``, in place), when a request has either header; the names are looked up
in a dict made in C. What a request behind a trusted proxy ends up with — the access log's client address, the URL's
scheme — is uvicorn's own doing, unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

#: an ASGI callable, in Starlette's types (uvicorn declares its own, narrower ones)
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]

_NAMES = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})


async def _unchanged(scope: Scope, receive: Receive, send: Send) -> None:
    return None


def forwarded(trusted_hosts: list[str] | str) -> ASGI:
    """uvicorn's middleware around nothing: awaiting it on a scope rewrites that scope as uvicorn would."""
    return cast(ASGI, ProxyHeadersMiddleware(cast(Any, _unchanged), trusted_hosts=trusted_hosts))


def carries(headers: dict[bytes, bytes]) -> bool:
    """The request (its headers as a dict) has an ``X-Forwarded-For`` or ``X-Forwarded-Proto`` header."""
    return not _NAMES.isdisjoint(headers)
