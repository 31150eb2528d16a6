"""How every connection to the shared store speaks: RESP2, whatever redis-py's default.

redis-py 8 made RESP3 its default (redis/redis-py#4031): each new connection opens with ``HELLO 3``, and a server or
proxy that has no ``HELLO`` — Redis before 6.0 (``ERR unknown command 'HELLO'``), twemproxy (it closes the connection),
a managed proxy that never implemented it — fails every connection, with no fallback (redis/redis-py#4089). modelyard
pins nothing, so an install that picked up redis-py 8 gave every model no slot against such a store, and said it was
unreachable. Every server and proxy speaks RESP2, and modelyard reads nothing RESP3 alone gives. A ``?protocol=3`` in
the state URL still wins (the URL's options go over these)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from modelyard.config.schema import StateConfig

#: the RESP version of every connection modelyard opens to the shared store
PROTOCOL = 2


def client(settings: StateConfig, **extra: Any) -> Redis:
    """A client of the shared store as every async caller opens one: RESP2, no retries of redis-py's own (the
    caller's outage rules decide) and no health-check PING before a command (one more round trip on the request
    path). No socket timeouts of redis-py's own: every caller bounds its calls and connects with
    :func:`~modelyard.router.shared.bounds.within`, which does not count a stop of the process — redis-py's bound is
    ``asyncio.timeout`` on the wall clock, and a reply waiting in the socket when a stopped process ran again was a
    "Timeout reading from" that took the link down."""
    return Redis.from_url(settings.url, protocol=PROTOCOL, socket_timeout=None, socket_connect_timeout=None,
                          retry=Retry(NoBackoff(), 0), health_check_interval=0, **extra)


def text(value: object, *, errors: str = "strict") -> str:
    """One word of a reply as text: redis-py hands back bytes (no client here decodes responses), a test's or a
    script's value may already be a str or a number. ``errors``: as :meth:`bytes.decode` (``"replace"`` where a
    malformed word is shown, not refused)."""
    return value.decode(errors=errors) if isinstance(value, bytes) else str(value)
