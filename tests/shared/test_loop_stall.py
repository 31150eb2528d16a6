"""A process whose event loop stalls past its slots' lease keeps them: the model never gets ``max_concurrent + 1``.

Two real processes (:mod:`tests.shared.stall_worker`) share model ``m`` (``max_concurrent: 2``) on the real Redis:
one holds both slots with requests running at the backend and blocks its event loop (``time.sleep`` on it, as
synchronous work or a long GC pause does) for three times the slots' lease; the other sends requests in a loop. The
backend counts the requests it serves at once. Before the lease keeper (:mod:`modelyard.router.shared.keeper`) the
stalled process's holders ran out ``2·lease/3`` after its last heartbeat while its requests still ran, and the other
took a slot: the backend saw 3 of 2 (Kleppmann, "How to do distributed locking": a paused lock holder).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from modelyard.errors import Reason
from modelyard.router import Condition, ModelPool
from modelyard.router.health import Admission
from modelyard.router.shared import RedisState
from modelyard.router.shared.keeper import LeaseKeeper
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis, counts, short_lease, until
from tests.shared.test_redis_state import Pools, _until, pools  # noqa: F401 - fixture

LIMIT = 2
LEASE = 1.5  # window 1.0 s, heartbeat 0.5 s
STALL = 3 * LEASE


def _config():  # a server on the network: its slots are shared by every host
    return make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": LIMIT}},
                       {"a": {"primary": "m"}})


class Backend:
    """A server that counts the requests it serves at once: a connection each, answered after the seconds it asks."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.in_flight = self.peak = self.served = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            with conn.makefile() as lines:
                seconds = float(lines.readline())
            with self._lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            time.sleep(seconds)
            with self._lock:
                self.in_flight -= 1
                self.served += 1
            with contextlib.suppress(OSError):
                conn.sendall(b"ok\n")

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def worker(spec: dict[str, Any]) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.shared.stall_worker", json.dumps(spec)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _said(proc: subprocess.Popen[str], word: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line and proc.stderr is not None:  # ended: what it said on the way out
        proc.wait(10)
    assert line.startswith(word), (line, proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
    return line


def test_a_stalled_event_loop_keeps_its_slots_and_the_backend_never_sees_more_than_the_limit(
        redis_url: str, prefix: str) -> None:
    backend = Backend()
    common = {"url": redis_url, "prefix": prefix, "lease": LEASE, "refresh": 0.1, "timeout": 0.3, "limit": LIMIT,
              "port": backend.port}
    try:
        with worker({**common, "role": "staller", "slots": LIMIT, "hold": STALL + 1, "stall": STALL}) as staller:
            _said(staller, "holding")
            until(lambda: backend.in_flight == LIMIT, 10, 0.01)  # both its requests at the backend, the loop blocked
            with worker({**common, "role": "loader", "clients": 3, "hold": 0.2, "duration": STALL + 2}) as loader:
                _said(loader, "loading")
                _said(staller, "done")
                served = _said(loader, "served")
                assert staller.wait(10) == 0 and loader.wait(10) == 0
            assert staller.stderr is not None
            kept = staller.stderr.read()
        assert backend.peak == LIMIT, f"the backend saw {backend.peak} requests at once, limit {LIMIT}"
        assert int(served.split()[1]) > 0, served  # the slots were handed on once the stalled process gave them back
        assert "its lease keeper kept this process's slots" in kept, kept
        assert counts(prefix, "m") == (0, 0)
    finally:
        backend.close()


async def _stop_heartbeat(state: RedisState) -> None:
    """No heartbeat from the loop from here on. Cancelled until it is done: a cancel that lands as the task's pause
    runs out is swallowed (``asyncio.timeout`` in Python 3.11), and the heartbeat went on."""
    maintain = next(t for t in state.link._tasks if t.get_name() == "modelyard-state-maintain")
    while not maintain.done():
        maintain.cancel()
        await asyncio.wait([maintain], timeout=0.2)


async def test_a_probe_out_while_its_heartbeat_stalls_stays_the_only_one(pools: Pools) -> None:  # noqa: F811
    """Half-open lets one request across every process probe the model; the probe's lease is renewed by its process's
    heartbeat like a slot's. Two pools (each its own connection, instance and heartbeat, as two processes): the
    prober's heartbeat task stops (its loop busy elsewhere, as a stall does to the one task; the loop itself must run
    here, as both pools share it) for three windows. Before, its probe's lease ran out and the other process sent a
    second probe to the failing model; now the lease keeper keeps the first."""
    a, b = (p["m"] for p in pools(2, failures=1, seconds=0.2, timeout=1.0, lease=1.5))
    assert isinstance(a, RedisState) and isinstance(b, RedisState)
    await a.failed(await a.admit(), Reason.SERVER_ERROR)  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    probe = await a.admit()
    assert probe is not None and probe.admission is Admission.PROBE
    await _stop_heartbeat(a)  # the link is not closing: its process lives
    await asyncio.sleep(3 * a.link.window_ms / 1000)
    assert await b.admit() is None, "a second probe while the first was still out"
    assert "probing" in b.cooling_detail()
    await a.succeeded(probe)
    await _until(lambda: b.snapshot()[0] is Condition.AVAILABLE)


async def test_the_lease_keeper_never_brings_back_what_redis_lost_and_waits_out_a_silent_redis(
        tmp_path: Path, prefix: str) -> None:
    """Its renewal only extends entries still there: after Redis restarted empty the slot is not registered again by
    the keeper (the loop's heartbeat does that, with the grace before any hand-over), and a Redis that stopped
    answering costs the keeper's thread its call bound, not a hang."""
    server = PrivateRedis(tmp_path).start()
    pool = ModelPool(_config(), shared=short_lease(url=server.url, prefix=prefix, lease=1.5, refresh=0.1, timeout=0.3))
    try:
        state = pool["m"]
        assert isinstance(state, RedisState)
        await state.acquire(5)
        keeper = state.link.keeper
        assert keeper is not None
        # its loop's heartbeat and listener stall from here on — ended for sure before Redis restarts: a cancel that
        # lands as a call's timeout expires is swallowed (link.aclose says so), and a heartbeat still running then
        # registers this process again on the new server (the namespaces and the model's meta), which is not the keeper
        tasks = list(state.link._tasks)
        for _ in range(50):
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=0.1)
            if all(task.done() for task in tasks):
                break
        assert all(task.done() for task in tasks)
        assert await asyncio.to_thread(keeper.keep) is True
        server.kill()
        again = PrivateRedis(tmp_path)
        again.port = server.port
        server = again.start()
        assert await asyncio.to_thread(keeper.keep) is True  # asked; nothing there to extend
        with contextlib.closing(redis.Redis(port=server.port)) as admin:
            assert admin.dbsize() == 0, admin.keys()
        server.freeze()
        started = time.monotonic()
        assert await asyncio.to_thread(keeper.keep) is False
        assert time.monotonic() - started < 2.0
        server.thaw()
        await state.release()
    finally:
        server.thaw()
        await pool.aclose()
        server.kill()


async def test_a_process_stopped_past_its_lease_says_its_slot_ran_out_when_it_runs_again(
        pools: Pools, prefix: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """What no thread can cover: the whole process stopped (SIGSTOP, a VM paused), its lease keeper with it. Its
    slot runs out as a dead process's and the other process takes it (the backend: 2 of 1 with ``test_loop_stall``'s
    two processes under SIGSTOP; measured in the report). When it runs again its heartbeat registers the slot again —
    its request may still run — and now says so; before, nothing did."""
    a, b = (pool["m"] for pool in pools(2, limit=1, lease=1.5))
    assert isinstance(a, RedisState) and isinstance(b, RedisState)
    await a.acquire(5)
    assert a.link.keeper is not None
    a.link.keeper.stop()  # the whole process stops: its thread too
    await _stop_heartbeat(a)
    await b.acquire(3 * 1.5)  # granted once a's holder ran out
    with caplog.at_level(logging.WARNING, logger="modelyard.state"):
        await a.link.sync(a)  # a runs again: its heartbeat
    assert "1 slot(s) of this process ran out while it was stopped" in caplog.text, caplog.text
    assert counts(prefix, "m") == (2, 0)  # both counted while both run: nothing more is handed out
    await a.release()
    await b.release()


def _queued(url: str, prefix: str) -> list[int]:
    """The process ids of the waiters queued for ``m``, in order (a token is ``host:pid:…``)."""
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        return [int(token.split(b":")[1]) for token in client.zrange(f"{prefix}:{{m}}:queue", 0, -1)]


def test_a_process_stopped_while_waiting_does_not_use_a_grant_that_ran_out_meanwhile(redis_url: str,
                                                                                     prefix: str) -> None:
    """Three real processes, ``max_concurrent: 1``: one holds the slot; a second waits for it and is stopped as a whole
    (SIGSTOP; a VM paused, a laptop asleep) just before the slot is given back; a third sends requests in a loop. The
    slot is granted to the stopped waiter, runs out unused as a dead process's does, and goes to the third. When the
    waiter runs again it reads that old grant: before, it took it and sent its request beside the third's (the backend
    saw 2 of 1); now Redis says first (RENEW) that the grant ran out, and it waits its turn again — then is served."""
    backend = Backend()
    lease = 3.0  # window 2 s: the waiter's own lease outlives the moment between its stop and the grant
    common = {"url": redis_url, "prefix": prefix, "lease": lease, "refresh": 0.1, "timeout": 1.0, "limit": 1,
              "port": backend.port}
    try:
        with contextlib.ExitStack() as stack, worker({**common, "role": "holder"}) as holder:
            _said(holder, "holding")
            waiter = stack.enter_context(worker({**common, "role": "waiter", "bound": 30, "hold": 0.3}))
            until(lambda: _queued(redis_url, prefix) == [waiter.pid], 20, 0.01)
            waiter.send_signal(signal.SIGSTOP)
            assert holder.stdin is not None
            holder.stdin.write("release\n")
            holder.stdin.flush()
            _said(holder, "done")  # given back: granted to the stopped waiter, whose grant then runs out unused
            with worker({**common, "role": "loader", "clients": 1, "hold": 0.5, "duration": 3 * lease}) as loader:
                _said(loader, "loading")
                until(lambda: backend.served >= 1 and backend.in_flight == 1, 20, 0.01)  # the loader has the slot
                waiter.send_signal(signal.SIGCONT)
                _said(waiter, "granted")
                _said(waiter, "done")
                served = _said(loader, "served")
                assert waiter.wait(10) == 0 and loader.wait(10) == 0 and holder.wait(10) == 0
        assert backend.peak == 1, f"the backend saw {backend.peak} requests at once, limit 1"
        assert int(served.split()[1]) > 0, served
        assert counts(prefix, "m") == (0, 0)
    finally:
        backend.close()


async def test_after_a_stop_the_keeper_does_not_say_it_kept_slots_that_ran_out(
        pools: Pools, prefix: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """A process stopped as a whole past its lease: when it runs again its keeper's thread may wake before the loop
    renews, find the loop late and renew — but the slot ran out meanwhile and went to another process, so there is
    nothing to keep. It said "its lease keeper kept this process's slots" all the same (seen after SIGCONT beside the
    heartbeat's own warning that they ran out). Here the stop is the heartbeat and the keeper stopped (as in
    ``test_a_process_stopped_past_its_lease_says_its_slot_ran_out_when_it_runs_again``), and the resumed keeper a fresh
    one on the same link."""
    a, b = (pool["m"] for pool in pools(2, limit=1, lease=1.5))
    assert isinstance(a, RedisState) and isinstance(b, RedisState)
    await a.acquire(5)
    assert a.link.keeper is not None
    a.link.keeper.stop()
    await _stop_heartbeat(a)
    await b.acquire(3 * 1.5)  # a's slot ran out and went to b
    resumed = LeaseKeeper(a.link)
    resumed.every = 0.01
    wakes = [0]
    running = a.link.running

    def counted() -> bool:  # the keeper asks at each wake
        wakes[0] += 1
        return running()

    a.link.running = counted  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="modelyard.state"):
        resumed.start()
        await _until(lambda: resumed._kept_at > 0)  # it took the loop for stalled and renewed: nothing was there
        a.link.renewed_at = time.monotonic()  # the loop renews again
        after = wakes[0]
        await _until(lambda: wakes[0] > after + 2)  # woken since: it said then whatever it had to say
        resumed.stop()
    assert "its lease keeper kept" not in caplog.text, caplog.text
    await b.release()
