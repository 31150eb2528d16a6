"""Whether a server's host is this machine: ``plan`` counts only this machine's models, and a server's own settings
(Ollama's environment) can be read only here."""

from __future__ import annotations

import ipaddress
import socket


def on_this_machine(host: str) -> bool:
    """``host`` names this machine: loopback, its hostname, or one of its interfaces' addresses. A name that does
    not resolve counts as this machine (as before: counted, rather than silently left out)."""
    if host == "localhost" or host.endswith(".localhost") or host == socket.gethostname():
        return True
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return True
    import psutil

    own = {a.address.split("%")[0] for nics in psutil.net_if_addrs().values() for a in nics}
    return any(ipaddress.ip_address(a.split("%")[0]).is_loopback or a.split("%")[0] in own for a in addresses)
