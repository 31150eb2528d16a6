"""Where each host sharing these slots writes its routing log, kept in Redis for weeks: so `stats` on one host can say
that another host's requests are not in the log it reads.

The live comparison (:meth:`RedisLink._compare`) sees the processes running now and says "logs differ" in /healthz and
the serve log; `stats` runs later, often while the other host's gateway is between restarts. Two hosts that share
Redis but have no ``log.url`` each write their own SQLite file, and each host's figures — request counts, spend, the
cost advice — are about half the traffic with nothing said. So every process records, every 30 s (with its read of
the server's identity), its host, its log's target and identity in one hash (``{prefix}:log-places``: field ``host
TAB target``, value ``seconds identity``, the seconds Redis's own clock — hosts' clocks differ); an entry not renewed
for :data:`KEEP` is dropped. A courtesy: any failure skips one record or one look.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from modelyard.config import dburl
from modelyard.config.schema import StateConfig
from modelyard.router.shared import wire
from modelyard.router.shared.bounds import within

if TYPE_CHECKING:
    from modelyard.config import Config

#: a log identity not read yet (see :class:`LogPlace`)
LOG_PENDING = "?"
local_target = functools.lru_cache(maxsize=8)(dburl.on_this_host)


@dataclass(frozen=True, slots=True)
class LogPlace:
    """Where one process's routing log goes: its target (``dburl.where``, "" for the host's file alone), the host the
    process runs on, and the log's identity (None: unknown, :data:`LOG_PENDING`: not read yet)."""

    target: str
    host: str
    identity: str | None = None

    @property
    def _known(self) -> bool:
        return bool(self.identity) and self.identity != LOG_PENDING

    def shown(self, other: LogPlace) -> str:
        said = _log_shown(self.target)
        if self.target != other.target:
            return said
        if not self.target:  # each host its own file: which host's
            return f"{self.host}'s own file (no log.url)"
        return f"{said} (server {self.identity})" if self.host == other.host else f"{said} on {self.host}"

    def apart(self, other: LogPlace) -> bool:
        """Whether the two write to different logs: the identities decide once both were read, else the address —
        one reached through each host alone (loopback, a socket) is each host's own. While an identity is still
        being read, two databases' addresses are not yet a difference (a tunnel each reaches one server)."""
        if self._known and other._known:
            return self.identity != other.identity
        pending = LOG_PENDING in (self.identity, other.identity) and bool(self.target and other.target)
        if self.target != other.target:
            return not pending
        if not self.target:  # no log.url on either: each host writes a SQLite file of its own
            return self.host != other.host
        return self.host != other.host and local_target(self.target) and not pending


def _log_shown(target: str) -> str:
    return target or "this host's file only (no log.url)"


#: how long an entry outlives its last record (seconds); a process records with each read of the server's identity
KEEP = 35 * 86400
_FIELD_SEP = "\t"

#: record one place (ARGV: field, value without the time, KEEP s) and drop the stale ones; Redis's clock
RECORD = r"""
local now = tonumber(redis.call('TIME')[1])
redis.call('HSET', KEYS[1], ARGV[1], now .. ' ' .. ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local keep = tonumber(ARGV[3])
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '^(%d+)')) or 0
  if at < now - keep then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('EXPIRE', KEYS[1], keep)
return now
"""


def key(prefix: str) -> str:
    return f"{prefix}:log-places"


@dataclass(frozen=True, slots=True)
class Place:
    """One host's routing log as recorded: its target (``dburl.where``; "" its own file alone), the log's identity
    ("" unknown), and how many seconds ago it was last recorded."""

    host: str
    target: str
    identity: str
    age: float


async def record(client: Redis, prefix: str, host: str, target: str, identity: str, timeout: float) -> None:
    try:
        async with within(timeout):
            await client.eval(RECORD, 1, key(prefix), f"{host}{_FIELD_SEP}{target}", identity, int(KEEP))
    except (TimeoutError, RedisError, OSError):
        return


async def read(settings: StateConfig) -> list[Place] | None:
    """Every place recorded in the last :data:`KEEP` (a connection of its own: `stats` runs no link); None when
    Redis cannot be read."""
    client = wire.client(settings)
    try:
        async with within(2 * settings.timeout), client.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hgetall(key(settings.prefix))
            now, raw = await pipe.execute()
    except (TimeoutError, RedisError, OSError):
        return None
    finally:
        await client.aclose()
    places = []
    for field, value in raw.items():
        host, _, target = wire.text(field, errors="replace").partition(_FIELD_SEP)
        at, _, identity = wire.text(value, errors="replace").partition(" ")
        try:
            age = float(now[0]) - float(at)
        except ValueError:  # not ours
            continue
        places.append(Place(host, target, identity, max(0.0, age)))
    return places


def elsewhere(places: list[Place], mine: LogPlace, within: float = KEEP) -> list[str]:
    """The other hosts recorded in the last ``within`` seconds whose log is not ``mine``, as ``host (its own file (no
    log.url), seen 2h ago)``: their requests are not in the log read here. Nothing for this host's own entries."""
    found: dict[str, Place] = {}
    for p in places:
        there = LogPlace(p.target, p.host, p.identity or None)
        if (p.host != mine.host and p.age <= within and mine.apart(there)
                and (p.host not in found or p.age < found[p.host].age)):
            found[p.host] = p
    return [f"{host} ({_where(p, mine)}, seen {_ago(p.age)} ago)" for host, p in sorted(found.items())]


def _where(place: Place, mine: LogPlace) -> str:
    if not place.target:
        return "its own file, no log.url"
    return place.target if place.target != mine.target else f"{place.target}: another server"


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f}h" if seconds < 2 * 86400 else f"{seconds / 86400:.0f} days"


def logged_elsewhere_for(config: Config, conn: Any, within: float = KEEP) -> str:
    """:func:`logged_elsewhere` for the log ``conn`` a command (`stats`, `report`) reads under ``config``: "" without
    shared state. ``conn``: a PostgreSQL log says its identity (two addresses of one server are one log)."""
    from modelyard.router.pool import state_settings

    settings = state_settings(config)
    if settings is None:
        return ""
    identity = getattr(conn, "identity", None)
    mine = LogPlace(dburl.where(config.log.url) if config.log.url else "", socket.gethostname(),
                    (identity() or None) if identity is not None else None)
    return logged_elsewhere(settings, mine, within)


def logged_elsewhere(settings: StateConfig, mine: LogPlace, within: float = KEEP) -> str:
    """One line for `stats` and `report`: the other hosts on these slots whose requests are not in the log read here
    ("" when there are none, or Redis cannot be read — a single host, or no shared state, hears nothing)."""
    places = asyncio.run(read(settings))
    found = elsewhere(places or [], mine, within)
    if not found:
        return ""
    return (f"these figures are this log's only — not counted: the requests of {'; '.join(found)}, which "
            f"shared the slots in {settings.shown_url} (prefix '{settings.prefix}') but logged elsewhere; give every "
            "host one log.url (PostgreSQL) to see them all")
