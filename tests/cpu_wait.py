"""How long the kernel kept this process's threads waiting for a CPU: the part of a wall-clock span a loaded
machine took, not the code under test.

A test that bounds an in-process request's wall time (the gateway, the fake backends and the client all in this
process) measures the scheduler as well as the code: on 2 cores at load ~9 the same 20 requests took 3.16 s where an
idle machine takes ~1.3 s. Linux counts, per thread, the time it sat runnable on a run queue without a CPU
(``/proc/<pid>/task/<tid>/schedstat``, second field, ns: Documentation/scheduler/sched-stats.rst). Waiting on a
socket, a timer, a lock or the GIL is not in it, so a request that hangs or waits past its bound still shows in
``wall - waited``: a bound held against that fails on a real regression and not on a machine's load.

The sum over threads is an upper estimate of what the load added to one request (threads that wait side by side
each count); on an idle machine it is ~0 and the bound is the plain one. Without ``/proc`` (macOS) it is 0. A child
process (``modelyard serve`` started by a test) is read the same way by its pid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _run_delays(pid: int | None) -> dict[str, int]:
    """Run-queue wait so far of each thread of the process (this one by default), in ns."""
    out: dict[str, int] = {}
    try:
        tasks = list(Path(f"/proc/{pid or 'self'}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out[task.name] = int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile, or no schedstat in this kernel
            continue
    return out


class CpuWait:
    """Started at construction; ``seconds()`` is the run-queue wait of the process's threads (this process's unless
    ``pid`` is given) since then."""

    def __init__(self, pid: int | None = None) -> None:
        self._pid = pid
        self._start = _run_delays(pid)

    def seconds(self) -> float:
        now = _run_delays(self._pid)
        # a thread started since counts from 0; one that ended since is gone from both sides' sum
        return sum(ns - self._start.get(tid, 0) for tid, ns in now.items()) / 1e9


def settle(predicate: Callable[[], T], timeout: float = 5.0, *, cap: float = 120.0, interval: float = 0.01) -> T:
    """Poll ``predicate`` (blocking this thread) until it returns something truthy, and return that.

    A bounded wait whose bound is the machine's time, not the scheduler's: ``TimeoutError`` once ``timeout`` s of wall
    time *less this process's run-queue wait since the start* have passed without it holding — or ``cap`` s of wall
    time whatever the load, so a condition that never comes (a row lost, a slot kept) still fails. For work a server
    in this process still does after its clients are gone (a hung-up request's row): at load ~20 pinned to one core,
    24 such rows took 9.5 s to be written in a gateway's first seconds (its first requests import aiohttp), 0.6 s
    after; idle, the bound is the plain ``timeout``."""
    waited = CpuWait()
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value
        spent = time.monotonic() - start
        if spent - waited.seconds() >= timeout or spent >= cap:
            raise TimeoutError(f"condition not met within {timeout} s besides waiting for a CPU ({spent:.1f} s "
                               "of wall time)")
        time.sleep(interval)
