"""Whether the Redis server may evict modelyard's keys to make room (a Redis that is also a cache).

Of the policies Redis has — ``noeviction``, ``allkeys-lru``, ``allkeys-lfu``, ``allkeys-random``, ``volatile-lru``,
``volatile-lfu``, ``volatile-random``, ``volatile-ttl`` and, since Redis 8, ``allkeys-lrm`` / ``volatile-lrm``
(https://redis.io/docs/latest/develop/reference/eviction/) — only ``noeviction`` keeps every key; with ``maxmemory 0``
(no limit, the default of a 64-bit server) nothing is evicted at all. An ``allkeys-*`` policy takes any key. A
``volatile-*`` one takes only keys with a TTL: the slots' and breakers' keys have one (:data:`.lua.KEY_TTL_MS`: a
team's keys leave Redis a day after its last process), the spend counters none (:mod:`.spend`) — so under
``volatile-*`` a spend cap survives, under ``allkeys-*`` it does not.

What an eviction costs is said with it (:class:`Risk`): the slot limit holds (a lost holders' set is a loss of data,
and no slot is handed out for a grace while live processes register what they hold again:
tests/shared/test_fault_matrix.py), but requests wait for that grace, and a lost breaker forgets it was open; an
evicted spend counter starts again from what the live processes last read of it — the spend of processes no longer
running is gone, and the team may spend that much again in the window.

The policy is read with ``CONFIG GET``; a managed Redis often refuses it (renamed or disabled CONFIG, an ACL without
``+config``), so ``INFO memory`` (``maxmemory_policy``, ``maxmemory``) is read instead, and when both are refused the
check says it could not tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from modelyard.router.shared import wire
from modelyard.router.shared.bounds import within

#: the one policy under which Redis never evicts a key (it refuses the write instead: see StoreFault.OOM)
KEEPS_KEYS = "noeviction"


class Risk(Enum):
    """What a policy may take of modelyard's keys, and what that costs."""

    #: ``allkeys-*``: any key
    ANY = ("any of modelyard's keys: a spend counter evicted starts again from what the live processes last read "
           "(the spend of processes no longer running is lost, and that much may be spent again in the window); a "
           "slot's keys evicted make every request wait a grace while the processes register again (the limit "
           "holds); an evicted breaker forgets it was open")
    #: ``volatile-*``: keys with a TTL — the slots' and breakers', never the spend counters
    WITH_TTL = ("the slots' and breakers' keys (they carry a TTL; the spend counters carry none, so spend caps are "
                "safe): a slot's keys evicted make every request wait a grace while the processes register again (the "
                "limit holds); an evicted breaker forgets it was open")

    @classmethod
    def of(cls, policy: str) -> Risk:
        return cls.WITH_TTL if policy.startswith("volatile-") else cls.ANY


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
        assert self.policy is not None
        return (f"this Redis may evict modelyard's keys (maxmemory-policy {self.policy}, maxmemory "
                f"{_size(self.maxmemory)}): {Risk.of(self.policy).value} — set maxmemory-policy noeviction (CONFIG "
                "SET maxmemory-policy noeviction, and in redis.conf), or give modelyard a Redis instance of its own "
                "with noeviction (another database of the same server shares its maxmemory and policy); where a "
                "provider allows no noeviction, a volatile-* policy at least keeps the spend counters")

    def unread_note(self) -> str:
        if not self.unread:
            return ""
        return (f"whether this Redis may evict modelyard's keys is not known ({self.unread}): a managed Redis often "
                "evicts by default (volatile-lru: the slots' and breakers' keys, which carry a TTL; allkeys-*: the "
                "spend counters too) — make sure its maxmemory-policy is noeviction")


def _size(n: int) -> str:
    for unit, size in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n} bytes"


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
                return Eviction(wire.text(policy), int(wire.text(limit)))
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
    return Eviction(wire.text(policy), int(info.get("maxmemory", 0) or 0), config_refused=True)
