"""The gateway process with its routing log on PostgreSQL (issue 9.3): kill -9 mid-load, and the
database stopped and restarted mid-load. Real gateway processes, real PostgreSQL, misbehaving backends."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections import Counter
from pathlib import Path

import httpx
import psycopg
from tests.fakes.server import poll
from tests.pg import OwnServer
from tests.reliability.loadgen import GatewayProcess, Result, misbehaving_backends, run_load, write_config

from modelyard.ledger.pg import PgConnection


def ids_in(url: str, marker: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id FROM requests WHERE prompt LIKE %s", (marker + "-%",)).fetchall()
    return Counter(r[0] for r in rows)


def all_logged(url: str, marker: str, results: list[Result]) -> list[str]:
    """Request ids a client saw that PostgreSQL does not have yet ([] once all are there)."""
    try:
        logged = ids_in(url, marker)
    except psycopg.OperationalError:
        return ["<database unreachable>"]
    return [r.request_id for r in results if r.request_id and r.request_id not in logged]


def test_kill_9_of_a_gateway_loses_no_answered_request(tmp_path: Path, pg_url: str) -> None:
    """The hardest case made certain: the test holds the host's forward lock during the load, so at the
    kill every answered request exists only in the local spool; the next process forwards them all."""
    PgConnection(pg_url).close()  # the schema exists; the gateway's own forwarder will stand by
    lock = os.open(tmp_path / "log.db.forward-lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with misbehaving_backends(seed=21) as servers:
        config = write_config(tmp_path, servers, extra={"log": {"path": str(tmp_path / "log.db"), "url": pg_url}})
        gateway = GatewayProcess(config, tmp_path).start()

        async def load_and_kill() -> list[Result]:
            live: list[Result] = []
            task = asyncio.ensure_future(run_load(gateway.url, 300, 40, seed=21, marker="pgcrash", results=live))
            while not task.done() and sum(1 for r in live if r.request_id) < 100:
                await asyncio.sleep(0.005)
            gateway.kill9()  # mid-load: requests in flight, rows committed locally but not yet forwarded
            return await task

        try:
            results = asyncio.run(load_and_kill())
            answered = [r for r in results if r.request_id and r.kind != "lost"]
            assert len(answered) >= 100
            assert len(all_logged(pg_url, "pgcrash", answered)) == len(answered)  # none forwarded yet
            os.close(lock)  # as if the lock's holder went away
            gateway.start()  # the next process on this host forwards what the killed one left in the spool
            assert poll(lambda: all_logged(pg_url, "pgcrash", answered) == [], timeout=60)
            logged = ids_in(pg_url, "pgcrash")
            assert all(logged[r.request_id] == 1 for r in answered), "one row per request"
        finally:
            gateway.stop()


def test_postgresql_stopped_and_restarted_mid_load(tmp_path: Path) -> None:
    """Documented behaviour: answers go on at local speed while PostgreSQL is down (each one committed to
    the local spool first), /healthz says degraded with the backlog, and every request reaches PostgreSQL
    once it is back."""
    server = OwnServer()
    try:
        with misbehaving_backends(seed=22) as servers:
            config = write_config(tmp_path, servers, extra={"log": {"path": str(tmp_path / "log.db"),
                                                                    "url": server.url}})
            gateway = GatewayProcess(config, tmp_path).start()
            try:
                health_down: dict = {}

                async def load_with_outage() -> list[Result]:
                    live: list[Result] = []
                    task = asyncio.ensure_future(run_load(gateway.url, 600, 30, seed=22, marker="pgdown",
                                                          results=live))
                    while not task.done() and len(live) < 150:
                        await asyncio.sleep(0.01)
                    await asyncio.to_thread(server.stop)
                    down_at = len(live)
                    while not task.done() and len(live) < down_at + 200:
                        await asyncio.sleep(0.01)
                    async with httpx.AsyncClient() as client:
                        health_down.update((await client.get(gateway.url + "/healthz")).json())
                    await asyncio.to_thread(server.start)
                    return await task

                results = asyncio.run(load_with_outage())
                kinds = Counter(r.kind for r in results)
                assert kinds["lost"] == 0, [r.detail for r in results if r.kind == "lost"][:5]
                assert sum(kinds.values()) == 600
                # PostgreSQL being down never fails an answer: every clear error is the models' own (the
                # mix's 429s cool a model down for their retry-after, and at times all three at once —
                # how many depends on which request draws which fault, so it is not counted here)
                not_models = [r.detail for r in results if r.kind == "error"
                              and not r.detail.startswith("agent 'chain': no model could answer")
                              and "the answer broke" not in r.detail]
                assert not not_models, not_models[:5]
                assert kinds["ok"] + kinds["fallback"] > 200, Counter(r.detail[:300] for r in results
                                                                      if r.kind == "error").most_common(5)
                assert health_down["status"] == "degraded", health_down
                forward = health_down["log"]["forward"]
                assert forward["backlog"] > 0 and not forward["connected"] and forward["active"]
                assert "postgres@127.0.0.1" in forward["target"]
                with_ids = [r for r in results if r.request_id]
                assert poll(lambda: all_logged(server.url, "pgdown", with_ids) == [], timeout=90)
                assert all(n == 1 for n in ids_in(server.url, "pgdown").values())
                assert poll(lambda: httpx.get(gateway.url + "/healthz").json()["log"]["forward"]["backlog"] == 0)
                metrics = httpx.get(gateway.url + "/metrics").text
                assert "modelyard_log_forward_backlog 0.0" in metrics
                assert "modelyard_log_forward_connected 1.0" in metrics
            finally:
                gateway.stop()
    finally:
        server.close()
