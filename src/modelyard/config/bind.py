"""The address ``serve`` listens on (``gateway.host``, ``--host``), as people copy it from a URL or a server's setting.

``OLLAMA_HOST=0.0.0.0:11434`` and a client's base URL carry a port or a scheme; an address like that reached the
bind check as a *name*, so ``http://127.0.0.1`` was refused as "beyond loopback" (asking for API keys), and with keys
uvicorn failed after announcing the URL ("Name or service not known"). An IPv6 address in a URL's brackets,
``[::1]``, can be read one way only and is read as ``::1``.
"""

from __future__ import annotations

from urllib.parse import urlsplit


class NotABindAddress(ValueError):
    """An address to listen on written with a scheme or a port: the message says what to write instead."""


def bind_host(value: str, *, host_key: str = "host: ", port_key: str = "port: ") -> str:
    """``value`` as an address to bind: ``[::1]`` → ``::1``; a URL or ``host:port`` raises :class:`NotABindAddress`
    naming the address and the port to write (``host_key`` / ``port_key``: how the caller's setting is written —
    ``host: `` in the config, ``--host `` on the command line)."""
    text = value.strip()
    has_scheme = "://" in text
    bare_v6 = text.count(":") > 1 and not text.startswith("[")  # ::1, fe80::1: colons of the address, no port
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1]
    if not has_scheme and (bare_v6 or ":" not in text):
        return text
    try:
        parts = urlsplit(text if has_scheme else f"//{text}")
        address, port = parts.hostname, parts.port
    except ValueError:  # a port that is no number
        address, port = None, None
    if not address:
        raise NotABindAddress(f"'{value}' is no address to listen on: write {host_key}127.0.0.1 (this machine only) "
                              f"or {host_key}0.0.0.0 (every interface)")
    what = "a URL" if has_scheme else "an address with its port"
    write = f"{host_key}{address}" + (f" and {port_key}{port}" if port else "")
    scheme = " (the gateway speaks http)" if has_scheme else ""
    raise NotABindAddress(f"'{value}' is {what}: the address to listen on goes alone — write {write}{scheme}")
