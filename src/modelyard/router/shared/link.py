"""One process's link to the shared store: the client, bounded calls, and the work done in the background.

Every Redis call is bounded by ``state.timeout``; the first one that fails or overruns marks the
link *down* and every model switches to its local fallback at once (no request waits on a dead
store a second time). In the background one task:

- renews this process's holders, waiters and probes every ``lease / 3`` (the heartbeat);
- every ``state.refresh`` seconds (sooner if the heartbeat is due sooner) reads the view behind
  :meth:`RedisState.snapshot` and registers the process in the instance list (the local share
  while the store is down divides by it);
- while down, tries the store again every ``min(refresh, 0.5)`` s; when it answers, re-registers what is
  still held, gives back what was released meanwhile, and only then says *up*.

A second task listens on the grant channel (pub/sub: one connection per process, whatever the
number of waiters) and wakes exactly the waiter whose token was granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterCrossSlotError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as DroppedConnection

from modelyard.config.schema import OnOutage, StateConfig
from modelyard.router.clock import Clock
from modelyard.router.shared import eviction, log_places, lua, namespaces, versions, wire
from modelyard.router.shared import spend as shared_spend
from modelyard.router.shared.bounds import within
from modelyard.router.shared.calls import AT_ONCE, CallGate, RoundTrips
from modelyard.router.shared.keeper import LeaseKeeper
from modelyard.router.shared.log_places import LOG_PENDING, LogPlace, local_target
from modelyard.router.shared.scripts import Scripts
from modelyard.router.shared.timings import STATE_KEY, Timings, safe

if TYPE_CHECKING:
    from modelyard.router.shared.state import RedisState
    from modelyard.router.spend import SpendCaps

log = logging.getLogger("modelyard.state")


#: the link's scripts of :mod:`.lua` (with :data:`.spend.SPEND` and ``SWEEP``: loaded together when Redis lacks them)
LINK_SCRIPTS = ("ACQUIRE", "RELEASE", "WITHDRAW", "RENEW", "VIEW", "ADMIT", "VERDICT", "ABANDON", "INSTANCES",
                "RESTARTED", "REOPEN", "FORGET", "CAPS")

#: Scripts that may run twice with the same arguments (the second run changes nothing), so a call that
#: drew a connection the store had dropped is sent once more: every one of :data:`LINK_SCRIPTS` and ``SWEEP``, not
#: ``SPEND``. A breaker verdict counts, so it carries an id of its own (see lua.VERDICT) and is counted once.
REPEATABLE = frozenset({*LINK_SCRIPTS, "SWEEP"})


#: replies only a Redis Cluster node gives (a key in another node's slot, keys of one call in different slots)
_CLUSTER_REPLIES = (AskError, ClusterCrossSlotError, ClusterDownError, MovedError, TryAgainError)


#: Redis refused who this process is: a setting to fix, not an outage to ride out
_REFUSED = (AuthenticationError, NoPermissionError)
#: what to write, said with every refusal (the URL's password is never shown)
CREDENTIALS_HINT = ("write the password Redis requires in the state URL, redis://:PASSWORD@HOST:6379/0 (an ACL "
                    "user: redis://USER:PASSWORD@HOST:6379/0), in the config's state: or in MODELYARD_STATE")


#: what a Redis ACL user needs for the default prefix (``modelyard``): the scripts and the commands they run (sorted
#: sets, hashes, TIME, PUBLISH), PING and the grant channel's SUBSCRIBE, INFO (the server's identity, a restart), SELECT
#: for a database past 0; CONFIG GET (eviction) and the namespaces' registry in database 0 are read where allowed
ACL_RULES = "+@scripting +@read +@write +@pubsub +@connection +info +time ~modelyard:* &modelyard:*"


class StoreFault(Enum):
    """The refusals a reachable Redis gives that need someone to act, each with what it means and what to do.
    ``{server}`` is the server spoken to (:meth:`said`): a Valkey's refusal said "Redis is loading…" beside the
    server's own "Valkey is loading…"."""

    CLUSTER = ("this is a {server} Cluster node: shared limits need one {server} (a primary, with replicas and "
               "Sentinel if you like); {server} Cluster is not supported")
    NOPERM = ("the {server} user may not run it (ACL): modelyard's slots are Lua scripts — grant +@scripting (EVAL, "
              "EVALSHA), the commands the scripts run, the keys of state.prefix (~PREFIX:*) and its channels "
              "(&PREFIX:*: the grants are published there, and Redis 7 gives a new user no channel), e.g. "
              f"ACL SETUSER <user> {ACL_RULES}")
    MISCONF = ("{server} cannot write its RDB snapshot and so refuses every write (stop-writes-on-bgsave-error): see "
               "the {server} log (a full disk, a directory it may not write)")
    LOADING = "{server} is loading its data set after a restart; it answers once loaded"
    BUSY = ("a Lua script or function has run longer than {server}'s busy-reply-threshold (lua-time-limit, 5 s by "
            "default) — another client's: modelyard's own take microseconds — and {server} answers nothing else until "
            "it ends: SLOWLOG GET names it once it has, SCRIPT KILL (FUNCTION KILL) stops one that has written nothing")
    MAXCLIENTS = ("{server} has as many connections as its maxclients allows: CLIENT LIST shows who holds them (a "
                  "client that leaks keeps many idle ones); raise maxclients, or take a larger plan where a provider "
                  f"sets it — each modelyard process keeps at most {AT_ONCE} for its calls, one for its grants and one "
                  "for its lease keeper")
    OOM = "{server} is at maxmemory and evicts nothing (noeviction)"
    READONLY = ("this server is a replica (a failover moved the primary): point state.url at the primary, e.g. a name "
                "the failover moves")
    SENTINEL = ("this server runs no scripts, as a {server} Sentinel's port (26379) does: point state.url at the "
                "{server} primary the Sentinel names (redis-cli -p 26379 SENTINEL get-master-addr-by-name NAME), or at "
                "a name your failover moves; Sentinel URLs are not supported")
    PROXY = ("this address answers PING but closes the connection on the commands shared limits need — a proxy that "
             "passes only commands with a key, as twemproxy (nutcracker) does with CLIENT, SCRIPT, SUBSCRIBE, INFO and "
             "EVAL without keys: point state.url at the {server} server itself (a primary; a name your failover "
             "moves)")
    NOSCRIPTS = ("this {server} runs no scripts — EVAL renamed or removed (rename-command EVAL \"\" in its config, "
                 "a hardening step) or forbidden by its provider — and modelyard's slots are Lua scripts: give it a "
                 "{server} that runs EVAL and EVALSHA (an ACL user can be kept from everything else: see NOPERM's "
                 "rules)")
    AUTH = f"{{server}} refused the credentials: {CREDENTIALS_HINT}"
    TLS = ("this host does not trust the server's TLS certificate: name its CA in the URL, "
           "rediss://HOST:PORT/0?ssl_ca_certs=/path/to/ca.pem (ssl_cert_reqs=none skips the check)")

    def said(self, server: str = "Redis") -> str:
        """What it means and what to do, naming ``server`` (:func:`server_named`)."""
        return self.value.replace("{server}", server)

    @classmethod
    def of(cls, exc: BaseException, text: str) -> StoreFault | None:
        if isinstance(exc, _CLUSTER_REPLIES):
            return cls.CLUSTER
        lowered = text.lower()  # the server echoes the command as sent: 'EVAL' from redis-py, 'eval' from redis-cli
        for fault, kinds, starts in _FAULTS:
            if isinstance(exc, kinds) or any(word in text or word in lowered for word in starts):
                return fault
        return None


_FAULTS: list[tuple[StoreFault, tuple[type[BaseException], ...], tuple[str, ...]]] = [
    (StoreFault.NOPERM, (), ("permissions to run", "permissions to access", "NOPERM", "can't run this command",
                             "can't publish to the channel")),  # a script's PUBLISH to a channel the ACL withholds
    (StoreFault.MISCONF, (), ("MISCONF",)),
    # a Sentinel's reply to the commands only a data server has (Redis 7: "ERR unknown command 'evalsha', with args…")
    (StoreFault.SENTINEL, (), ("unknown command 'eval", "unknown command 'script'", "unknown command 'time'",
                               "unknown command `eval", "unknown command `script`", "unknown command `time`")),  # 6.x
    (StoreFault.LOADING, (BusyLoadingError,), ("LOADING",)),
    # "BUSY %s is busy running…": Valkey 8 and Redict name themselves there (valkey-io/valkey#306), Redis says "Redis"
    (StoreFault.BUSY, (), (" is busy running",)),
    (StoreFault.MAXCLIENTS, (), ("max number of clients",)),
    (StoreFault.OOM, (OutOfMemoryError,), ("OOM command not allowed",)),
    (StoreFault.READONLY, (ReadOnlyError,), ("READONLY",)),
    (StoreFault.AUTH, _REFUSED, ("WRONGPASS", "invalid username-password")),
    (StoreFault.TLS, (), ("CERTIFICATE_VERIFY_FAILED",)),
]

#: redis-py wraps a pipelined command's error reply in its own text (the command, its arguments, a tuple)
_PIPELINE = re.compile(r"^Command # \d+ \(.*?\) of pipeline caused error: \(?['\"]?(.*?)['\"]?,?\)?$", re.S)


def failure(exc: BaseException, server: str | None = None) -> str:
    """Why a call failed, for /healthz and the log: the server's own words (not redis-py's pipeline wrapper around
    them), and for a refusal that needs someone to act (:class:`StoreFault`) what it means — of ``server``, the one
    spoken to where it was read."""
    message = str(exc)
    if (inner := _PIPELINE.match(message)) is not None:
        message = inner.group(1)
    if len(message) > 240:
        message = message[:240] + "…"
    text = f"{type(exc).__name__}: {message}"
    fault = StoreFault.of(exc, message)
    return f"{text} — {fault.said(server_named(server, message))}" if fault is not None else text


#: the ``INFO server`` field only each Redis fork has, and the fork's name (Valkey 8 says ``server_name:valkey`` too)
_FORK_FIELDS = (("valkey_version", "Valkey"), ("redict_version", "Redict"))


def server_kind(info: Mapping[str, Any]) -> str:
    """Which server an ``INFO server`` reply is from: "Valkey", "Redict" or "Redis"."""
    for only_its, name in _FORK_FIELDS:
        if info.get(only_its):
            return name
    return "Valkey" if str(info.get("server_name", "")).lower() == "valkey" else "Redis"


def server_named(known: str | None, said: str = "") -> str:
    """The server to name in a refusal: the one its reply names (Valkey 8 and Redict say "Valkey is loading…",
    "BUSY Redict is busy running…": valkey-io/valkey#306), else ``known`` (:func:`server_kind` of what was read), else
    "Redis"."""
    return next((fork for _, fork in _FORK_FIELDS if fork in said), known or "Redis")


async def refused(settings: StateConfig) -> str | None:
    """One PING with the configured credentials: why, when Redis refuses them (a wrong or missing password, an
    ACL user without the right), else None — also when it cannot be reached: that is an outage, which a process
    rides out (``on_outage``). A refused password is not: every model would get no slot until the process is
    restarted with the right one, and a gateway answered 503 to every request while /healthz said "unreachable"."""
    client = wire.client(settings)
    try:
        async with within(2 * settings.timeout):
            await client.ping()
    except NoPermissionError:  # the password is right, PING is not granted: scripts_refused says what to grant
        return None
    except _REFUSED as exc:
        return f"{type(exc).__name__}: {exc}"
    except (TimeoutError, RedisError, OSError):
        return None
    finally:
        await client.aclose()
    return None


def grant_channel(prefix: str) -> str:
    """The pub/sub channel a prefix's grants are published on (one per prefix, whatever the number of waiters)."""
    return f"{prefix}:grants"


async def scripts_refused(settings: StateConfig) -> tuple[StoreFault, str] | None:
    """One trivial script that publishes nothing on the grant channel: why, when the Redis user may not run scripts (an
    ACL without EVAL/EVALSHA) or publish there (Redis 7 gives a new ACL user no channel: ``acl-pubsub-default
    resetchannels``), or the server runs none (a Sentinel's port), else None (also when Redis cannot be reached, or
    refuses the password: :func:`refused` says that). Every slot is a script: without scripts a process gave no model
    a slot, for as long as it ran; without the channel, every hand-over of a slot to a waiter failed midway (the link
    down each time, the waiter woken only by the next heartbeat)."""
    client = wire.client(settings)
    try:
        async with within(2 * settings.timeout):
            await client.ping()  # the grant listener's keep-alive
            # an empty message: a listener's dispatch finds no token in it
            await client.eval("return redis.call('PUBLISH', ARGV[1], '')", 0, grant_channel(settings.prefix))
    except DroppedConnection as exc:  # closed on us: a proxy that passes none of it answers a bare PING all the same
        if await _speaks_resp(settings):
            return StoreFault.PROXY, f"{type(exc).__name__}: {exc}"
        return None
    except (NoPermissionError, RedisError) as exc:
        if (fault := StoreFault.of(exc, str(exc))) in (StoreFault.NOPERM, StoreFault.SENTINEL):
            if fault is StoreFault.SENTINEL and await _mode(client, settings.timeout) not in (None, "sentinel"):
                fault = StoreFault.NOSCRIPTS  # a Redis without EVAL, not a Sentinel's port
            return fault, f"{type(exc).__name__}: {exc}"
        return None
    except (TimeoutError, OSError):
        return None
    finally:
        await client.aclose()
    return None


#: the ``INFO server`` field that says standalone, cluster or sentinel: Redis's ``redis_mode``, Valkey 8's
#: ``server_mode`` (``redis_mode`` only under ``extended-redis-compatibility yes``: valkey-io/valkey#306), Redict's
#: ``redict_mode`` (Redict 7.3, Debian's redict-server)
_MODE_FIELDS = ("redis_mode", "server_mode", "redict_mode")


async def _mode(client: Redis, timeout: float) -> str | None:
    """The server's mode (``INFO server``: standalone, cluster or sentinel); None where it cannot be read."""
    return await _server_field(client, timeout, *_MODE_FIELDS)


async def _speaks_resp(settings: StateConfig) -> bool:
    """Whether a bare ``PING`` on a plain connection of its own gets a Redis reply that takes the connection (``+PONG``,
    or ``-NOAUTH``): the address speaks Redis's protocol in the clear, so a connection it closed was not a TLS mismatch
    but a refusal of the commands sent. False for ``rediss://`` (not probed), when nothing answers, and for another
    error — a Redis at ``maxclients`` answers every new connection "-ERR max number of clients reached" and closes it,
    an outage that ends when a client leaves, not a proxy."""
    if not settings.url.startswith(("redis://", "unix://")):
        return False
    try:
        async with within(2 * settings.timeout), _bare(settings) as (reader, writer):
            writer.write(b"*1\r\n$4\r\nPING\r\n")
            await writer.drain()
            first = await reader.readline()
    except (TimeoutError, OSError):
        return False
    return first.startswith((b"+", b"-NOAUTH"))


@contextlib.asynccontextmanager
async def _bare(settings: StateConfig) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain connection of its own to the state URL's address (``redis://`` or ``unix://``), closed at the end."""
    from redis.asyncio import ConnectionPool

    where = ConnectionPool.from_url(settings.url).connection_kwargs
    if path := where.get("path"):
        reader, writer = await asyncio.open_unix_connection(path)
    else:
        reader, writer = await asyncio.open_connection(where.get("host", "localhost"), where.get("port", 6379))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


#: how redis-py says a connection the server closed (what a Redis at maxclients does to each new one, its error often
#: unread — before, said as a TLS mismatch or a proxy)
_CLOSED_ON_US = ("Connection lost", "Connection closed by server", "Connection reset by peer", "Broken pipe")


async def _refused_at_accept(settings: StateConfig) -> str:
    """The error a server sends unasked on a new connection before closing it ("-ERR max number of clients reached":
    Redis at ``maxclients`` writes it on accept), '' when none comes within a short wait (a server that waits for a
    command, as Redis does otherwise) or the address cannot be read so (``rediss://``)."""
    if not settings.url.startswith(("redis://", "unix://")):
        return ""
    try:
        async with within(min(settings.timeout, 0.25)), _bare(settings) as (reader, _):
            first = await reader.readline()
    except (TimeoutError, OSError):
        return ""
    said = first.decode("utf-8", "replace").strip()
    return said.removeprefix("-").removeprefix("ERR ") if said.startswith("-") else ""


#: the routing log's target in a process's registered limits (see RedisLink._limits_text); beside it the log's
#: identity (``PgConnection.identity``; :data:`LOG_PENDING` until read, absent where it cannot be) and, for a target
#: reached through the host alone (loopback, a unix socket), the host — two hosts' ``postgresql://localhost/modelyard``
#: are two servers, or one through a tunnel each, and only the identity tells which. Older versions read only ``@log``.
_LOG_KEY = "@log"
_LOG_ID_KEY = "@logid"
_LOG_HOST_KEY = "@logon"
#: the mark the process's forwarder left in its log (:mod:`modelyard.ledger.marks`): a server copied from another's
#: files has its identity, and only a mark written since tells the two apart
_LOG_MARK_KEY = "@logmark"


#: how a difference of state settings starts among the disagreements (``limits_differ``)
_SETTINGS = "state settings: "
#: the disagreements that are not of a model's limit
_NOT_LIMITS = ("routing log: ", _SETTINGS, versions.SAID)


def _gist(found: list[str]) -> list[str]:
    """Disagreements without the process named at their end (``… at host:pid:id``)."""
    return sorted({f.rsplit(" at ", 1)[0] for f in found})


#: how often a process reads the Redis server's identity (``run_id``), and how long an id read counts as this process's
#: server: longer than the routing log's presence look-back (90 s) plus a look (30 s), so two hosts that read the
#: server on either side of a restart still share an id (see :mod:`modelyard.ledger.presence`)
SERVER_EVERY = 30.0
SERVER_KEPT = 150.0


async def server_id(client: Redis, timeout: float) -> str | None:
    """The Redis server's ``run_id`` (``INFO server``): the same for every client of one server, whatever address it
    is reached at (a tunnel, a proxy), and different for another server. None where it cannot be read (an ACL that
    forbids INFO, an outage)."""
    return await _server_field(client, timeout, "run_id")


async def _server_field(client: Redis, timeout: float, *names: str) -> str | None:
    """The first of ``names`` that ``INFO server`` has (one field, under the names a server may give it); None where
    none can be read."""
    info = await _server_info(client, timeout)
    value = next((info[name] for name in names if info.get(name)), None)
    return str(value) if value else None


async def _server_info(client: Redis, timeout: float) -> dict[str, Any]:
    """``INFO server``; empty where it cannot be read (an ACL that forbids INFO, an outage)."""
    try:
        async with within(timeout):
            info = await client.info("server")
    except (TimeoutError, RedisError, OSError):
        return {}
    return info if isinstance(info, dict) else {}


async def read_server_kind(settings: StateConfig) -> str | None:
    """:func:`server_kind` on a connection of its own (a refusal at start); None where INFO cannot be read."""
    client = wire.client(settings)
    try:
        info = await _server_info(client, 2 * settings.timeout)
        return server_kind(info) if info else None
    finally:
        await client.aclose()


async def read_server_id(settings: StateConfig) -> str | None:
    """:func:`server_id` on a connection of its own (``models``: a look, no link running)."""
    client = wire.client(settings)
    try:
        return await server_id(client, 2 * settings.timeout)
    finally:
        await client.aclose()


class StoreUnreachable(Exception):
    """The shared store did not answer within its bound (or refused): the link is down."""


@dataclass(slots=True)
class LinkStatus:
    """What /healthz, /metrics and ``models`` show about the shared store."""

    url: str
    prefix: str
    up: bool
    detail: str
    instances: int
    #: seconds since the cached view was last read (None: never)
    view_age: float | None
    errors: int
    #: models whose max_concurrent another live process applies differently ("qwen: 1 here, 2 at host:pid:…")
    disagreements: list[str]
    #: backends limited here and apart elsewhere: another database or prefix of the same server, or another model name
    splits: list[str] = field(default_factory=list)
    #: while cut off with ``on_outage: share``: seconds until the others surely hold this process's share back, so
    #: it uses its whole share (until then only the slots it held) — 0 while the store answers
    full_share_in: float = 0.0


def awake_time() -> float:
    """Seconds on a clock that goes on while the process is stopped and while the machine sleeps (Linux's
    ``CLOCK_BOOTTIME``; elsewhere the monotonic clock): the leases in Redis run out on Redis's clock all the same, and
    ``time.monotonic`` stands still while a laptop sleeps."""
    return time.clock_gettime(_AWAKE) if _AWAKE is not None else time.monotonic()


_AWAKE: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RedisLink:
    """The pool's connection to Redis, shared by every model's :class:`RedisState`."""

    def __init__(self, settings: StateConfig, clock: Clock | None = None):
        self.settings = settings
        self.prefix = settings.prefix
        self.channel = grant_channel(settings.prefix)
        #: None: Redis's own clock (TIME) — the right one across hosts; tests may pass a manual clock
        self.clock = clock
        self.lease_ms = settings.lease * 1000
        #: a holder's entry lives 2/3 of the lease and is renewed every 1/3: one late heartbeat is
        #: tolerated, and a crashed holder's slot is free within the lease
        self.heartbeat = settings.lease / 3
        #: this process's settings, registered beside its limits: where another live process's differ, the safe side
        #: of both is used (see .timings) — a longer window and grace, the whole outage share taken later
        self.timings = Timings.of(settings)
        self.safe = safe(self.timings, [])
        self.window_ms = self.safe.window_ms
        self.grace_ms = self.safe.grace_ms
        #: how often the background loop runs: often enough for both the heartbeat and the view
        self.tick = min(settings.refresh, self.heartbeat)
        #: the instance list entry outlives many ticks: it only sizes the share while Redis is down, and an
        #: undercount (a live process whose tick was late) would hand out more than the limit
        self.instance_ms = max(2 * self.lease_ms, 10_000.0)
        #: a process registers every tick; one not heard from for two ticks and two timeouts is *silent*: cut off
        #: from Redis (using its outage share on its own) or dead — the others hold its share back until its entry
        #: runs out (``instance_ms``), else a host cut off alone added its share to the whole limit the others
        #: handed out through Redis
        self.silent_ms = (2 * self.tick + 2 * settings.timeout) * 1000
        #: when this process last registered (the heartbeat that reached the store was sent; monotonic): the others
        #: count it silent, so hold its outage share back, from ``silent_ms`` after that plus their next tick
        self.registered_at: float | None = None
        #: the processes (on this host) silent at the last tick
        self.silent = 0
        self.host_silent = 0
        self._counts: list[tuple[float, int, int]] = []
        self.host = socket.gethostname()
        self.instance = f"{self.host}:{os.getpid()}:{random.getrandbits(32):08x}"
        #: this process's max_concurrent per model shared across hosts (the pool sets it): registered for each model
        #: (lua.CAPS), so processes that disagree all hand out the smallest — and said, not silent
        self.limits: dict[str, int] = {}
        #: models whose slots are this host's own (compared with the other processes of this host only)
        self.per_host: set[str] = set()
        #: where this process's routing log goes (dburl.where of log.url, "" for this host's file alone; None: not
        #: said): registered beside the limits, so a host that logs elsewhere is named, not silently missing from `log`
        self.log_target: str | None = None
        #: the log's identity as this process's forwarder read it (the runtime sets it; None: not read yet, "": not
        #: readable — the default, for a process that forwards nothing)
        self.log_identity: Callable[[], str | None] = lambda: ""
        #: the mark this process's forwarder left in the log ("" none), and whether this process's log holds another
        #: process's mark (None: not known yet) — the runtime sets both from the forwarder
        self.log_mark: Callable[[], str] = lambda: ""
        self.log_holds: Callable[[str], bool | None] = lambda _mark: None
        self.disagreements: list[str] = []
        #: model → the backend its slots protect (:func:`.namespaces.backend_key`; the pool sets it)
        self.backends: dict[str, str] = {}
        self.splits: list[str] = []
        self._registry_at = -namespaces.EVERY
        #: an ACL refused the registry (database 0, or its key): not checked again
        self._registry_off = False
        self._registry_client: Redis | None = None
        self._registry_script: AsyncScript | None = None
        self.host_instances = 0
        #: the run ids of the Redis server read in the last SERVER_KEPT seconds (read by the forwarder's thread: a
        #: tuple replaced whole), and when each was read; None until the first try (the store reached or not)
        self.servers: tuple[str, ...] | None = None
        self._servers_read: dict[str, float] = {}
        #: which server that is (:func:`server_kind`: Redis, Valkey, Redict), named in its refusals; None until read
        self.server_kind: str | None = None
        self._server_at = -SERVER_EVERY
        self._tokens = itertools.count()
        self.states: dict[str, RedisState] = {}
        #: token → the state waiting for it (the grant listener looks tokens up here)
        self.waiters: dict[str, RedisState] = {}
        #: the last jump of the store's clock a model saw (said in /healthz's detail), '' none
        self.clock_note = ""
        #: the server may evict modelyard's keys (its maxmemory-policy: see .eviction), said in /healthz's detail; ''
        self.eviction_note = ""
        #: what the server's eviction settings were read as (None: not read yet)
        self.eviction: eviction.Eviction | None = None
        self.up = True  # optimistic until the first call says otherwise
        self.down_since: float | None = None
        self.down_reason = ""
        self.errors = 0
        self.instances = 0  # 0: never counted (a process that never reached the store has no share)
        self.view_at: float | None = None
        #: when the round trip that read it was sent, on :func:`awake_time` (what :meth:`view_fresh` measures)
        self.view_awake: float | None = None
        self._client: Redis | None = None
        #: at most calls.AT_ONCE calls at Redis at once: one connection each, not one per request of a burst
        self._gate = CallGate()
        #: how long the latest calls took (said when state.timeout leaves too few round trips)
        self.round_trips = RoundTrips()
        #: the last finding of RoundTrips.short_bound (said once in the log, and in /healthz while it lasts)
        self.slow_note = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._last_beat = 0.0
        #: when this loop's heartbeat last renewed its slots (monotonic, the time it was sent): the lease keeper
        #: renews them from its thread once this is late (:mod:`.keeper`)
        self.renewed_at = time.monotonic()
        #: the same on :func:`awake_time` (by this loop only: the keeper's renewal extends just what is still there)
        self.renewed_awake = awake_time()
        self.keeper: LeaseKeeper | None = None
        self._scripts = Scripts({})
        self._kick = asyncio.Event()
        self._closing = False
        #: a look (``models``): what it finds goes in its caption, not in warnings on stderr besides
        self._looking = False
        #: a command that sends one request at a time (``ask``, ``chat``): while the store is out of reach it takes
        #: at least one slot of a model (see RedisState._share)
        self.one_shot = False
        #: the capped models' spend (the pool sets it): added to Redis's counters and read back each tick
        self.spend: SpendCaps | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def new_token(self) -> str:
        return f"{self.instance}:{next(self._tokens)}"

    def register(self, state: RedisState) -> None:
        self.states[state.name] = state

    def ensure_started(self) -> None:
        """Start the client and the background tasks on the running loop (once per loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._connect(loop)
        self._kick = asyncio.Event()
        self._closing = False
        self._tasks = [loop.create_task(self._maintain(), name="modelyard-state-maintain"),
                       loop.create_task(self._listen(), name="modelyard-state-grants")]
        if self.keeper is not None:
            self.keeper.stop()
            self.keeper = None
        self.renewed_at = time.monotonic()
        self.renewed_awake = awake_time()
        if self.clock is None:  # a test's manual clock does not move while a loop stalls: nothing to keep
            self.keeper = LeaseKeeper(self)
            self.keeper.start()

    def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._gate = CallGate()
        self._client = wire.client(self.settings, redis_connect_func=self._on_new_connection)
        self._scripts = Scripts({**{name: getattr(lua, name) for name in LINK_SCRIPTS}, "SPEND": shared_spend.SPEND,
                                 "SWEEP": shared_spend.SWEEP})

    @property
    def looking(self) -> bool:
        """A look (``models``): it reads the store and registers nothing."""
        return self._looking

    def running(self) -> bool:
        """The loop this link was started on still runs and the link is not closing: what the lease keeper's thread
        asks before it renews anything (a process that died in a test keeps no slot)."""
        loop = self._loop  # read once: another thread may replace it
        return not self._closing and loop is not None and not loop.is_closed() and loop.is_running()

    def keep_calls(self) -> list[tuple[list[str], list[Any]]]:
        """What the lease keeper renews (:data:`.lua.KEEP`'s keys and arguments, one call per model that holds
        something here); read from its thread."""
        return [call for state in list(self.states.values()) if (call := state.keep_call()) is not None]

    async def peek(self) -> None:
        """Read the view once without joining in (``models``: a look, not a process that holds slots)."""
        self._looking = True
        self._connect(asyncio.get_running_loop())
        assert self._client is not None
        try:
            calls = [("VIEW", *state.view_call()) for state in self.states.values()]
            results = await self._pipeline(calls)
            for state, result in zip(self.states.values(), results, strict=True):
                state.viewed(result)
            async with within(self.settings.timeout):
                # Redis's clock, as the entries' own deadlines: this host's may be off (it was time.time() here, and
                # `models` on a host 20 s ahead counted no live process at all, one behind counted dead ones)
                if self.clock is None:
                    seconds, micros = await self._client.time()
                    now = f"({seconds * 1000 + micros // 1000}"
                else:
                    now = f"({self.clock() * 1000:.0f}"
                alive: list[Any] = list(await self._client.zrangebyscore(self._instances_key, now, "+inf"))
                configs: list[Any] = list(await self._client.hmget(self._configs_key, alive)) if alive else []
            self.instances = len(alive)
            self.host_instances = sum(i.decode().startswith(f"{self.host}:") for i in alive)
            mine = self._limits_text()
            self._compare([x for i, c in zip(alive, configs, strict=True) if c and c.decode() != mine for x in (i, c)])
            self.view_at = time.monotonic()
            self.view_awake = awake_time()
            if self.spend is not None:
                await shared_spend.share(self, self.spend)
            await self._read_eviction()
            await self._namespaces("-")
        except (StoreUnreachable, TimeoutError, RedisError, OSError) as exc:
            self.mark_down(self.down_reason or await self._failure(exc))
        finally:
            await self._close_registry()
            await self._client.aclose()
            self._client = None
            self._loop = None

    async def aclose(self) -> None:
        """Give back every slot and waiter of this process, leave the instance list, stop."""
        if self._client is None or self._loop is not asyncio.get_running_loop():
            return
        self._closing = True  # a cancel that lands as a timeout expires can be swallowed: the loops check this too
        self._kick.set()
        if self.keeper is not None:
            self.keeper.stop()
            self.keeper = None
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=max(1.0, 2 * self.settings.timeout))
        if self._background:  # give-backs of cancelled waiters still on their way
            await asyncio.wait(list(self._background), timeout=self.settings.timeout * 2)
        if self.up:
            with contextlib.suppress(StoreUnreachable):
                if self.spend is not None:  # what this process spent since the last tick (an ask's whole spend)
                    await shared_spend.share(self, self.spend)
                for state in self.states.values():
                    await state.give_back_all()
                await self.call("INSTANCES", *self._instances_call(leave=True))
            await self._namespaces("")
        await self._close_registry()
        await self._client.aclose()
        self._client = None
        self._loop = None

    async def claim(self, what: str, seconds: float) -> bool:
        """Whether this process is the one to do ``what`` for the next ``seconds`` (the first to ask: ``SET NX``,
        Redis's clock): a chore the processes sharing a backend need done once, not once each — keeping an Ollama
        model warm. True too when Redis cannot say (not started, down, slow): a chore done twice beats one not done."""
        client = self._client
        if client is None or not self.up:
            return True
        try:
            async with self._gate, within(self.settings.timeout):
                taken = await client.set(f"{self.prefix}:claim:{what}", self.instance, nx=True,
                                         px=max(1, int(seconds * 1000)))
                if taken:
                    return True
                return (await client.get(f"{self.prefix}:claim:{what}")) == self.instance.encode()
        except (TimeoutError, RedisError, OSError):
            return True

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run cleanup in the background (a cancelled request must not wait for Redis to tidy up)."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- calls ----------------------------------------------------------------------------

    def now_arg(self) -> str:
        return "" if self.clock is None else repr(self.clock() * 1000)

    @property
    def _instances_key(self) -> str:
        return f"{self.prefix}:instances"

    @property
    def instances_key(self) -> str:
        """The live processes sharing this prefix (each one's entry runs out unless renewed: see lua.INSTANCES)."""
        return self._instances_key

    def _caps_calls(self) -> list[tuple[str, list[str], list[Any]]]:
        """This process's max_concurrent per model (lua.CAPS), registered each tick after its instance entry."""
        mine = [(state.caps_key, self.limits[name]) for name, state in self.states.items() if name in self.limits]
        if not mine:
            return []
        return [("CAPS", [self._instances_key, *(key for key, _ in mine)],
                 [self.now_arg(), self.instance, *(limit for _, limit in mine)])]

    @property
    def _configs_key(self) -> str:
        return f"{self.prefix}:configs"

    @property
    def _host_keys_key(self) -> str:
        return f"{self.prefix}:host-keys"

    def _limits_text(self) -> str:
        # "@log" cannot be a model's limit: a process of an older version compares only its own models' names
        said: dict[str, Any] = dict(self.limits)
        said[STATE_KEY] = self.timings.said()
        said[versions.KEY] = versions.PROTOCOL
        if (place := self._log_place()) is not None:
            said[_LOG_KEY] = place.target
            # each host's own file, or a server reached through the host alone: two hosts' texts differ, so the script
            # hands them here
            if not place.target or local_target(place.target):
                said[_LOG_HOST_KEY] = place.host
            if place.identity:
                said[_LOG_ID_KEY] = place.identity
                if mark := self.log_mark():
                    said[_LOG_MARK_KEY] = mark
        return json.dumps(said, sort_keys=True, separators=(",", ":"))

    def _log_place(self) -> LogPlace | None:
        if self.log_target is None:
            return None
        identity = self.log_identity()
        return LogPlace(self.log_target, self.host, LOG_PENDING if identity is None else identity)

    def _instances_call(self, *, leave: bool = False) -> tuple[list[str], list[Any]]:
        own = [] if leave else [state.tag for state in self.states.values() if state.per_host]
        return [self._instances_key, self._configs_key, self._host_keys_key, f"{self.prefix}:seen"], [
            self.now_arg(), self.lease_ms if leave else self.instance_ms, self.instance, int(leave), f"{self.host}:",
            "" if leave else self._limits_text(), self.silent_ms, *own]

    def _compare(self, others: list[Any]) -> None:
        """``others``: (instance, limits JSON) pairs of live processes whose limits differ from this one's."""
        found = []
        timings: list[Timings | None] = []
        for raw_id, raw in zip(others[::2], others[1::2], strict=True):
            try:
                theirs = json.loads(raw)
            except ValueError:
                continue
            where = wire.text(raw_id)
            timings.append(their_timings := Timings.read(theirs.get(STATE_KEY)))
            if their_timings is not None and their_timings != self.timings:
                found.append(f"{_SETTINGS}{self.timings.text()} here, {their_timings.text()} at {where}")
            if (version := versions.finding(theirs, where)) is not None:
                found.append(version)
            elsewhere = not where.startswith(f"{self.host}:")  # another host's own server may well differ
            found += [f"{model}: max_concurrent {limit} here, {theirs[model]} at {where}"
                      for model, limit in sorted(self.limits.items())
                      if theirs.get(model, limit) != limit and not (elsewhere and model in self.per_host)]
            log_there = theirs.get(_LOG_KEY)
            if (mine := self._log_place()) is not None and isinstance(log_there, str):
                ident = theirs.get(_LOG_ID_KEY)  # absent: an older version, or unreadable there
                there = LogPlace(log_there, where.split(":", 1)[0], ident if isinstance(ident, str) else None)
                if mine.apart(there):
                    found.append(f"routing log: {mine.shown(there)} here, {there.shown(mine)} at {where}")
                elif self._a_copy(mine, there, theirs.get(_LOG_MARK_KEY)):
                    found.append(f"routing log: {mine.shown(there)} here, {there.shown(mine)} at {where} — another "
                                 "server with this one's identity (a copy of its files: a cloned VM or volume), its "
                                 "requests are not in this log")
        # what differs, not which process says it: Redis names one process per set of limits, whichever renewed
        # last, so a host upgraded first said it again every heartbeat naming its peers by turns
        if _gist(found) != _gist(self.disagreements) and found and not self._looking:
            limits = [f for f in found if not f.startswith(_NOT_LIMITS)]
            if limits:
                log.warning("shared state %s: processes' configs give a model different limits (every process hands "
                            "out the smallest; an older version's the larger): %s", self.settings.shown_url,
                            "; ".join(limits))
            if settings := [f.removeprefix(_SETTINGS) for f in found if f.startswith(_SETTINGS)]:
                log.warning("shared state %s: processes use different state settings (each keeps its slots, takes "
                            "its outage share and waits after a loss as the slowest of them needs): %s",
                            self.settings.shown_url, "; ".join(settings))
            if others := [f.removeprefix(versions.SAID) for f in found if f.startswith(versions.SAID)]:
                log.warning("shared state %s: processes of another modelyard version share this prefix: %s — %s",
                            self.settings.shown_url, "; ".join(others), versions.RISK)
            if logs := [f for f in found if f.startswith("routing log: ")]:
                log.warning("shared state %s: processes write their routing log to different places (`log`, "
                            "`stats` and `report` on each show one place's requests: give every host one log.url): "
                            "%s", self.settings.shown_url,
                            "; ".join(f.removeprefix("routing log: ") for f in logs))
        self.disagreements = found
        self.safe = safe(self.timings, timings)
        self.window_ms, self.grace_ms = self.safe.window_ms, self.safe.grace_ms

    def _a_copy(self, mine: LogPlace, there: LogPlace, mark: object) -> bool:
        """The other process's log has this one's identity but not its mark: a copy of the server's files, not one
        log (:mod:`modelyard.ledger.marks`). Unknown (no mark, not looked yet) is not a copy."""
        if not isinstance(mark, str) or not mark or mine.identity in (None, "", LOG_PENDING):
            return False
        return mine.identity == there.identity and self.log_holds(mark) is False

    async def call(self, script: str, keys: list[str], args: list[Any], *, budget: float | None = None) -> Any:
        """Run one script within ``state.timeout`` (or ``budget``, when the caller has less time left).

        Raises :class:`StoreUnreachable` (and marks the link down) when Redis fails or overruns its
        own bound; a plain ``TimeoutError`` when only the caller's shorter budget ran out.
        """
        if self._client is None:
            raise StoreUnreachable("closed")
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await self._gate.take(budget)  # its turn, within the caller's budget: not the store's bound
        try:
            if budget is not None:
                budget -= loop.time() - asked
            return await self._call(script, keys, args, budget)
        finally:
            self._gate.give()

    async def _call(self, script: str, keys: list[str], args: list[Any], budget: float | None) -> Any:
        assert self._client is not None
        client = self._client
        bound = self.settings.timeout if budget is None else min(budget, self.settings.timeout)
        try:
            sent, opened = time.monotonic(), self.round_trips.opened
            async with within(bound):
                reply = await self._once_more_if_dropped(lambda: self._scripts.run(client, script, keys, args),
                                                         repeatable=script in REPEATABLE)
            self._timed(time.monotonic() - sent, opened)
            return reply
        except TimeoutError:
            if budget is not None and budget < self.settings.timeout:
                raise
            self.mark_down(f"no answer within {self.settings.timeout:g}s")
            raise StoreUnreachable(self.down_reason) from None
        except (RedisError, OSError) as exc:
            self.mark_down(await self._failure(exc))
            raise StoreUnreachable(self.down_reason) from None

    def _timed(self, seconds: float, opened: int) -> None:
        """One call's round trip: a bound that leaves too few of them is said once, with what to write."""
        if not self.round_trips.add(seconds, opened):
            return
        note = self.round_trips.short_bound(self.settings.timeout, self.settings.lease, self.settings.refresh)
        if note and not self.slow_note and not self._looking:
            log.warning("shared state %s: %s", self.settings.shown_url, note)
        self.slow_note = note

    async def _failure(self, exc: BaseException) -> str:
        """:func:`failure`, naming the server spoken to: read here when it refused something before the heartbeat
        read which it is (a Valkey at maxmemory was "Redis is at maxmemory"). Only for a refusal: the server answered,
        so INFO does too (an outage would wait for it in vain)."""
        if (self.server_kind is None and isinstance(exc, ResponseError) and self._client is not None
                and (info := await _server_info(self._client, self.settings.timeout))):
            self.server_kind = server_kind(info)
        if (isinstance(exc, DroppedConnection) and any(said in str(exc) for said in _CLOSED_ON_US)
                and (refusal := await _refused_at_accept(self.settings))):
            exc = DroppedConnection(refusal)  # the server's own words, which redis-py did not read
        return failure(exc, self.server_kind)

    async def _pipeline(self, calls: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Several scripts in one round trip, within ``state.timeout``."""
        assert self._client is not None
        assert all(script in REPEATABLE for script, _, _ in calls)
        client = self._client

        try:
            async with self._gate, within(self.settings.timeout):
                return await self._once_more_if_dropped(lambda: self._scripts.run_all(client, calls), repeatable=True)
        except TimeoutError:
            self.mark_down(f"no answer within {self.settings.timeout:g}s")
            raise StoreUnreachable(self.down_reason) from None
        except (RedisError, OSError) as exc:
            self.mark_down(await self._failure(exc))
            raise StoreUnreachable(self.down_reason) from None

    async def _once_more_if_dropped(self, attempt: Callable[[], Awaitable[Any]], *, repeatable: bool) -> Any:
        """A pooled connection the store dropped (it restarted, or closed it while idle) fails only when
        used. When one does, every idle one is as dead: drop them all, and run a repeatable call again
        on a fresh connection, instead of taking the link down for a store that is answering."""
        try:
            return await attempt()
        except DroppedConnection:
            if not repeatable or self._client is None:
                raise
            await self._client.connection_pool.disconnect(inuse_connections=False)
            return await attempt()  # on a new connection, which asked whether Redis restarted first
        except NoScriptError:  # flushed again between loading the scripts and sending the call again: once more
            if not repeatable:
                raise
            return await attempt()

    def _restart_calls(self) -> list[tuple[str, list[str], list[Any]]]:
        metas = [state.meta_key for state in self.states.values()]
        return [("RESTARTED", metas, [self.now_arg(), self.new_token(), self.grace_ms])] if metas else []

    async def _on_new_connection(self, connection: Any) -> None:
        """Every new connection asks whether Redis restarted before it carries anything else.

        A restart drops every connection, and redis-py replaces a dropped pooled one silently (it sees the
        socket closed before using it), so a request's ACQUIRE could reach a Redis that came back from an
        older snapshot before the heartbeat noticed: the slot taken since that snapshot was handed out a second
        time (CI saw it). Asked here, the restart starts the grace before any script of this process runs.
        """
        self.round_trips.opened += 1
        await connection.on_connect()
        for _, keys, args in self._restart_calls():
            await connection.send_command("EVAL", lua.RESTARTED, len(keys), *keys, *args)
            await connection.read_response()

    # -- up and down ----------------------------------------------------------------------

    def _scheme_hint(self, reason: str) -> str:
        """A store never reached whose URL may name the wrong protocol: TLS to a plain server waits for a handshake
        that never comes (a timeout), plain text to a TLS port is reset; or a database number past the server's
        (redis-py says only "DB index is out of range"). Said only before the first answer."""
        if self.view_at is not None:
            return reason
        tls = self.settings.url.startswith("rediss://")
        if tls and reason.startswith("no answer within"):
            return f"{reason} — nothing came back over TLS: if this server does not speak TLS, the URL is redis://"
        # the TLS server's alert and close meet the next write too: "Error UNKNOWN while writing to socket.
        # Connection lost." (redis-py; seen in CI on a loaded machine)
        if not tls and any(said in reason for said in ("Connection reset by peer", "Connection closed by server",
                                                       "Connection lost")):
            return (f"{reason} — if this server speaks TLS, the URL is rediss://; a proxy that closes the connection "
                    "on commands it does not pass (twemproxy) cannot carry shared limits: point state.url at Redis "
                    "itself")
        if "DB index is out of range" in reason:  # SELECT past the server's `databases` (16 unless configured)
            return (f"{reason} — this server has fewer databases than the URL's number: its `databases` setting "
                    "(16 by default: 0–15) bounds it; use one of those, the same on every host")
        return reason

    def mark_down(self, reason: str) -> None:
        reason = self._scheme_hint(reason)
        self.errors += 1
        if not self.up:  # still down: /healthz says the cause now (connection refused, then LOADING for 10 s …)
            if reason != self.down_reason:
                log.info("shared state %s still unreachable: %s", self.settings.shown_url, reason)
            self.down_reason = reason
            return
        self.up = False
        self.down_since = time.monotonic()
        self.down_reason = reason
        if not self._looking:
            if reason.startswith("no answer within") and "over TLS" not in reason:
                # a one-shot `ask` on a loaded 2-core machine said this of a Redis that `models` had just found
                # reachable: the answer was late, or this process too busy to read it in time (newcomer5's walk)
                reason += (f" — {self.server_kind or 'Redis'} hung or slow, or this process too busy to read the "
                           "answer in time; on a busy machine raise state.timeout")
            log.warning("shared state %s unreachable (%s): models fall back to this process's share (%s)",
                        self.settings.shown_url, reason, self.settings.on_outage.value)
        for state in self.states.values():
            state.went_down()
        self._kick.set()

    async def _recover(self) -> None:
        """The store answers again: re-register what is held, give back, then let requests use it.

        In that order: a give-back hands the freed slots over, counting the holders registered then — given back first,
        a slot this process took on its own while cut off was not among them, and went to another process's waiter
        (the backend saw 3, limit 2, just after a host cut off alone came back)."""
        await self._beat(force=True)
        for state in self.states.values():
            await state.give_back_pending()
        self.up = True
        log.warning("shared state %s reachable again after %.1fs", self.settings.shown_url,
                    time.monotonic() - (self.down_since or time.monotonic()))
        self.down_since = None
        self.down_reason = ""
        for state in self.states.values():
            state.came_up()

    # -- background -----------------------------------------------------------------------

    async def _maintain(self) -> None:
        while not self._closing:
            try:
                if self.up:
                    await self._beat()
                else:
                    await self._recover()
            except StoreUnreachable:
                pass
            except Exception:  # a bug here must not stop the heartbeat of every slot this process holds
                if _loop_running():
                    log.exception("shared state maintenance failed")
            if self.servers is None and not self.up:
                self.servers = ()  # never reached: the address alone says which shared state this is
            if not _loop_running():
                # closed from outside any loop, mid-call (as _listen): redis-py turned the GeneratorExit into an
                # error of its own; pausing on would raise "no running event loop" from the garbage collector
                return
            pause = self.tick if self.up else min(self.tick, 0.5)
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._kick.wait()

    async def _beat(self, *, force: bool = False) -> None:
        """One round trip: the heartbeat when due (or ``force``), and the cached view."""
        # due on awake_time: after a laptop's sleep (time.monotonic stood still) the leases ran out on Redis's clock,
        # and the first tick renews — registering again the holders of requests still running, queueing the waiters
        beat = force or awake_time() - self._last_beat >= self.heartbeat
        renewing = list(self.states.values()) if beat else []
        calls: list[tuple[str, list[str], list[Any]]] = [("INSTANCES", *self._instances_call())]
        restarts = self._restart_calls()  # new connections ask too; this catches a proxy that kept ours open
        calls += restarts
        caps = self._caps_calls()
        calls += caps
        calls += [("RENEW", *state.renew_call()) for state in renewing]
        calls += [("VIEW", *state.view_call()) for state in self.states.values()]
        sent, sent_awake = time.monotonic(), awake_time()
        results = await self._pipeline(calls)
        self.registered_at = sent
        now = time.monotonic()  # the share divides by the most instances seen in the last 30 s
        counted = results[0]
        self._counts = [c for c in self._counts if now - c[0] < 30] + [(now, int(counted[0]), int(counted[1]))]
        self.instances = max(n for _, n, _ in self._counts)
        self.host_instances = max(n for _, _, n in self._counts)
        self.silent, self.host_silent = int(counted[2]), int(counted[3])
        gone = [tag.decode() for tag in counted[5:5 + int(counted[4])]]
        self._compare(counted[5 + len(gone):])
        if beat:
            self._last_beat = awake_time()
            self.renewed_at = sent
            self.renewed_awake = sent_awake
        results = results[1 + len(restarts) + len(caps):]
        for state, result in zip(renewing, results[:len(renewing)], strict=True):
            state.renewed(result, sent_awake)
        for state, result in zip(self.states.values(), results[len(renewing):], strict=True):
            state.viewed(result)
        self.view_at = time.monotonic()
        self.view_awake = sent_awake
        for tag in gone:  # a host's own model's keys, that host gone for good (see lua.INSTANCES)
            await self.call("FORGET", [self._instances_key, self._host_keys_key, *(f"{tag}:{k}" for k in lua.TAG_KEYS)],
                            [self.now_arg(), tag])
        if self.spend is not None:
            await shared_spend.share(self, self.spend)
        if self.view_at - self._server_at >= SERVER_EVERY:
            self._server_at = self.view_at
            await self._read_server()
            await self._read_eviction()
            self.spawn(self._record_log_place())  # a courtesy for `stats`: never on the heartbeat's path
        if self.view_at - self._registry_at >= namespaces.EVERY:
            self._registry_at = self.view_at
            await self._namespaces(json.dumps({"namespace": self._namespace(), "backends": self.backends},
                                              sort_keys=True))

    async def _read_server(self) -> None:
        assert self._client is not None
        async with self._gate:  # every read of the link's client takes its turn: one connection each
            info = await _server_info(self._client, self.settings.timeout)
        run = str(info["run_id"]) if info.get("run_id") else None
        if info:
            self.server_kind = server_kind(info)
        now = time.monotonic()
        if run is not None:
            self._servers_read[run] = now
        self._servers_read = {r: at for r, at in self._servers_read.items() if now - at < SERVER_KEPT}
        self.servers = tuple(sorted(self._servers_read))

    async def _record_log_place(self) -> None:
        """Where this process logs, kept in Redis for `stats` on the other hosts (:mod:`.log_places`); a look does
        not record."""
        place = self._log_place()
        if place is None or self._client is None or self._looking:
            return
        async with self._gate:
            await log_places.record(self._client, self.prefix, place.host, place.target,
                                    "" if place.identity == LOG_PENDING else place.identity or "",
                                    self.settings.timeout)

    async def _read_eviction(self) -> None:
        """Read whether the server may evict this prefix's keys (at start, then with its identity: CONFIG SET changes
        it live); a change is logged once, a reading the outage prevents keeps the last one."""
        before = self.eviction
        if self._client is None or (before is not None and before.policy is None):
            return  # neither CONFIG nor INFO may be run: asked once (each refusal is an entry in Redis's ACL LOG)
        try:
            async with self._gate:
                found = await eviction.read(self._client, self.settings.timeout,
                                            config=before is None or not before.config_refused)
        except (TimeoutError, RedisError, OSError):
            return
        note = found.warning() or found.unread_note()
        if note and note != self.eviction_note and not self._looking:
            log.warning("shared state %s: %s", self.settings.shown_url, note)
        self.eviction_note, self.eviction = note, found

    # -- namespaces (see .namespaces) -----------------------------------------------------

    def _namespace(self) -> str:
        db = self._client.connection_pool.connection_kwargs.get("db", 0) if self._client is not None else 0
        return namespaces.describe(int(db or 0), self.prefix)

    async def _namespaces(self, entry: str) -> None:
        """Register in the fixed registry (``entry``: JSON; "-" only looks, "" leaves) and say what is counted apart.
        Never marks the link down: a failure here skips one look, an ACL's refusal stops looking."""
        if self._registry_off or not self.backends or self._client is None:
            return
        if self._registry_client is None:
            pool = self._client.connection_pool
            if int(pool.connection_kwargs.get("db", 0) or 0) == 0:
                self._registry_client = self._client
            else:  # a client of its own on database 0 of the same server, closed with the link's (from_pool: its
                # aclose closes the pool too; Redis(connection_pool=…) left the connection open for the collector)
                self._registry_client = Redis.from_pool(type(pool)(
                    connection_class=pool.connection_class, **{**pool.connection_kwargs, "db": 0}))
            self._registry_script = self._registry_client.register_script(namespaces.REGISTER)
        assert self._registry_script is not None
        try:
            async with self._gate, within(self.settings.timeout):
                others = await self._registry_script(keys=[namespaces.REGISTRY, namespaces.ALIVE],
                                                     args=[self.instance, namespaces.TTL_MS, entry,
                                                           namespaces.KEY_TTL_MS])
        except (TimeoutError, DroppedConnection, OSError):
            return
        except RedisError as exc:  # not this link's health either way
            if StoreFault.of(exc, str(exc)) is not StoreFault.NOPERM:
                return  # READONLY, MISCONF, LOADING …: passing, the next look may work
            self._registry_off = True  # an ACL without database 0 or the key: it will not change while this runs
            log.info("shared state %s: which processes count the same backend apart is not checked (%s)",
                     self.settings.shown_url, failure(exc, self.server_kind))
            return
        if entry == "":
            return
        found = namespaces.splits(self.backends, self._namespace(), list(others))
        if found and found != self.splits:
            log.warning("shared state %s: the same backend is limited apart — in different namespaces of this Redis "
                        "server, or under different model names — so each hands out the whole max_concurrent (use one "
                        "state.url database, one state.prefix and one model name per server on every host): %s",
                        self.settings.shown_url, "; ".join(found))
        self.splits = found

    async def _close_registry(self) -> None:
        client, self._registry_client, self._registry_script = self._registry_client, None, None
        if client is not None and client is not self._client:
            with contextlib.suppress(Exception):
                await client.aclose()

    def held_back_in(self) -> float:
        """Seconds until every other process surely holds this one's outage share back: it has been silent for
        ``silent_ms`` and each of them has counted the processes since (a tick, bounded by ``timeout``). 0 while the
        store answers, and for a process that never registered (it has no share to hold back)."""
        if self.up or self.registered_at is None:
            return 0.0
        at = self.registered_at + self.safe.held_back_after
        return max(0.0, at - time.monotonic())

    def view_fresh(self) -> bool:
        """The cached view was read within the last two ticks (the background loop is keeping up). Measured on
        :func:`awake_time`, from when its round trip was sent: ``time.monotonic`` stands still while a laptop sleeps
        (Linux's CLOCK_MONOTONIC stops in suspend, CLOCK_BOOTTIME does not), so the first request after a resume passed
        a breaker as closed from a view read before the sleep — one another process had opened meanwhile."""
        return (self.view_awake is not None
                and awake_time() - self.view_awake <= 2 * self.tick + self.settings.timeout)

    async def sync(self, state: RedisState) -> None:
        """Renew one model now (the store lost its data, or a grant may have been missed)."""
        sent = awake_time()
        state.renewed(await self.call("RENEW", *state.renew_call()), sent)

    async def _listen(self) -> None:
        """Wake granted waiters. A message lost while (re)connecting is caught by the next heartbeat.

        The listener's connection only reads and may be idle for hours: a NAT or firewall that forgot the flow, or
        a server moved away without a RST, leaves it open and silent, and a read without a bound waits forever —
        every grant would then wait for the heartbeat. So a quiet connection is pinged every tick, and one that does
        not answer within ``state.timeout`` is dropped and subscribed again."""
        assert self._client is not None
        loop = asyncio.get_running_loop()
        pause = 0.05
        while not self._closing:
            pubsub = self._client.pubsub()
            try:
                async with within(self.settings.timeout):  # its connect: the client has no bound of its own
                    await pubsub.subscribe(self.channel)
                pause = 0.05
                for state in list(self.states.values()):
                    if state.waiting:
                        self.spawn(self._sync_quietly(state))
                pinged: float | None = None
                while True:
                    message = await pubsub.get_message(timeout=self.tick)
                    if message is not None:  # anything heard (a grant, a pong, a subscribe reply): it is alive
                        if message["type"] == "pong" and pinged is not None:
                            # one round trip, timed while the calls cannot be (the link down for a bound too short)
                            self._timed(loop.time() - pinged, self.round_trips.opened)
                        pinged = None
                        if message["type"] == "message":
                            self._dispatch(message["data"])
                    elif pinged is None:
                        async with within(self.settings.timeout):
                            await pubsub.ping()
                        pinged = loop.time()
                    elif loop.time() - pinged > self.settings.timeout:
                        break  # silent: start over on a new connection
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            finally:
                if _loop_running():
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            if not _loop_running():
                # closed from outside any loop: the task was left pending by a loop that stopped without us and is
                # being collected. redis-py may have turned the GeneratorExit into an error of its own (caught
                # above); sleeping on would raise "no running event loop" from the garbage collector
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _sync_quietly(self, state: RedisState) -> None:
        with contextlib.suppress(StoreUnreachable):
            await self.sync(state)

    def lease_may_have_run_out(self) -> bool:
        """This loop last renewed more than a holder's lease ago: the process was stopped (SIGSTOP, a VM paused, a
        laptop asleep) or its loop stalled, and a slot granted to it meanwhile may have run out — and gone to
        another process — before it could read the grant."""
        return awake_time() - self.renewed_awake > self.window_ms / 1000

    def _dispatch(self, data: bytes) -> None:
        """Hand each granted token its slot — unless the grant may have run out while this process could not read it:
        then Redis says (RENEW) whether the token still holds, or queues it again."""
        unsure = self.lease_may_have_run_out()
        for raw in data.split():
            token = raw.decode()
            state = self.waiters.get(token)
            if state is not None:
                if unsure:
                    state.confirm_grant()
                else:
                    state.granted(token)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> LinkStatus:
        age = None if self.view_at is None else time.monotonic() - self.view_at
        if self.up:
            detail = f"reachable, {self.instances} instance(s)" if self.view_at else "connecting"
        else:
            since = time.monotonic() - (self.down_since or time.monotonic())
            detail = (f"unreachable for {since:.0f}s ({self.down_reason}); "
                      f"on_outage={self.settings.on_outage.value}")
            if (share_in := self._full_share_in()) > 0:
                detail += (f"; its whole outage share in {share_in:.1f}s (until the others hold it back, only the "
                           "slots it held)")
        limits = [f for f in self.disagreements if not f.startswith(_NOT_LIMITS)]
        if self.up and limits:
            detail += (f"; limits differ: {'; '.join(limits)} (every process hands out the smallest: give every host "
                       "the same config and restart the odd one out)")
        if self.up and (settings := [f.removeprefix(_SETTINGS) for f in self.disagreements
                                     if f.startswith(_SETTINGS)]):
            detail += (f"; state settings differ: {'; '.join(settings)} (each process keeps its slots, takes its "
                       "outage share and waits after a loss as the slowest needs: give every host the same state:)")
        if self.up and (others := [f.removeprefix(versions.SAID) for f in self.disagreements
                                   if f.startswith(versions.SAID)]):
            detail += f"; other modelyard versions: {'; '.join(others)} ({versions.RISK})"
        if self.up and (logs := [f for f in self.disagreements if f.startswith("routing log: ")]):
            detail += f"; logs differ: {'; '.join(f.removeprefix('routing log: ') for f in logs)}"
        if self.up and self.silent:
            detail += (f"; {self.silent} instance(s) silent (cut off from Redis or stopped): their outage share is "
                       "held back")
        if self.up and self.splits:
            detail += f"; counted apart: {'; '.join(self.splits)}"
        if self.clock_note:
            detail += f"; {self.clock_note}"
        if self.eviction_note:
            detail += f"; {self.eviction_note}"
        if self.slow_note:
            detail += f"; {self.slow_note}"
        return LinkStatus(self.settings.shown_url, self.prefix, self.up, detail, self.instances, age, self.errors,
                          list(self.disagreements), list(self.splits), self._full_share_in())

    def _full_share_in(self) -> float:
        """Alone (one instance last seen) nobody else hands the limit out: the whole share at once."""
        if self.settings.on_outage is not OnOutage.SHARE or self.instances <= 1:
            return 0.0
        return self.held_back_in()

