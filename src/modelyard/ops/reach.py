"""Is anything listening where each model is served? One TCP connect per distinct server, all at once,
bounded as a whole, so ``models`` answers in about a second even when a host drops packets or its
name does not resolve.

A connect says a server is there, not that it has the model or will answer well: that is ``probe``'s
job. Threads, not asyncio: a name lookup cannot be cancelled, and a daemon thread left behind by a
slow resolver never holds the command's exit, where an event loop's executor would wait for it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from modelyard.errors import not_resolved
from modelyard.providers import Provider

#: the whole check's bound (seconds), however many servers
BUDGET = 1.0


#: the loopback addresses of the other IP version, by how an endpoint names this machine
_OTHER_LOOPBACK = {"127.0.0.1": "::1", "::1": "127.0.0.1", "[::1]": "127.0.0.1"}


def _other_loopback(host: str, port: int, timeout: float) -> str:
    """Where on the other IP version's loopback a server accepts ``port`` when ``host``'s refused, or "": a server
    bound to ``::1`` alone (Node's servers resolve `localhost` to it) is nothing at 127.0.0.1, and one bound to
    127.0.0.1 alone is nothing at ``[::1]`` — the localhost/IPv6 mix-up peers' users report with Ollama
    (stackblitz-labs/bolt.diy#877, SamSaffron/term-llm#445, n8n-io/n8n-docs#2749)."""
    other = _OTHER_LOOPBACK.get(host)
    try:
        if host == "localhost":  # a name: the version it did not resolve to here
            resolved = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
            other = next((o for o in ("::1", "127.0.0.1") if o not in resolved), None)
        if other is None:
            return ""
        with socket.create_connection((other, port), timeout=timeout):
            return _shown(other, port)
    except OSError:
        return ""


def _shown(host: str, port: int) -> str:
    """``host:port`` as a URL writes it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _connect(address: tuple[str, int], timeout: float, out: dict[tuple[str, int], str]) -> None:
    try:
        with socket.create_connection(address, timeout=timeout):
            out[address] = ""
    except TimeoutError:
        out[address] = f"no answer from {_shown(*address)} within {timeout:g}s" + _proxy_note()
    except socket.gaierror as exc:  # it said "nothing listening on api.anthropic.com:443", as if the server were down
        out[address] = not_resolved(address[0], exc) + _proxy_note()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        out[address] = f"nothing listening on {_shown(*address)} ({why})"
        if isinstance(exc, ConnectionRefusedError) and (there := _other_loopback(*address, timeout)):
            out[address] += (f", but a server listens on {there}, this machine's other loopback address: write the "
                             f"endpoint with {there.rsplit(':', 1)[0]}, or have the server listen on both")
        elif address[0] in _EVERY_INTERFACE:
            out[address] += (f"; {address[0]} is where a server listens (every interface), not an address to connect "
                             "to: write the server's own address in the endpoint — 127.0.0.1 on this machine, the "
                             "host's name or IP address for another")


#: the variables that send other programs' HTTPS through a proxy (curl, the SDKs, Claude Code read them)
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _proxy_note() -> str:
    """Where the network is reached through a proxy only (a company's), a direct connect finds no name or no answer
    while curl and the SDKs get through. An endpoint the environment sends through the proxy is checked at the proxy
    (providers/http.py ``env_proxy``), so a failed direct connect here went direct: say why the proxy was not used."""
    named = next((v for v in _PROXY_VARIABLES if os.environ.get(v)), None)
    return (f"; {named} is set, but this endpoint is called directly, as curl would call it: HTTPS_PROXY carries "
            "https:// endpoints, HTTP_PROXY http:// ones, ALL_PROXY both; NO_PROXY and loopback addresses go direct"
            if named else "")


#: the addresses a server is told to listen on to take every interface (`OLLAMA_HOST=0.0.0.0`), which endpoints
#: copied from a server's settings carry: a connect there reaches this machine on Linux and macOS, nothing on
#: Windows, and never the other host the endpoint was meant for (ollama/ollama#2132, ggozad/oterm#80)
_EVERY_INTERFACE = frozenset({"0.0.0.0", "::", "[::]"})


def _port_left_out(provider: Provider, address: tuple[str, int]) -> str:
    """An ``http://`` endpoint written without its port is asked at 80, as a browser, curl and Ollama's own client
    (envconfig.getOllamaHost: 80 after an explicit ``http://``) ask it; a model server listens elsewhere (Ollama
    11434, llama-server 8080), so "nothing listening on gpu-box:80" is said with the port this provider's servers
    use and the line to write. Empty when the endpoint names its port, or the provider has no usual one."""
    endpoint, usual = getattr(provider, "endpoint", ""), getattr(provider, "default_endpoint", "")
    try:
        given, default = urlsplit(endpoint), urlsplit(usual)
        if given.scheme != "http" or given.port is not None or default.port in (None, 80) or not given.hostname:
            return ""
    except ValueError:
        return ""
    if address != (given.hostname, 80):  # asked through a proxy: its own port is the one said
        return ""
    host = f"[{given.hostname}]" if ":" in given.hostname else given.hostname
    return (f"; the endpoint names no port, so http's 80 was asked — {provider.config.provider} servers listen on "
            f"{default.port} unless told otherwise: write endpoint: http://{host}:{default.port}{given.path}")


def connects(addresses: Iterable[tuple[str, int]], budget: float = BUDGET) -> dict[tuple[str, int], str]:
    """(host, port) → why nothing accepted a connection there ("" where something did), all at once within
    ``budget`` seconds; an address still waiting then is left out."""
    found: dict[tuple[str, int], str] = {}
    threads = [threading.Thread(target=_connect, args=(addr, budget, found), daemon=True,
                                name=f"reach {addr[0]}:{addr[1]}") for addr in set(addresses)]
    deadline = time.monotonic() + budget
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return dict(found)


def unreachable(providers: Mapping[str, Provider], budget: float = BUDGET) -> dict[str, str]:
    """model → why its server cannot be reached, for the models whose server did not accept a
    connection within ``budget`` seconds (models served in-process are not checked)."""
    addresses = {name: addr for name, p in providers.items() if (addr := p.address()) is not None}
    found = connects(addresses.values(), budget)
    out = {}
    for name, addr in addresses.items():
        why = found.get(addr)
        if why is None:
            why = f"no answer from {_shown(*addr)} within {budget:g}s"
        if why:
            out[name] = why + ("" if why.startswith("the name ") else _port_left_out(providers[name], addr)
                               + (providers[name].not_running(addr) if "Connection refused" in why else ""))
    return out

