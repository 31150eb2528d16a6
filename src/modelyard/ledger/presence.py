"""Which shared state each host writing to one PostgreSQL routing log uses — so hosts that share the log but not the
limits are said, not silent.

Hosts on one Redis see each other there (limits, log targets, namespaces: :mod:`modelyard.router.shared`). A host
whose ``state.url`` names *another* Redis server (a typo, each host's own ``redis://127.0.0.1``) or none sees
nothing of the others, and each hands out the whole ``max_concurrent`` of the same backends. What they still share
is the log: so each forwarder records, every :data:`EVERY` seconds, the shared state its host uses (``host:port/db
prefix``, never a password; a loopback server named with its host) in a small table of the PostgreSQL log, and reads
the others'. ``models`` reads it too. The table is a courtesy: any failure here skips one look.

The address is not the server: hosts that reach one Redis through each host's own ``127.0.0.1`` (an SSH tunnel, a
stunnel or sidecar per host) record different addresses for the same server, and were told they limit apart. So each
also records the Redis server's own identity, its ``run_id`` (``INFO server``; every id read in the last two minutes:
a restart changes it, and the hosts read it at different moments), and two hosts whose ids meet, on the same database
and prefix, use one shared state whatever the address. Without an id (an ACL that forbids ``INFO``, an older
version) the address decides, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: how often a forwarder records its host and reads the others'; an entry older than :data:`FRESH` is gone
EVERY = 30.0
FRESH = 3 * EVERY
#: a row not renewed for this long belongs to a host gone for good (removed, renamed): deleted by the next record
FORGET = 24 * 3600.0

TABLE = "log_presence"
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (who TEXT PRIMARY KEY, host TEXT NOT NULL, state TEXT NOT NULL, "
           "seen DOUBLE PRECISION NOT NULL, servers TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT '')")
#: a table an older version created has no ``servers`` or ``kind``
_ADD_COLUMNS = (f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS servers TEXT NOT NULL DEFAULT '', "
                "ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT ''")

#: ``kind`` of a command that sends one request at a time (``ask``, ``chat``): limited apart, it adds at most one
#: request beyond a limit while it runs — listed, but it does not make the gateways degraded (an ``ask`` from a laptop
#: whose config has no ``state:`` turned every gateway degraded for 90 s, though nothing there was wrong)
ONE_AT_A_TIME = "one-at-a-time"
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"

#: what a process without shared state records (its limits are its own)
NONE = "no shared state (limits in each process)"


def record(pg: Any, who: str, host: str, state: str, servers: Sequence[str] = (), kind: str = "") -> None:
    """``servers``: the run ids of the Redis server this host's shared state reached lately (none: not known);
    ``kind``: :data:`ONE_AT_A_TIME` for ``ask`` and ``chat``, else ''."""
    try:
        pg.execute(_CREATE)
    except Exception as exc:  # two hosts creating it at once: PostgreSQL refuses the second (pg_type's unique key)
        if "already exists" not in str(exc):
            raise
    insert = (f"INSERT INTO {TABLE} (who, host, state, seen, servers, kind) VALUES (?, ?, ?, {_NOW}, ?, ?) "
              "ON CONFLICT (who) DO UPDATE SET host = EXCLUDED.host, state = EXCLUDED.state, seen = EXCLUDED.seen, "
              "servers = EXCLUDED.servers, kind = EXCLUDED.kind")
    values = (who, host, state, " ".join(servers), kind)
    try:
        pg.execute(insert, values)
    except Exception as exc:
        if "servers" not in str(exc) and "kind" not in str(exc):
            raise
        pg.execute(_ADD_COLUMNS)
        pg.execute(insert, values)
    pg.execute(f"DELETE FROM {TABLE} WHERE seen < {_NOW} - ?", (FORGET,))


@dataclass(frozen=True, slots=True)
class Look:
    """What the other hosts on the log use, as sentences: ``apart``, processes that limit the same models apart (a
    gateway, a bot: degraded); ``one_at_a_time``, ``ask`` or ``chat`` doing so (at most one request over: listed)."""

    apart: list[str]
    one_at_a_time: list[str]


def look(pg: Any, state: str, servers: Sequence[str] = (), *, exclude: str = "") -> Look:
    """Hosts seen within :data:`FRESH` that record another shared state than ``state`` (on ``servers``). One that
    records another address but a server id of ``servers``, with the same database and prefix, reached the same Redis
    another way (a tunnel): not another shared state."""
    try:
        rows = pg.execute(f"SELECT *, {_NOW} - seen AS age FROM {TABLE} WHERE seen > {_NOW} - ? AND state <> ? "
                          "AND who <> ?", (FRESH, state, exclude)).fetchall()
    except Exception as exc:  # the table not there yet (no forwarder ran), or no right to read it
        if "does not exist" in str(exc) or "log_presence" in str(exc):
            return Look([], [])
        raise
    ages: dict[tuple[bool, str, str], float] = {}
    for row in rows:
        if not same_server(state, servers, row["state"], _servers_of(row)):
            key = (_column(row, "kind") == ONE_AT_A_TIME, row["host"], row["state"])
            ages[key] = min(ages.get(key, row["age"]), row["age"])
    # a host with a gateway apart is said once, as apart, not again for its ask
    apart = {(host, theirs) for (one, host, theirs) in ages if not one}
    said = {(one, host, theirs): f"{host} uses {theirs} (seen {age:.0f}s ago)"
            for (one, host, theirs), age in sorted(ages.items()) if not (one and (host, theirs) in apart)}
    return Look([text for (one, _, _), text in said.items() if not one],
                [text.replace(" (seen", " for ask/chat: one request at a time (seen", 1)
                 for (one, _, _), text in said.items() if one])


def others(pg: Any, state: str, servers: Sequence[str] = (), *, exclude: str = "") -> list[str]:
    """:func:`look`'s processes apart (a gateway, a bot): what makes a host degraded."""
    return look(pg, state, servers, exclude=exclude).apart


def _column(row: Any, name: str) -> str:
    try:
        return str(row[name] or "")
    except (IndexError, KeyError):  # a table of an older version, not altered yet
        return ""


def _servers_of(row: Any) -> list[str]:
    return _column(row, "servers").split()


#: the database and prefix of a :func:`fingerprint` (``redis HOST:PORT/DB prefix 'P'``, ``redis unix:PATH@HOST db DB
#: prefix 'P'``): what must match beside the server
_NAMESPACE = re.compile(r"^redis .+?(?:/| db )(?P<db>[^/ ]+) prefix '(?P<prefix>.*)'$", re.S)


def same_server(mine: str, my_servers: Sequence[str], theirs: str, their_servers: Sequence[str]) -> bool:
    """Two fingerprints name one shared state: the same text, or one Redis server (a run id both read lately) with
    the same database and prefix, reached at different addresses."""
    if mine == theirs:
        return True
    if not set(my_servers) & set(their_servers):
        return False
    a, b = _NAMESPACE.match(mine), _NAMESPACE.match(theirs)
    return a is not None and b is not None and a.group("db", "prefix") == b.group("db", "prefix")


def hosts_of(said: Sequence[str]) -> list[str]:
    """:func:`look`'s sentences without how long ago each host was seen: what changes the picture (each look's ages
    differ, and a warning compared with them was repeated at every look, every 30 s)."""
    return [text.split(" (seen ", 1)[0] for text in said]


def sentence(differ: list[str], mine: str) -> str:
    return (f"hosts writing to this routing log limit the same models apart: this host uses {mine}; "
            f"{'; '.join(differ)} — use one state.url on every host")


_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}


def fingerprint(url: str | None, prefix: str, host: str) -> str:
    """Which shared state a process uses, without its password: ``redis HOST:PORT/DB prefix 'P'`` (a loopback server
    named with ``host``: each host's 127.0.0.1 is another machine); :data:`NONE` without one."""
    if not url:
        return NONE
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis unix:{parts.path}@{host} db {parse_qs(parts.query).get('db', ['0'])[0]} prefix '{prefix}'"
    name = parts.hostname or ""
    server = host if name in _LOOPBACK else name
    return f"redis {server}:{parts.port or 6379}/{parts.path.strip('/') or '0'} prefix '{prefix}'"
