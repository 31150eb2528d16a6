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
(CVE-2024-28224) with the same check. Behind a reverse proxy or a tunnel that passes on its public name (Caddy, nginx's
``proxy_set_header Host $host``, Traefik, ``tailscale serve``, a Cloudflare tunnel) that check refused every request;
Ollama's users met it so (ollama/ollama #3269: ngrok, zrok, Cloudflare Tunnel, Tailscale serve) and were told to
rewrite the Host header at the proxy. Here the config names them instead: ``gateway.allowed_hosts`` (``gw.example.com``,
``*.ts.net``) — names whose DNS the user holds, which no page elsewhere can point at this machine. A page served under a
name listed whole may call too (a chat UI beside the gateway behind the same proxy); a ``*.`` entry allows requests, not
pages (another subdomain of a shared domain may be anyone's).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
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


def screen(scope: Scope, headers: dict[bytes, bytes], keyed: bool, hosts: HostVerdicts) -> Response | str | None:
    """A browser's request (``headers``: its head's as a dict): the response that ends it (a refusal, or a
    preflight's answer), or the page's origin to allow on the answer; None: no browser's page (or nothing to add).
    ``keyed``: the gateway asks for a key; ``hosts``: the app's verdicts on the Host headers seen so far (a request
    pays a lookup, not a parse)."""
    if not keyed and not hosts[headers.get(b"host", b"")]:
        return _refused(f"a request addressed to {headers[b'host'].decode('latin-1')!r}, no name of this machine, "
                        "may not call this gateway", proxied=True)
    raw = headers.get(b"origin")
    if raw is None:
        return None
    origin = raw.decode("latin-1")
    if not keyed and not (_page_here(origin) or hosts.names_page(origin)):
        return _refused(f"a web page from {origin} may not call this gateway")
    if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
        return preflight(headers, origin)
    return origin


_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


class HostVerdicts(dict[bytes, bool]):
    """``Host`` headers seen, and whether each may call a keyless gateway: a name of this machine, or one the config
    allows (``gateway.allowed_hosts``) — judged on first sight, then a dict lookup per request."""

    def __init__(self, allowed: Iterable[str] = ()):
        super().__init__()
        self.exact = frozenset(name for name in allowed if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in allowed if name.startswith("*."))  # "*.ts.net" -> ".ts.net"

    def names_page(self, origin: str) -> bool:
        """A page served under a name listed whole (a UI beside the gateway behind the same proxy). Not under a
        ``*.`` entry: anyone may have a page on another subdomain of a shared domain (``*.trycloudflare.com``)."""
        try:
            host = urlsplit(origin).hostname
        except ValueError:
            return False
        return host is not None and host.rstrip(".") in self.exact

    def __missing__(self, host: bytes) -> bool:
        if len(self) >= 256:  # a client sending ever new names: the memo stays small
            self.clear()
        name = host_name(host)
        verdict = self[host] = local_name(name) or name in self.exact or name.endswith(self.suffixes)
        return verdict


def host_name(host: bytes) -> str:
    """The name a ``Host`` header carries, lower-cased, without its port, brackets or final dot."""
    text = host.decode("latin-1").strip().lower()
    name = text[1:text.find("]")] if text.startswith("[") else text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return name.rstrip(".")


def local_name(name: str) -> bool:
    """Does a ``Host`` header's name name this machine — not a public name a page's owner can point here (DNS
    rebinding)?"""
    try:
        ipaddress.ip_address(name)
        return True  # an address is never a rebinding name
    except ValueError:
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


def _refused(what: str, *, proxied: bool = False) -> Response:
    proxy = ("; behind a reverse proxy or a tunnel that passes on this name, list the name in gateway.allowed_hosts "
             "(or have the proxy send Host: localhost)") if proxied else ""
    return error_response(403, f"{what}: it asks for no API key, so only this machine (localhost) may; to let others "
                          f"call it, give it keys (gateway.api_keys_env) and them one{proxy}",
                          code="origin_not_allowed")


def exposing(send: Send, origin: str) -> Send:
    """``send`` with the page's origin allowed on the answer (and the routing headers readable by it)."""
    value = origin.encode("latin-1")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (b"access-control-allow-origin", value),
                                  (b"access-control-expose-headers", _EXPOSED), (b"vary", b"origin")]
        await send(message)

    return wrapped
