"""Front-ends borrow serve's slots and breakers over the real unix socket (one event loop here;
tests/lending/test_processes.py does the same with real processes).

The serve side is a real :class:`Lender` over a real pool of :class:`LocalState`; the front-end side
a real borrowing pool under a real :class:`Router`. Both routers call the same scripted backend,
which counts the requests it serves at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from modelyard.config import Config
from modelyard.errors import Reason
from modelyard.outcomes import AttemptOutcome
from modelyard.router import ModelPool, Router
from modelyard.router.health import State
from modelyard.router.lending.borrower import BorrowedState
from modelyard.router.lending.lender import Lender
from modelyard.router.lending.registry import ServeEntry, announce, socket_path
from modelyard.router.slots import QueueTimeout
from modelyard.types import ChatRequest, Message
from tests.helpers import ScriptedProvider, make_config


def _config(limit: int = 2, failures: int = 3, queue: float = 5.0) -> Config:
    return make_config({"m": {"provider": "openai", "max_concurrent": limit}},
                       {"a": {"primary": "m"}},
                       defaults={"timeouts": {"queue": queue, "total": 30},
                                 "retries": {"attempts": 0},
                                 "cooldown": {"failures": failures, "seconds": 30}})


class Machine:
    """A serve (pool + lender, announced) and a way to make front-end pools, in this process."""

    def __init__(self, tmp_path: Path, config: Config, backend: ScriptedProvider):
        self.path = tmp_path / "config.yaml"
        self.path.write_text("# the config both sides were started with\n")
        self.config, self.backend = config, backend
        self.pool = ModelPool(config, providers={"m": backend})
        self.router = Router(config, pool=self.pool)
        self.lender = Lender(self.pool.states, socket_path(self.path))
        self.notes: list[str] = []

    async def start(self, pid: int | None = None) -> Machine:
        await self.lender.start()
        announce(self.path, ServeEntry(pid or os.getpid(), str(self.path), str(self.lender.path), "http://x"))
        return self

    def front_end(self) -> tuple[ModelPool, Router]:
        pool = ModelPool(self.config, providers={"m": self.backend}, borrow_from=self.path, notice=self.notes.append)
        return pool, Router(self.config, pool=pool)

    @property
    def serve_slots(self):
        return self.pool.local("m").slots


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MODELYARD_STATE", raising=False)


def _ask(router: Router, text: str = "hi"):
    return router.complete("a", ChatRequest(messages=[Message("user", text)]))


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_serve_and_two_front_ends_never_exceed_the_limit_together(tmp_path: Path) -> None:
    backend = ScriptedProvider("m", default="slow:0.15")
    machine = await Machine(tmp_path, _config(limit=2), backend).start()
    (pool1, front1), (pool2, front2) = machine.front_end(), machine.front_end()
    try:
        results = await asyncio.gather(*(_ask(r) for r in [machine.router, front1, front2] * 4))
        assert all(r.record.outcome.answered for r in results)
        assert backend.max_in_flight == 2, f"the backend saw {backend.max_in_flight} at once (limit 2)"
        assert machine.serve_slots.peak == 2, "the front-ends' requests waited in serve's own queue"
        assert pool1.describe_state().startswith("shared with `modelyard serve`")
        assert machine.notes == []
    finally:
        await pool1.aclose()
        await pool2.aclose()
        await machine.lender.aclose()
    assert machine.serve_slots.in_flight == 0


async def test_without_a_lender_each_process_would_double_book(tmp_path: Path) -> None:
    """The control: the same load with the front-end keeping its own state does exceed the limit."""
    backend = ScriptedProvider("m", default="slow:0.15")
    config = _config(limit=2)
    serve_pool = ModelPool(config, providers={"m": backend})
    own_pool = ModelPool(config, providers={"m": backend})
    routers = [Router(config, pool=serve_pool), Router(config, pool=own_pool)]
    await asyncio.gather(*(_ask(r) for r in routers * 4))
    assert backend.max_in_flight == 4


async def test_the_queue_is_serves_fifo_and_its_bound_moves_the_request_on(tmp_path: Path) -> None:
    backend = ScriptedProvider("m")
    machine = await Machine(tmp_path, _config(limit=1), backend).start()
    pool, _ = machine.front_end()
    state = pool["m"]
    try:
        await machine.pool["m"].acquire(1)  # serve's own request holds the one slot
        with pytest.raises(QueueTimeout) as caught:
            await state.acquire(0.2)
        assert caught.value.reason is Reason.QUEUE_TIMEOUT
        assert 0.19 <= (caught.value.waited or 0) < 1.0
        order: list[str] = []

        async def take(name: str, s) -> None:
            await s.acquire(5)
            order.append(name)

        first = asyncio.create_task(take("front-end", state))
        await _until(lambda: machine.serve_slots.waiting == 1)
        second = asyncio.create_task(take("serve", machine.pool["m"]))
        await _until(lambda: machine.serve_slots.waiting == 2)
        await machine.pool["m"].release()
        await first
        await state.release()
        await second
        assert order == ["front-end", "serve"], "the oldest waiter got the slot, whichever process it came from"
    finally:
        await pool.aclose()
        await machine.lender.aclose()


async def test_a_front_end_that_goes_away_gives_back_slots_waits_and_probes(tmp_path: Path) -> None:
    backend = ScriptedProvider("m")
    machine = await Machine(tmp_path, _config(limit=2), backend).start()
    pool, _ = machine.front_end()
    state = pool["m"]
    await state.acquire(1)
    await state.acquire(1)
    waiter = asyncio.create_task(state.acquire(10))
    await _until(lambda: machine.serve_slots.waiting == 1)
    # a probe out at serve: open the breaker, let it cool, take the probe
    health = machine.pool.local("m").health
    health._open(0.0)
    ticket = await state.admit()
    assert ticket is not None and ticket.admission.value == "probe"
    assert machine.lender.borrowers() == [os.getpid()]
    waiter.cancel()
    assert pool.serve is not None
    await pool.serve.aclose()  # what the kernel does for a process killed with -9
    await _until(lambda: machine.serve_slots.in_flight == 0 and machine.serve_slots.waiting == 0)
    assert await machine.pool["m"].admit() is not None, "the probe went back with the connection"
    assert machine.lender.borrowers() == []
    await machine.lender.aclose()


async def test_a_breaker_opened_by_a_front_end_is_serves(tmp_path: Path) -> None:
    backend = ScriptedProvider("m", default="error:server_error")
    machine = await Machine(tmp_path, _config(limit=2, failures=2), backend).start()
    pool, front = machine.front_end()
    try:
        for _ in range(2):
            result = await asyncio.gather(_ask(front), return_exceptions=True)
            assert isinstance(result[0], Exception)
        await _until(lambda: machine.pool.local("m").health.state is State.OPEN)
        backend.default = "ok"
        served = await asyncio.gather(_ask(machine.router), return_exceptions=True)
        record = served[0].record  # type: ignore[union-attr]
        assert record.attempts[0].outcome is AttemptOutcome.SKIPPED and record.attempts[0].reason is Reason.COOLING_DOWN
        # and the front-end is told why it skips, in serve's words
        again = await asyncio.gather(_ask(front), return_exceptions=True)
        attempt = again[0].record.attempts[0]  # type: ignore[union-attr]
        assert attempt.reason is Reason.COOLING_DOWN and "server_error" in attempt.detail
    finally:
        await pool.aclose()
        await machine.lender.aclose()


async def test_serve_gone_means_this_process_only_with_a_note(tmp_path: Path) -> None:
    backend = ScriptedProvider("m", default="slow:0.3")
    machine = Machine(tmp_path, _config(limit=1), backend)
    dead = 2**22 + 12345  # beyond pid_max here: no such process
    await machine.start(pid=dead)
    pool, front = machine.front_end()
    try:
        result = await _ask(front)
        assert result.record.outcome.answered
        assert machine.notes == [f"limits: this process only — `modelyard serve` (pid {dead}) is not running"]
        assert "this process only" in pool.describe_state()
        assert isinstance(pool["m"], BorrowedState) and pool["m"].local.slots.peak == 1
    finally:
        await pool.aclose()
        await machine.lender.aclose()


async def test_the_first_request_after_serve_announces_itself_borrows(tmp_path: Path) -> None:
    """A front-end that found no serve (or lost it) looks again at most every RETRY (2 s) — but a serve that
    announced itself within that time was not looked for: the next request ran on this process's own slot
    beside serve's, and a bot that got no other request stayed on its own (test_processes.py's
    test_serve_down_front_ends_fall_back_and_say_so failed so under load). A changed registry entry is looked
    at now: after no serve at all, and after a serve lost and restarted at once."""
    backend = ScriptedProvider("m", default="slow:0.05")
    machine = Machine(tmp_path, _config(limit=1), backend)
    pool, front = machine.front_end()
    link = pool.serve
    assert link is not None
    restarted: Machine | None = None
    try:
        assert (await _ask(front)).record.outcome.answered  # nobody to borrow from: this process's slot
        assert "this process only" in pool.describe_state()
        await machine.start()  # well within RETRY of that look
        assert (await _ask(front)).record.outcome.answered
        assert machine.serve_slots.peak == 1, "the request after serve announced itself did not borrow"
        assert pool.describe_state().startswith("shared with `modelyard serve`")
        await machine.lender.aclose()  # serve goes (kill -9) …
        await _until(lambda: not link.up)
        restarted = await Machine(tmp_path, _config(limit=1), backend).start()  # … and is back at once
        assert (await _ask(front)).record.outcome.answered
        assert restarted.serve_slots.peak == 1, "the request after serve's restart did not borrow"
        assert pool["m"].local.slots.peak == 1  # type: ignore[attr-defined]  # only the very first was local
    finally:
        await pool.aclose()
        await machine.lender.aclose()
        if restarted is not None:
            await restarted.lender.aclose()


async def test_serve_lost_while_waiting_the_wait_goes_on_here(tmp_path: Path) -> None:
    backend = ScriptedProvider("m")
    machine = await Machine(tmp_path, _config(limit=1), backend).start()
    pool, _ = machine.front_end()
    state = pool["m"]
    try:
        await machine.pool["m"].acquire(1)
        waiter = asyncio.create_task(state.acquire(5))
        await _until(lambda: machine.serve_slots.waiting == 1)
        await machine.lender.aclose()  # serve stops
        waited = await asyncio.wait_for(waiter, 3)
        assert waited < 3
        assert any("lost `modelyard serve`" in n for n in machine.notes), machine.notes
        await state.release()  # the local slot
        assert state.local.slots.in_flight == 0
    finally:
        await pool.aclose()


async def test_local_opt_out_borrows_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = await Machine(tmp_path, _config(), ScriptedProvider("m")).start()
    monkeypatch.setenv("MODELYARD_STATE", "local")
    pool, _ = machine.front_end()
    assert pool.serve is None and pool.describe_state() == "this process only"
    await machine.lender.aclose()


async def test_the_socket_is_private(tmp_path: Path) -> None:
    machine = await Machine(tmp_path, _config(), ScriptedProvider("m")).start()
    try:
        assert machine.lender.path.stat().st_mode & 0o777 == 0o600
        assert machine.lender.path.parent.stat().st_mode & 0o777 == 0o700
    finally:
        await machine.lender.aclose()


async def test_slots_from_serve_and_from_here_go_back_where_they_came_from(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Around a switch (serve came back) a process holds a local slot and a borrowed one: the request
    that finishes gives back its own, so serve never frees a slot whose request is still running."""
    from modelyard.router.lending import borrower

    monkeypatch.setattr(borrower, "RETRY", 0.05)
    machine = Machine(tmp_path, _config(limit=1), ScriptedProvider("m"))
    pool, _ = machine.front_end()
    state = pool["m"]
    local_taken, remote_taken, finish_a, finish_b = (asyncio.Event() for _ in range(4))

    async def request(taken: asyncio.Event, finish: asyncio.Event) -> None:
        await state.acquire(5)
        taken.set()
        await finish.wait()
        await state.release()

    try:
        a = asyncio.create_task(request(local_taken, finish_a))  # no serve yet: a slot of this process
        await local_taken.wait()
        assert state.local.slots.in_flight == 1
        await machine.start()
        await asyncio.sleep(0.1)
        b = asyncio.create_task(request(remote_taken, finish_b))  # serve is there now: its slot
        await remote_taken.wait()
        assert machine.serve_slots.in_flight == 1
        finish_a.set()
        await a
        assert state.local.slots.in_flight == 0
        assert machine.serve_slots.in_flight == 1, "serve's slot stays taken while its request runs"
        finish_b.set()
        await b
        await _until(lambda: machine.serve_slots.in_flight == 0)
    finally:
        await pool.aclose()
        await machine.lender.aclose()


async def test_a_borrowing_process_shows_serves_live_counts(tmp_path: Path) -> None:
    """What a long-running bot's /status (and ``models``) shows is serve's state, kept fresh."""
    machine = await Machine(tmp_path, _config(limit=2), ScriptedProvider("m")).start()
    pool, _ = machine.front_end()
    try:
        await pool.peek()
        assert [(s.in_flight, s.limit) for s in pool.statuses()] == [(0, 2)]
        await machine.pool["m"].acquire(1)  # serve's own request
        await _until(lambda: pool.statuses()[0].in_flight == 1, timeout=5)
        await machine.pool["m"].release()
        await _until(lambda: pool.statuses()[0].in_flight == 0, timeout=5)
    finally:
        await pool.aclose()
        await machine.lender.aclose()


async def test_garbage_on_the_socket_ends_that_connection_only(tmp_path: Path) -> None:
    machine = await Machine(tmp_path, _config(limit=1), ScriptedProvider("m")).start()
    pool, front = machine.front_end()
    try:
        for junk in (b"not json\n", b"[1, 2]\n", b'{"op": "nope"}\n', b'{"op": "acquire", "id": 1}\n',
                     b'{"op": "acquire", "id": 2, "model": "m", "timeout": NaN}\n'
                     b'{"op": "admit", "id": 3, "model": "m"}\n'
                     b'{"op": "failed", "id": 3, "reason": "made_up"}\n{"op": "view"}\n{"op": "nope"}\n',
                     b"x" * 70_000 + b"\n"):
            reader, writer = await asyncio.open_unix_connection(str(machine.lender.path))
            writer.write(junk)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 5)  # serve closes the connection (after what it could answer)
            writer.close()
        await _until(lambda: machine.serve_slots.in_flight == 0 and not machine.lender.loans)
        result = await _ask(front)  # the lender still serves well-behaved front-ends
        assert result.record.outcome.answered and machine.notes == []
    finally:
        await pool.aclose()
        await machine.lender.aclose()


async def test_a_serve_of_another_version_is_not_borrowed_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an upgrade the service may still run the old code: the front-end says so and keeps its own."""
    from modelyard.router.lending import lender

    monkeypatch.setattr(lender, "VERSION", 99)
    machine = await Machine(tmp_path, _config(limit=1), ScriptedProvider("m")).start()
    pool, front = machine.front_end()
    try:
        assert (await _ask(front)).record.outcome.answered
        assert machine.serve_slots.peak == 0
        assert machine.notes and "runs another version of modelyard (slot protocol 99, here 1)" in machine.notes[0]
    finally:
        await pool.aclose()
        await machine.lender.aclose()


async def test_a_failure_while_looking_for_serve_never_leaves_requests_waiting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests that arrive while another is connecting wait for that attempt: if it blows up they
    must still go on (with this process's state), not wait forever."""
    from modelyard.router.lending import borrower

    def broken(path: object) -> None:
        raise RuntimeError("the registry exploded")

    machine = await Machine(tmp_path, _config(limit=2), ScriptedProvider("m")).start()
    monkeypatch.setattr(borrower, "discover", broken)
    pool, front = machine.front_end()
    try:
        results = await asyncio.wait_for(asyncio.gather(_ask(front), _ask(front)), 5)
        assert all(r.record.outcome.answered for r in results)
        assert machine.notes == ["limits: this process only — cannot reach `modelyard serve` "
                                 "(RuntimeError: the registry exploded)"]
    finally:
        await pool.aclose()
        await machine.lender.aclose()
