"""Whether the Redis server may evict modelyard's keys to make room (a Redis that is also a cache).

Every key modelyard writes has a TTL (:data:`.lua.KEY_TTL_MS`), so not only the ``allkeys-*`` policies may take them
under ``maxmemory`` but the ``volatile-*`` ones too: of the policies Redis has — ``noeviction``,
``allkeys-lru``, ``allkeys-lfu``, ``allkeys-random``, ``volatile-lru``, ``volatile-lfu``, ``volatile-random``,
``volatile-ttl`` and, since Redis 8, ``allkeys-lrm`` / ``volatile-lrm``
(https://redis.io/docs/latest/develop/reference/eviction/) — only
``noeviction`` keeps them; with ``maxmemory 0`` (no limit, the default of a 64-bit server) nothing is evicted at all.

What an eviction costs is said with it: the limit holds (a lost holders' set is a loss of data, and no slot is handed
out for a grace while live processes register what they hold again: tests/shared/test_fault_matrix.py), but requests
wait for that grace, and a lost breaker forgets it was open, so requests go back to a failing backend early.

The policy is read with ``CONFIG GET``; a managed Redis often refuses it (renamed or disabled CONFIG, an ACL without
``+config``), so ``INFO memory`` (``maxmemory_policy``, ``maxmemory``) is read instead, and when both are refused the
check says it could not tell.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from modelyard.router.shared.bounds import within

#: the one policy under which Redis never evicts a key (it refuses the write instead: see StoreFault.OOM)
KEEPS_KEYS = "noeviction"


@dataclass(frozen=True, slots=True)
class Eviction:
    """The server's eviction settings as read (``policy`` None: neither CONFIG GET nor INFO could be read)."""

    policy: str | None
    maxmemory: int
    #: why the settings could not be read ('' when they were)
    unread: str = ""
    #: CONFIG GET was refused (INFO answered, or nothing did): not asked again — each refusal of an ACL user is an
    #: entry in the server's ACL LOG, which a process asking every 30 s would fill for the operator
    config_refused: bool = False

    @property
    def may_evict(self) -> bool:
        return self.policy is not None and self.policy != KEEPS_KEYS and self.maxmemory > 0

    def warning(self) -> str:
        """What to say (and do) when this server may evict modelyard's keys; '' when it may not or was not read."""
        if not self.may_evict:
            return ""
        return (f"this Redis may evict modelyard's keys (maxmemory-policy {self.policy}, maxmemory "
                f"{_size(self.maxmemory)}; every modelyard key has a TTL, so volatile-* policies take them too): the "
                "limit holds, but after an eviction no slot is handed out for a grace while the processes register "
                "again, and an evicted breaker forgets it was open — set maxmemory-policy noeviction (CONFIG SET "
                "maxmemory-policy noeviction, and in redis.conf), or give modelyard a Redis instance of its own with "
                "noeviction (another database of the same server shares its maxmemory and policy)")

    def unread_note(self) -> str:
        if not self.unread:
            return ""
        return (f"whether this Redis may evict modelyard's keys is not known ({self.unread}): a managed Redis often "
                "evicts by default (volatile-lru), and every modelyard key has a TTL — make sure its maxmemory-policy "
                "is noeviction")


def _size(n: int) -> str:
    for unit, size in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n} bytes"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read(client: Redis, timeout: float, *, config: bool = True) -> Eviction:
    """The eviction settings of ``client``'s server: CONFIG GET, else INFO memory (a refusal is an answer: said in
    ``unread``). Raises what an unreachable store does (TimeoutError, OSError, redis-py's connection errors): the
    caller keeps what it read before."""
    refused = "CONFIG GET refused before"
    if config:  # ``config`` False: it was refused before (see Eviction.config_refused)
        try:
            async with within(timeout):
                found = await client.config_get("maxmemory*")
            policy, limit = found.get("maxmemory-policy"), found.get("maxmemory")
            if policy is not None and limit is not None:
                return Eviction(_text(policy), int(_text(limit)))
            refused = "CONFIG GET maxmemory-policy answered nothing"
        except ResponseError as exc:  # unknown command (renamed CONFIG), NOPERM (an ACL without +config)
            refused = f"CONFIG GET refused: {exc}"
    try:
        async with within(timeout):
            info = await client.info("memory")
    except ResponseError as exc:
        return Eviction(None, 0, f"{refused}; INFO memory refused: {exc}", config_refused=True)
    policy = info.get("maxmemory_policy") if isinstance(info, dict) else None
    if policy is None:
        return Eviction(None, 0, f"{refused}; INFO memory says no maxmemory_policy", config_refused=True)
    return Eviction(_text(policy), int(info.get("maxmemory", 0) or 0), config_refused=True)
