"""Which shared state each host writing to one PostgreSQL routing log uses — so hosts that share the log but not the
limits are said, not silent.

Hosts on one Redis see each other there (limits, log targets, namespaces: :mod:`modelyard.router.shared`). A host
whose ``state.url`` names *another* Redis server (a typo, each host's own ``redis://127.0.0.1``) or none sees
nothing of the others, and each hands out the whole ``max_concurrent`` of the same backends. What they still share
is the log: so each forwarder records, every :data:`EVERY` seconds, the shared state its host uses (``host:port/db
prefix``, never a password; a loopback server named with its host) in a small table of the PostgreSQL log, and reads
the others'. ``models`` reads it too. The table is a courtesy: any failure here skips one look.
"""

from __future__ import annotations

from typing import Any

#: how often a forwarder records its host and reads the others'; an entry older than :data:`FRESH` is gone
EVERY = 30.0
FRESH = 3 * EVERY

TABLE = "log_presence"
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (who TEXT PRIMARY KEY, host TEXT NOT NULL, state TEXT NOT NULL, "
           "seen DOUBLE PRECISION NOT NULL)")
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"

#: what a process without shared state records (its limits are its own)
NONE = "no shared state (limits in each process)"


def record(pg: Any, who: str, host: str, state: str) -> None:
    try:
        pg.execute(_CREATE)
    except Exception as exc:  # two hosts creating it at once: PostgreSQL refuses the second (pg_type's unique key)
        if "already exists" not in str(exc):
            raise
    pg.execute(f"INSERT INTO {TABLE} (who, host, state, seen) VALUES (?, ?, ?, {_NOW}) ON CONFLICT (who) DO UPDATE "
               f"SET host = EXCLUDED.host, state = EXCLUDED.state, seen = EXCLUDED.seen", (who, host, state))


def others(pg: Any, state: str, *, exclude: str = "") -> list[str]:
    """Hosts seen within :data:`FRESH` that record another shared state than ``state``, as sentences."""
    try:
        rows = pg.execute(f"SELECT host, state, MIN({_NOW} - seen) AS age FROM {TABLE} WHERE seen > {_NOW} - ? "
                          "AND state <> ? AND who <> ? GROUP BY host, state ORDER BY host, state",
                          (FRESH, state, exclude)).fetchall()
    except Exception as exc:  # the table not there yet (no forwarder ran), or no right to read it
        if "does not exist" in str(exc) or "log_presence" in str(exc):
            return []
        raise
    return [f"{row['host']} uses {row['state']} (seen {row['age']:.0f}s ago)" for row in rows]


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
