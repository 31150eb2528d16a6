"""Which PostgreSQL routing log a process writes to, told by the server rather than by the address (real PostgreSQL,
real Redis, real PgBouncer).

Front-ends sharing a serve, and hosts sharing limits through Redis, are warned when their processes log to different
places ("logs differ"). The address alone said it wrong both ways: two hosts each logging to their own server at
``postgresql://localhost/modelyard`` registered the same text (no warning, each host's ``log`` silently lacks the
other's requests), and libpq's unix-socket form ``?host=/var/run/postgresql`` lost its socket. The Redis side compares
the server's ``run_id`` for the same reason; here it is the cluster's ``system_identifier`` (pg_control_system(),
https://www.postgresql.org/docs/current/functions-info.html — "database system identifier", kept by clones and
backups, hence the timeline beside it), the database and the schema.

A bad ``PGSSLMODE`` in the environment failed only at connect ("invalid sslmode value", naming no variable — the
error users of node-postgres met with PGSSLMODE=true, brianc/node-postgres#2299; libpq's six values:
https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-SSLMODE).
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from tests.helpers import make_config
from tests.pg import ADMIN_URL, Bouncer, OwnServer, scratch_database, with_database
from tests.shared import conftest as shared_fixtures
from tests.shared.redis_kit import short_lease
from tests.unit.test_ledger import record

from modelyard.config import dburl
from modelyard.config.loader import ConfigError, load_config
from modelyard.ledger.pg import PgConnection
from modelyard.router import ModelPool
from modelyard.runtime import open_runtime

redis_url, prefix = shared_fixtures.redis_url, shared_fixtures.prefix  # the real Redis, a prefix of the test's own


def _identity(url: str) -> str:
    conn = PgConnection(url, migrate_schema=False)
    try:
        return conn.identity()
    finally:
        conn.close()


def test_a_unix_socket_url_keeps_its_socket_and_reaches_the_log_tcp_reaches(monkeypatch: pytest.MonkeyPatch) -> None:
    """``postgresql://postgres@/postgres?host=/dir&port=N`` is libpq's socket form (the Debian default socket is
    /var/run/postgresql): ``where`` kept none of it, so every socket URL named 'postgresql:///postgres'."""
    monkeypatch.delenv("PGHOST", raising=False)
    server = OwnServer()
    try:
        by_socket = f"postgresql://postgres@/postgres?host={server.root}&port={server.port}"
        shown = dburl.where(by_socket)
        assert shown == f"postgresql:///postgres?host={server.root}&port={server.port}"
        assert dburl.on_this_host(shown) and dburl.on_this_host(dburl.where(server.url))
        assert not dburl.on_this_host(dburl.where("postgresql://u:pw@db.internal:5432/modelyard"))
        mine = _identity(by_socket)
        assert mine and mine == _identity(server.url)  # the socket and TCP: one server, one log
        assert mine.split(":")[0] != _identity(with_database(ADMIN_URL, "postgres")).split(":")[0]
    finally:
        server.close()


def test_the_identity_is_read_by_an_unprivileged_role_and_through_a_transaction_pooler() -> None:
    """What a team's log role usually is (no superuser, no pg_monitor), behind PgBouncer in transaction pooling."""
    role = f"modelyard_plain_{time.monotonic_ns() % 10**9}"
    with scratch_database() as direct, Bouncer(direct) as bouncer:
        with psycopg.connect(direct, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN")
        try:
            plain = direct.replace("postgres@", f"{role}@", 1)
            expected = _identity(direct)
            assert expected.count(":") == 3 and expected.endswith(":public"), expected
            assert _identity(plain) == expected
            assert _identity(bouncer.url) == expected
        finally:
            with psycopg.connect(direct, autocommit=True) as conn:
                conn.execute(f"DROP ROLE IF EXISTS {role}")


async def test_two_hosts_each_on_its_own_localhost_server_are_told_their_logs_differ(
        redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One config copied to two hosts, ``log.url: postgresql://postgres@localhost/postgres``, each host with a
    PostgreSQL of its own: the same text was registered by both, so neither heard that `log` on one lacks the
    other's requests. Each host's identity is its own server's (here: the shared one, and a throwaway one)."""
    server = OwnServer()
    url = "postgresql://postgres@localhost/postgres"

    def config(name: str):
        return make_config({"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}}, {"a": {"primary": "m"}},
                           log={"path": str(tmp_path / f"{name}.sqlite3"), "url": url})

    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=2)
    host_a = ModelPool(config("a"), shared=settings)
    monkeypatch.setattr(socket, "gethostname", lambda: "team-host-b")
    host_b = ModelPool(config("b"), shared=settings)
    try:
        ids = {"a": _identity(with_database(ADMIN_URL, "postgres")), "b": _identity(server.url)}
        assert ids["a"] and ids["b"] and ids["a"] != ids["b"]
        for pool, name in ((host_a, "a"), (host_b, "b")):
            assert pool.link is not None
            pool.link.log_identity = lambda name=name: ids[name]
            pool.join()
        link = host_a.link
        assert link is not None
        deadline = time.monotonic() + 20
        while not link.disagreements:
            assert time.monotonic() < deadline, "host A never heard that host B logs to another server"
            await asyncio.sleep(0.05)
        shown = dburl.where(url)
        assert link.disagreements[0].startswith(f"routing log: {shown} on {link.host} here, "
                                                f"{shown} on team-host-b at team-host-b:"), link.disagreements
        assert "logs differ" in link.status().detail
    finally:
        await host_a.aclose()
        await host_b.aclose()
        server.close()


async def test_two_hosts_reaching_one_log_through_a_tunnel_each_are_not_told_apart(
        redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_database: str) -> None:
    """Host A names the server 127.0.0.1, host B reaches the same one through its own tunnel at localhost: the
    addresses differ, the log does not — it was said to differ ('logs differ' in /healthz) for as long as both ran.
    The runtime's forwarder reads the identity and the link registers it."""
    by_ip = pg_database
    by_name = pg_database.replace("127.0.0.1", "localhost", 1)
    assert by_ip != by_name and dburl.where(by_ip) != dburl.where(by_name)
    state = {"url": redis_url, "prefix": prefix, "lease": 3, "refresh": 0.1, "timeout": 0.2}

    def config(name: str, url: str):
        return make_config({"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}}, {"a": {"primary": "m"}},
                           log={"path": str(tmp_path / f"{name}.sqlite3"), "url": url}, state=state)

    host_a = open_runtime(config=config("a", by_ip))
    monkeypatch.setattr(socket, "gethostname", lambda: "team-host-b")
    host_b = open_runtime(config=config("b", by_name))
    try:
        links = [host_a.pool.link, host_b.pool.link]
        assert all(link is not None for link in links)
        for i, host in enumerate((host_a, host_b)):  # each host logs a request, sent on to PostgreSQL
            host.pool.join()
            host.log.submit(record(i))
            assert host.log.flush(20) and host.forwarder is not None and host.forwarder.flush(20)
        deadline = time.monotonic() + 30
        while any(link.instances < 2 for link in links if link is not None):
            assert time.monotonic() < deadline, "the two hosts never saw each other"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # several heartbeats, each registering where the log goes
        with psycopg.connect(pg_database) as conn:
            assert conn.execute("SELECT count(*) FROM requests").fetchone() == (2,)  # one log: both are in it
        for link in links:
            assert link is not None
            assert not [d for d in link.disagreements if d.startswith("routing log: ")], link.disagreements
    finally:
        await host_a.aclose()
        await host_b.aclose()


def test_a_bad_pgsslmode_is_named_when_the_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PGSSLMODE=requir: libpq refuses it at every connect, saying 'invalid sslmode value: "requir"' — no variable
    named, and the config had no sslmode at all. Now the load says which variable and what it may be; a URL whose own
    sslmode= overrides it (libpq reads the variable only for what the URL leaves out) loads."""
    monkeypatch.setenv("PGSSLMODE", "requir")
    with pytest.raises(psycopg.OperationalError, match="sslmode"):
        psycopg.connect(with_database(ADMIN_URL, "postgres"), connect_timeout=5).close()  # what libpq said
    path = tmp_path / "modelyard.yaml"

    def write(url: str) -> Path:
        path.write_text(yaml.safe_dump({"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
                                        "agents": {"a": {"primary": "m"}},
                                        "log": {"path": str(tmp_path / "log.sqlite3"), "url": url}}))
        return path

    with pytest.raises(ConfigError) as caught:
        load_config(write(with_database(ADMIN_URL, "test")))
    said = str(caught.value)
    assert "PGSSLMODE='requir'" in said and "did you mean 'require'" in said, said
    assert all(mode in said for mode in dburl.SSLMODES), said
    overridden = with_database(ADMIN_URL, "test") + "?sslmode=disable"
    assert load_config(write(overridden)).log.url == overridden
    conn = PgConnection(overridden, migrate_schema=False)  # and libpq agrees: it connects
    conn.close()
