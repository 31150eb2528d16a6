"""The routing log and the state shared across hosts, round 13: each case against the real PostgreSQL and Redis.

Cases (each names its source where it came from outside):

- a model name served by a cloud API and by a local relay (two configs sharing one log): "price unknown" is the
  cloud server's, not the name's;
- two hosts that share Redis slots but have no ``log.url`` (each its own SQLite file) are told so, once, at ``serve``
  and in ``stats``; a host alone hears nothing;
- two hosts each on its own copy of one PostgreSQL cluster (its files copied: same system identifier, timeline, oid)
  are said to log apart; one server reached at two addresses is still one log;
- ``modelyard backup`` copies a SQLite log whole while a writer commits and checkpoints run;
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.helpers import make_config
from tests.integration.test_pg_identity import _identity
from tests.pg import LogBackend, OwnServer, free_port
from tests.shared import conftest as shared_fixtures
from tests.shared.redis_kit import delete_prefix, short_lease
from tests.unit.test_ledger import record
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config import load_config
from modelyard.ledger.cost import log_costs
from modelyard.ledger.pg import PgConnection
from modelyard.ledger.probes import backends_of
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router import ModelPool
from modelyard.router.records import Attempt, RequestRecord
from modelyard.runtime import open_runtime

redis_url, prefix = shared_fixtures.redis_url, shared_fixtures.prefix  # the real Redis, a prefix of the test's own

runner = CliRunner()
QWEN = "qwen"


def _write_config(path: Path, log_backend: LogBackend, endpoint: str) -> Path:
    path.write_text(yaml.safe_dump({
        "log": log_backend.log_config(),
        "models": {QWEN: {"provider": "openai", "model": "qwen/qwen3-32b", "endpoint": endpoint,
                          "api_key_env": "NO_KEY_HERE"}},
        "agents": {"chat": {"primary": QWEN}}}))
    return path


def test_price_unknown_is_the_cloud_servers_not_the_local_relays_of_the_same_name(
        tmp_path: Path, log_backend: LogBackend) -> None:
    """One name, two servers, one log: host A's ``qwen`` is OpenRouter's (billed per token, no ``price`` in its
    config), host B's ``qwen`` a llama-server relay on its own box (free). LiteLLM users met the same split as spend
    put on the wrong deployment of one model name (its spend logs key on ``model`` and ``model_group``;
    BerriAI/litellm#3373 asks for per-deployment figures). "price unknown" went by the name in the reading config:
    under B's config A's 2 unpriced cloud answers were counted free (spend shown as an exact $0.00, `log`'s cost
    cells $0.0000), and `stats` and `report` said "price unknown" on both servers' rows of the name. Per server
    (``attempts.backend``) now."""
    cloud = _write_config(tmp_path / "a.yaml", log_backend, "https://openrouter.ai/api/v1")
    relay = _write_config(tmp_path / "b.yaml", log_backend, "http://127.0.0.1:8080/v1")
    configs = {"a": load_config(cloud), "b": load_config(relay)}
    assert configs["a"].models[QWEN].billed and not configs["b"].models[QWEN].billed
    now = time.time() - 60
    for host, n in (("a", 2), ("b", 3)):
        writer = log_backend.writer(local_models=[] if host == "a" else [QWEN], backends=backends_of(configs[host]))
        for i in range(n):
            writer.submit(RequestRecord(
                f"{host}{i}", "chat", ts=now + i, outcome=RequestOutcome.OK, model=QWEN, total_ms=300,
                tokens_in=1000, tokens_out=500,
                attempts=[Attempt(QWEN, "openai", Outcome.OK, started_at=now + i, tokens_in=1000, tokens_out=500)]))
        writer.close()
    conn = log_backend.connect()
    for host in ("a", "b"):
        costs = log_costs(conn, configs[host], 0.0, time.time() + 60, 0.0)
        assert costs.unpriced == {QWEN: [2, 2000, 1000]}, (host, costs.unpriced)  # the cloud's two, either config
        assert costs.spend_text() == "$0.00+?"
    for path in (cloud, relay):  # `stats`: a row per server, 'price unknown' on the cloud's only
        out = runner.invoke(app, ["stats", "--config", str(path)], env={"COLUMNS": "200"})
        assert out.exit_code == 0, out.output
        lines = {line.split()[2]: line for line in out.output.splitlines() if line.startswith(f"{QWEN} @ ")}
        assert set(lines) == {"openrouter.ai", "127.0.0.1:8080"}, out.output
        assert "price unknown" in lines["openrouter.ai"], out.output
        assert "price unknown" not in lines["127.0.0.1:8080"] and "$0.00" in lines["127.0.0.1:8080"], out.output
        said = runner.invoke(app, ["report", "--config", str(path), "--days", "1"], env={"COLUMNS": "220"})
        assert said.exit_code == 0, said.output
        rows = [line for line in said.output.splitlines() if line.lstrip("│ ").startswith(f"{QWEN} @ ")]
        assert len(rows) == 2, said.output
        assert ["price unknown" in row for row in rows].count(True) == 1, said.output
        assert "price unknown" in next(row for row in rows if "openrouter" in row), said.output
        shown = runner.invoke(app, ["log", "--config", str(path)], env={"COLUMNS": "300"})  # its cost cells too
        assert shown.exit_code == 0, shown.output
        cells = {line.split()[0]: line for line in shown.output.splitlines() if line[:2] in ("a0", "a1", "b0", "b1")}
        assert len(cells) == 4, shown.output
        assert all("price unknown" in cells[i] for i in ("a0", "a1")), shown.output
        assert all("price unknown" not in cells[i] and "$0.0000" in cells[i] for i in ("b0", "b1")), shown.output


async def _until(check: Callable[[], object], why: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, why
        await asyncio.sleep(0.05)


def _host_config(tmp_path: Path, name: str, redis_url: str, prefix: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / f"{name}.sqlite3")},
        "state": {"url": redis_url, "prefix": prefix},
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
        "agents": {"a": {"primary": "m"}}}))
    return path


async def test_two_hosts_sharing_slots_each_with_its_own_file_are_told_at_serve_and_in_stats(
        redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Two hosts, one Redis (``state.url``), no ``log.url``: each writes its own SQLite file, and `stats`, `report`
    and the cost advice on either host counted half the traffic — nothing was said, since both registered the same
    log target ("" — this host's file). The 'logs differ' check now takes two hosts' own files as two logs (one
    warning line while both run), and `stats` reads where the hosts sharing the slots logged in the last weeks
    (Redis keeps it: the other host's gateway may be stopped when `stats` runs). Helicone and Langfuse users hit
    the same shape as 'missing requests' in a dashboard fed by one of several deployments."""
    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=2)
    configs = {name: load_config(_host_config(tmp_path, name, redis_url, prefix)) for name in ("a", "b")}
    monkeypatch.setattr(socket, "gethostname", lambda: "team-host-a")
    host_a = ModelPool(configs["a"], shared=settings)
    monkeypatch.setattr(socket, "gethostname", lambda: "team-host-b")
    host_b = ModelPool(configs["b"], shared=settings)
    caplog.set_level(logging.WARNING)
    try:
        host_a.join()
        host_b.join()
        link = host_a.link
        assert link is not None
        await _until(lambda: link.disagreements, "host A never heard that host B logs to a file of its own")
        said_here = link.disagreements[0]
        assert said_here.startswith("routing log: team-host-a's own file (no log.url) here, "
                                    "team-host-b's own file (no log.url) at team-host-b:"), link.disagreements
        assert "logs differ" in link.status().detail
        await asyncio.sleep(0.5)  # several heartbeats: said once, not at each
        said = [r.getMessage() for r in caplog.records if "own file (no log.url)" in r.getMessage()]
        assert len(said) == 2 and all("give every host one log.url" in s for s in said), said  # once by each host
    finally:
        await host_a.aclose()
        await host_b.aclose()
    # later, host B's gateway stopped: `stats` on host A still says whose requests are missing, in one line
    monkeypatch.setattr(socket, "gethostname", lambda: "team-host-a")
    out = await asyncio.to_thread(runner.invoke, app, ["stats", "--config", str(tmp_path / "a.yaml")],
                                  env={"COLUMNS": "300"})  # a command runs in no event loop
    assert out.exit_code == 0, out.output
    notes = [line for line in out.stderr.splitlines() if "this log's only" in line]
    assert len(notes) == 1 and "team-host-b (its own file, no log.url, seen" in notes[0], out.stderr
    assert "team-host-a (" not in notes[0]
    said = await asyncio.to_thread(runner.invoke, app, ["report", "--config", str(tmp_path / "a.yaml"), "--days",
                                                        "1", "--json"], env={"COLUMNS": "300"})
    assert said.exit_code == 0 and "team-host-b (its own file, no log.url" in said.stderr, said.output
    assert json.loads(said.stdout)  # --json's stdout stays JSON
    # a host alone on its slots (another prefix: only itself recorded) hears nothing
    alone = short_lease(url=redis_url, prefix=f"{prefix}-alone", lease=3, refresh=0.1, timeout=2)
    solo = ModelPool(load_config(_host_config(tmp_path, "solo", redis_url, f"{prefix}-alone")), shared=alone)
    try:
        solo.join()
        assert solo.link is not None
        await _until(lambda: solo.link is not None and solo.link.view_at is not None, "the host never reached Redis")
        await asyncio.sleep(0.3)
        assert not solo.link.disagreements
    finally:
        await solo.aclose()
        delete_prefix(f"{prefix}-alone", redis_url)
    out = await asyncio.to_thread(runner.invoke, app, ["stats", "--config", str(tmp_path / "solo.yaml")],
                                  env={"COLUMNS": "300"})
    assert out.exit_code == 0 and "this log's only" not in out.output, out.output


class CopiedServer(OwnServer):
    """A second PostgreSQL made the way a VM image or a Docker volume is cloned for another host: the stopped
    cluster's files copied (``cp -a``) and started on a port of its own — no initdb, no recovery, no new timeline."""

    def __init__(self, of: OwnServer):  # not super().__init__: that would initdb a cluster of its own
        self.root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = of._as
        of.stop()
        try:
            shutil.copytree(of.data, self.data, symlinks=True)
        finally:
            of.start()
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        if self._as:
            subprocess.run(["chown", "-R", "postgres", str(self.root)], check=True, timeout=60)
        self.start()


async def test_two_hosts_each_on_a_copy_of_one_servers_files_are_told_their_logs_differ(
        redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One PostgreSQL set up with the log's schema, then its files copied for a second host (a cloned VM image or
    Docker volume; PostgreSQL's docs: a file-system level backup of a stopped cluster is a complete copy,
    https://www.postgresql.org/docs/current/backup-file.html). The copy keeps ``system_identifier``, the timeline and
    the database's oid — everything ``PgConnection.identity`` compares — so two hosts, each with
    ``postgresql://…@localhost/postgres`` on its own copy, were taken for one log and nothing was said while each
    host's `log` lacked the other's requests. A random id written at schema creation is copied too: what tells them
    apart is a mark each forwarder writes after connecting (here: servers on 127.0.0.1 on two ports, as each host's
    own ``localhost`` would be)."""
    original = OwnServer()
    copy: CopiedServer | None = None
    try:
        PgConnection(original.url).close()  # the log's schema, before the copy (as on the image)
        copy = CopiedServer(original)
        assert _identity(original.url) == _identity(copy.url) != ""  # the premise: identical to the old check
        state = {"url": redis_url, "prefix": prefix, "lease": 3, "refresh": 0.1, "timeout": 0.2}

        def config(name: str, url: str):
            return make_config({"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}}, {"a": {"primary": "m"}},
                               log={"path": str(tmp_path / f"{name}.sqlite3"), "url": url}, state=state)

        monkeypatch.setattr(socket, "gethostname", lambda: "team-host-a")
        host_a = open_runtime(config=config("a", original.url))
        monkeypatch.setattr(socket, "gethostname", lambda: "team-host-b")
        host_b = open_runtime(config=config("b", copy.url))
        try:
            for i, host in enumerate((host_a, host_b)):
                host.pool.join()
                host.log.submit(record(i))
                assert host.log.flush(20) and host.forwarder is not None and host.forwarder.flush(20)
            links = [host_a.pool.link, host_b.pool.link]
            assert links[0] is not None and links[1] is not None
            await _until(lambda: all(link.disagreements for link in links if link is not None),
                         "the hosts on two copies never heard their logs differ", within=30)
            said = links[0].disagreements[0]
            assert said.startswith("routing log: ") and "at team-host-b:" in said, said
            assert "another server with this one's identity (a copy of its files" in said, said
            assert "logs differ" in links[0].status().detail
        finally:
            await host_a.aclose()
            await host_b.aclose()
    finally:
        original.close()
        if copy is not None:
            copy.close()


def test_backup_copies_the_log_whole_while_it_is_written_and_checkpointed(tmp_path: Path) -> None:
    """modelyard offered no backup, and README's only advice was to restore with modelyard stopped: the natural
    ``cp log.sqlite3 backup.sqlite3`` of a running log misses every row still in ``-wal`` and, when a checkpoint runs
    during the copy, mixes pages from before and after it (SQLite, "How To Corrupt": backup while a transaction is
    active, https://www.sqlite.org/howtocorrupt.html §1.2; users of SQLite-backed logs meet it as 'database disk
    image is malformed' after restoring such a copy — pocketbase/pocketbase#7727). ``modelyard backup DEST`` copies
    one snapshot (``VACUUM INTO``) while a writer commits and another connection checkpoints without pause; each
    copy passes ``integrity_check``, holds every request flushed before it began, each with its attempts, and never
    overwrites a file."""
    import sqlite3
    import threading

    from modelyard.ledger import LogWriter

    path = tmp_path / "log.sqlite3"
    config = tmp_path / "modelyard.yaml"
    config.write_text(yaml.safe_dump({"log": {"path": str(path)},
                                      "models": {"local": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
                                      "agents": {"chat": {"primary": "local"}}}))
    writer = LogWriter(path)
    stop = threading.Event()
    flushed = [0]

    def write() -> None:
        i = 0
        while not stop.is_set() and i < 20_000:
            for _ in range(20):
                writer.submit(record(i))
                i += 1
            writer.flush(10)
            flushed[0] = i

    def checkpoint() -> None:
        conn = sqlite3.connect(path, timeout=10)
        try:
            while not stop.is_set():
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    threads = [threading.Thread(target=write), threading.Thread(target=checkpoint)]
    for t in threads:
        t.start()
    try:
        until_rows = time.monotonic() + 30
        while flushed[0] < 200:
            assert time.monotonic() < until_rows, "the writer wrote nothing"
            time.sleep(0.01)
        for n in range(4):
            before = flushed[0]
            dest = tmp_path / f"backup-{n}.sqlite3"
            out = runner.invoke(app, ["backup", str(dest), "--config", str(config)])
            assert out.exit_code == 0, out.output
            assert f"routing log copied to {dest}" in out.output and "to restore: stop every" in out.output
            assert not list(tmp_path.glob(".backup-*partial*"))
            copy = sqlite3.connect(dest)
            try:
                assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                requests = copy.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
                orphans = copy.execute("SELECT COUNT(*) FROM requests r WHERE NOT EXISTS "
                                       "(SELECT 1 FROM attempts a WHERE a.request_id = r.id)").fetchone()[0]
            finally:
                copy.close()
            assert requests >= before > 0 and orphans == 0, (requests, before, orphans)
            assert str(requests) in out.output
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        writer.close()
    again = runner.invoke(app, ["backup", str(tmp_path / "backup-0.sqlite3"), "--config", str(config)])
    assert again.exit_code == 1 and "exists" in again.output and "never overwrites" in again.output, again.output
