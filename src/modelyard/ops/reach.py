"""Is anything listening where each model is served? One TCP connect per distinct server, all at once,
bounded as a whole, so ``models`` answers in about a second even when a host drops packets or its
name does not resolve.

A connect says a server is there, not that it has the model or will answer well: that is ``probe``'s
job. Threads, not asyncio: a name lookup cannot be cancelled, and a daemon thread left behind by a
slow resolver never holds the command's exit, where an event loop's executor would wait for it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping

from modelyard.providers import Provider

#: the whole check's bound (seconds), however many servers
BUDGET = 1.0


def _connect(address: tuple[str, int], timeout: float, out: dict[tuple[str, int], str]) -> None:
    try:
        with socket.create_connection(address, timeout=timeout):
            out[address] = ""
    except TimeoutError:
        out[address] = f"no answer from {address[0]}:{address[1]} within {timeout:g}s"
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        out[address] = f"nothing listening on {address[0]}:{address[1]} ({why})"


def unreachable(providers: Mapping[str, Provider], budget: float = BUDGET) -> dict[str, str]:
    """model → why its server cannot be reached, for the models whose server did not accept a
    connection within ``budget`` seconds (models served in-process are not checked)."""
    addresses = {name: addr for name, p in providers.items() if (addr := p.address()) is not None}
    found: dict[tuple[str, int], str] = {}
    threads = [threading.Thread(target=_connect, args=(addr, budget, found), daemon=True,
                                name=f"reach {addr[0]}:{addr[1]}") for addr in set(addresses.values())]
    deadline = time.monotonic() + budget
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    out = {}
    for name, addr in addresses.items():
        why = found.get(addr)
        if why is None:
            why = f"no answer from {addr[0]}:{addr[1]} within {budget:g}s"
        if why:
            out[name] = why
    return out
