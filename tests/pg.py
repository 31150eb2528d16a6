"""The real PostgreSQL the tests use, and the routing log on either backend.

The shared server (127.0.0.1:5432, trust auth) is never mocked and never stopped: each test run
creates its own database (dropped at the end), each test its own schema in it. When the server
is absent the tests that need it FAIL — scripts/services.sh starts it; CI runs that first.
Tests that stop PostgreSQL start their own throwaway server (:class:`OwnServer`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest

from modelyard.ledger import LogWriter
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.store import LogConnection, LogStore
from modelyard.router.records import RequestRecord

#: the shared server; override with MODELYARD_TEST_PG (an admin URL to a maintenance database)
ADMIN_URL = os.environ.get("MODELYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} ({str(exc).strip()}): run scripts/services.sh")


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def scratch_database(encoding: str | None = None) -> Iterator[str]:
    """A uniquely named database on the shared server, dropped afterwards; yields its URL. ``encoding``: the
    database's own (``LATIN1``, ``SQL_ASCII``…), from template0 under the C locale, which takes any."""
    name = f"modelyard_test_{os.getpid()}_{secrets.token_hex(4)}"
    own = f" ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'" if encoding else ""
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"{own}')
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_schema(database_url: str) -> Iterator[str]:
    """A fresh schema in ``database_url``; yields a URL whose connections work inside it."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{database_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class SpooledWriter:
    """What a modelyard process with ``log.url`` runs: the SQLite writer plus the forwarder to PostgreSQL."""

    def __init__(self, path: Path, url: str, local_models: Iterable[str], backends: Mapping[str, str] | None = None):
        self.log = LogWriter(path, local_models=local_models, backends=backends or {})
        self.forwarder = Forwarder(path, url)
        self.log.on_commit(self.forwarder.wake)

    def submit(self, record: RequestRecord) -> None:
        self.log.submit(record)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.log.flush(timeout) and self.forwarder.flush(timeout)

    def close(self) -> None:
        self.log.close()
        assert self.forwarder.flush(30.0), self.forwarder.health()
        self.forwarder.close()


@dataclass
class LogBackend:
    """One routing log under test: SQLite only, or PostgreSQL (with the SQLite file as its spool)."""

    name: str
    path: Path
    url: str | None = None
    _open: list[Any] = field(default_factory=list)

    @property
    def store(self) -> LogStore:
        return LogStore(self.path, self.url)

    def writer(self, local_models: Iterable[str] = (), backends: Mapping[str, str] | None = None) -> Any:
        """``backends``: model -> its server in the writing config (kept on each attempt)."""
        if self.url is None:
            return LogWriter(self.path, local_models=local_models, backends=backends or {})
        return SpooledWriter(self.path, self.url, local_models, backends)

    def connect(self) -> LogConnection:
        conn = self.store.connect()
        self._open.append(conn)
        return conn

    def adopt(self, conn: Any) -> Any:
        """Close ``conn`` with this backend: a connection the test opened another way (one left open was a
        psycopg ResourceWarning when the collector took it)."""
        self._open.append(conn)
        return conn

    def log_config(self) -> dict[str, Any]:
        return {"path": str(self.path), **({"url": self.url} if self.url else {})}

    def close(self) -> None:
        for conn in self._open:
            with contextlib.suppress(Exception):
                conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path is None:
        pytest.fail(f"PostgreSQL's {name} is not installed (Debian: postgresql)")
    return on_path


class OwnServer:
    """A throwaway PostgreSQL (initdb in a temp dir, pg_ctl on an ephemeral port) that a test may stop
    and start at will: the shared server on 5432 is never touched. As root, it runs as ``postgres``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))  # not under pytest's 0700 tmp: postgres reads it
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres")
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        self.start()

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self._as, *argv], capture_output=True, timeout=120, text=True)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Bouncer:
    """PgBouncer (Debian: pgbouncer) on an ephemeral loopback port in front of the shared server, in *transaction*
    pooling — what most teams put between many clients and one PostgreSQL. Each transaction may run on another
    server connection; ``server_round_robin`` makes that happen every time here, so anything that lives on one
    server connection (a prepared statement, a SET) is found missing on the next transaction. ``pool_mode="session"``
    gives each client one server connection for as long as it stays connected, PgBouncer's default."""

    def __init__(self, database_url: str, pool_size: int = 2,
                 pool_mode: Literal["session", "transaction"] = "transaction"):
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(exe).exists():
            pytest.skip("pgbouncer is not installed (Debian: pgbouncer; scripts/bootstrap.sh installs it as root)")
        self.root = Path(tempfile.mkdtemp(prefix="modelyard-pgbouncer-"))  # not under pytest's 0700 tmp
        self.root.chmod(0o755)
        self.port = free_port()
        upstream = psycopg.conninfo.conninfo_to_dict(database_url)
        name = upstream["dbname"]
        ini = self.root / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\n{name} = host={upstream.get('host', '127.0.0.1')} port={upstream.get('port', 5432)} "
            f"user={upstream.get('user', 'postgres')} dbname={name}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = any\npool_mode = {pool_mode}\n"
            f"default_pool_size = {pool_size}\nmin_pool_size = {pool_size}\nserver_round_robin = 1\n"
            "ignore_startup_parameters = extra_float_digits\n")
        ini.chmod(0o644)
        as_user = ["-u", "nobody"] if os.geteuid() == 0 else []  # pgbouncer refuses to run as root
        with open(self.root / "pgbouncer.log", "wb") as log:  # the child keeps its own copy; ours was left open
            self.proc = subprocess.Popen([exe, *as_user, str(ini)], stdout=subprocess.DEVNULL, stderr=log)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{name}"
        for _ in range(100):
            try:
                psycopg.connect(self.url, connect_timeout=2, prepare_threshold=None).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.close()
        raise RuntimeError(f"pgbouncer did not start: {(self.root / 'pgbouncer.log').read_text()[-500:]}")

    def __enter__(self) -> Bouncer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)
