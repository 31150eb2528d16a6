"""``HttpClient.session()`` (providers/http.py): the pool of the running loop, found without asking asyncio for that
loop on every request — CPython 3.11's ``get_running_loop()`` makes a ``getpid`` system call each time (issue #15:
one per request in ``serve`` by strace) — and still a new pool for any other loop: another ``asyncio.run``, a loop
in another thread, a forked child's own loop."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from modelyard.providers.http import HttpClient


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    real = asyncio.get_running_loop

    def ask() -> asyncio.AbstractEventLoop:
        asked.append("get_running_loop")
        return real()

    monkeypatch.setattr(asyncio, "get_running_loop", ask)
    return asked


def test_the_running_loop_s_pool_is_found_without_asking_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    client = HttpClient("http://127.0.0.1:9")
    asked = _counting(monkeypatch)

    async def main() -> tuple[bool, bool, list[str]]:
        first = client.session()
        made = list(asked)  # the first call makes the pool for this loop: asyncio is asked then
        asked.clear()
        again = [client.session() for _ in range(5)]
        return (all(s is first for s in again), first._loop is asyncio.events._get_running_loop(),
                [*made, "--", *asked])

    try:
        same, on_this_loop, calls = asyncio.run(main())
        assert same and on_this_loop
        assert calls[0] == "get_running_loop"  # made for this loop (aiohttp asks too)
        assert calls[calls.index("--") + 1:] == []  # five on the old code: one per call
    finally:
        asyncio.run(client.aclose())


def test_another_loop_gets_a_pool_of_its_own() -> None:
    """A pool is never used from a loop it was not made on: a later ``asyncio.run`` in this thread (the first loop
    closed, its pool not), or a loop running meanwhile in another thread."""
    client = HttpClient("http://127.0.0.1:9")

    made: list[Any] = []

    async def pool() -> bool:
        session = client.session()
        made.append(session)
        return session._loop is asyncio.get_running_loop()

    assert asyncio.run(pool()) and asyncio.run(pool())
    assert made[1] is not made[0]

    held = threading.Event()
    done = threading.Event()

    async def elsewhere() -> None:
        made.append(client.session())
        held.set()
        await asyncio.get_running_loop().run_in_executor(None, done.wait)  # its loop keeps running meanwhile
        await made[2].close()

    thread = threading.Thread(target=asyncio.run, args=(elsewhere(),))
    thread.start()
    try:
        assert held.wait(60)
        assert asyncio.run(pool())  # here, while the other thread's loop runs with its own pool
        assert made[3] is not made[2]
    finally:
        done.set()
        thread.join(60)
        for session in made[:2] + made[3:]:
            asyncio.run(session.close())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_s_loop_gets_a_pool_of_its_own() -> None:
    """A fork from inside a running loop: the child's copy of that loop still names this thread as running it, but
    the child's own loop must not take over the parent's pool (its sockets are the parent's)."""
    client = HttpClient("http://127.0.0.1:9")

    async def child_check() -> bool:
        session = client.session()
        return session._loop is asyncio.get_running_loop()

    async def main() -> int:
        client.session()
        pid = os.fork()
        if pid == 0:  # the child: a loop of its own (asyncio forgets the parent's running loop after a fork)
            try:
                ok = asyncio.new_event_loop().run_until_complete(child_check())
            except BaseException:
                os._exit(3)
            os._exit(0 if ok else 1)
        return os.waitpid(pid, 0)[1]

    try:
        status = asyncio.run(main())
    finally:
        asyncio.run(client.aclose())
    assert os.waitstatus_to_exitcode(status) == 0
