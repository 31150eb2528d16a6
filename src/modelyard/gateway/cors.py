"""Browsers: CORS for web UIs that call the gateway from a page, and no web page elsewhere driving a keyless gateway.

A chat UI running in a browser (Open WebUI's "direct connections", BetterChatGPT, NextChat, Obsidian's plugins) calls
``/v1/chat/completions`` from its page: the browser first asks ``OPTIONS`` (a preflight, for the ``Authorization`` and
``Content-Type: application/json`` headers) and reads the answer only if it names the page's origin. Without this the
preflight was a 405 and the UI said only "CORS error" (what users of other servers reported: huggingface/transformers
#39932 "transformers serve doesn't handle OPTIONS" with Open WebUI, openvinotoolkit/model_server #3417, lm-sys/RouteLLM
#43, bricks-cloud/BricksLLM #45 with BetterChatGPT, Trans-N-ai/swama #87 with Obsidian Companion; ollama/ollama #4001:
the preflight must allow ``Authorization``).

Which pages may: a gateway that asks for a key lets any origin ask (the key is the gate, as on OpenAI's own API); one
that asks for none (loopback) lets pages on this machine (``localhost``, ``127.0.0.1``, ``[::1]``, the gateway's own
origin), and apps and extensions (``app://``, ``file://``, ``tauri://``, ``vscode-webview://``, ``chrome-extension://``…:
no web site has such an origin), as Ollama does by default (``OLLAMA_ORIGINS``). A page from any other web site is
refused with a 403 before anything runs — a form or a ``text/plain`` fetch needs no preflight, so without the check any
site the user visited could have spent the gateway's paid models through it. Clients that are not browsers send no
``Origin`` and are not affected (one dict lookup per request).

A keyless gateway also answers only requests addressed to this machine (``Host``: an IP address, ``localhost``, a name
without a dot, ``*.local``/``*.localhost``/``*.internal``…): a page of ``evil.example`` whose name the attacker then
points at 127.0.0.1 (DNS rebinding) is "same-origin" with the gateway — its browser sends no preflight, and for a GET no
``Origin`` — and could read ``/api/log`` (prompts, with ``log.store_text``) or spend models; Ollama closed the same hole
(CVE-2024-28224) with the same check.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import Message, Scope, Send

from modelyard.gateway.auth import is_loopback
from modelyard.gateway.responses import error_response

#: what a page may read of an answer beyond the basic headers: who answered, and when to try again
_EXPOSED = (b"x-modelyard-request-id, x-modelyard-agent, x-modelyard-model, x-modelyard-route, retry-after")
_METHODS = b"GET, POST, OPTIONS"
#: how long a browser may reuse a preflight's answer (Chrome caps it at 7,200 s)
_MAX_AGE = b"600"


def screen(scope: Scope, keyed: bool, hosts: dict[bytes, bool]) -> Response | str | None:
    """A browser's request: the response that ends it (a refusal, or a preflight's answer), or the page's origin to
    allow on the answer; None: no browser's page (or nothing to add). ``keyed``: the gateway asks for a key;
    ``hosts``: the app's verdicts on the Host headers seen so far (a request pays a lookup, not a parse)."""
    headers = dict(scope["headers"])
    if not keyed and not _known(hosts, headers.get(b"host", b"")):
        return _refused(f"a request addressed to {headers[b'host'].decode('latin-1')!r}, no name of this machine, "
                        "may not call this gateway")
    raw = headers.get(b"origin")
    if raw is None:
        return None
    origin = raw.decode("latin-1")
    if not keyed and not _page_here(origin):
        return _refused(f"a web page from {origin} may not call this gateway")
    if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
        return preflight(headers, origin)
    return origin


_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _known(hosts: dict[bytes, bool], host: bytes) -> bool:
    verdict = hosts.get(host)
    if verdict is None:
        if len(hosts) >= 256:  # a client sending ever new names: the memo stays small
            hosts.clear()
        verdict = hosts[host] = local_host(host)
    return verdict


def local_host(host: bytes) -> bool:
    """Does a ``Host`` header name this machine — not a public name a page's owner can point here (DNS rebinding)?"""
    text = host.decode("latin-1").strip().lower()
    name = text[1:text.find("]")] if text.startswith("[") else text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    try:
        ipaddress.ip_address(name)
        return True  # an address is never a rebinding name
    except ValueError:
        name = name.rstrip(".")
        return "." not in name or name.endswith(_LOCAL_SUFFIXES)


def _page_here(origin: str) -> bool:
    """A page on this machine, or an app's or an extension's (no web site has such an origin)."""
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:  # "http://[" and the like: no origin a browser sends
        return False
    if parts.scheme not in ("http", "https"):  # app://, file://, extensions; "null" (sandboxed or data: pages) is not
        return origin != "null" and bool(parts.scheme)
    return host is not None and is_loopback(host)


def preflight(headers: dict[bytes, bytes], origin: str) -> Response:
    """The answer to a browser's ``OPTIONS``: the methods, and the headers it asked to send (all of them: the SDKs
    add their own, ``x-stainless-*``, ``anthropic-version``, ``anthropic-dangerous-direct-browser-access``)."""
    out = {"access-control-allow-origin": origin, "access-control-allow-methods": _METHODS.decode(),
           "access-control-max-age": _MAX_AGE.decode(), "vary": "origin"}
    if asked := headers.get(b"access-control-request-headers"):
        out["access-control-allow-headers"] = asked.decode("latin-1")
    if headers.get(b"access-control-request-private-network") == b"true":  # Chrome: a public page to this machine
        out["access-control-allow-private-network"] = "true"
    return Response(status_code=204, headers=out)


def _refused(what: str) -> Response:
    return error_response(403, f"{what}: it asks for no API key, so only this machine (localhost) may; to let others "
                          "call it, give it keys (gateway.api_keys_env) and them one", code="origin_not_allowed")


def exposing(send: Send, origin: str) -> Send:
    """``send`` with the page's origin allowed on the answer (and the routing headers readable by it)."""
    value = origin.encode("latin-1")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (b"access-control-allow-origin", value),
                                  (b"access-control-expose-headers", _EXPOSED), (b"vary", b"origin")]
        await send(message)

    return wrapped
