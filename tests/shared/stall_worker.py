"""One process of the stall tests (:mod:`tests.shared.test_loop_stall`): a pool sharing model ``m`` through Redis, and
requests to a backend that counts the requests it serves at once — a TCP connection each, held open for the seconds
the request asks (what a model's server sees of a request in flight).

``python -m tests.shared.stall_worker JSON`` with ``url``, ``prefix``, ``lease``, ``refresh``, ``timeout``, ``limit``,
``port`` (the backend) and ``role``:

- ``staller``: takes ``slots`` slots, sends a request of ``hold`` seconds on each, prints ``holding``, then blocks its
  event loop for ``stall`` seconds (``time.sleep`` on the loop: synchronous work, a long GC pause) — or, with
  ``stall`` 0, just waits (the test may SIGSTOP it) — then reads the answers and gives the slots back;
- ``holder``: takes one slot, prints ``holding``, gives it back once it reads a line on stdin, prints ``done``;
- ``waiter``: takes one slot, waiting up to ``bound`` seconds (the test may SIGSTOP it while it waits), prints
  ``granted``, sends a request of ``hold`` seconds, gives the slot back, prints ``done``;
- ``loader``: ``clients`` clients each take a slot, send a request of ``hold`` seconds, give it back, for
  ``duration`` seconds (or until ``requests`` were served, when given); prints ``served N refused M``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from modelyard.config.schema import BELOW_LEASE_RULE, OnOutage, StateConfig
from modelyard.router import ModelPool
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config


async def _request(port: int, seconds: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Sent; the writer is kept with the reader (a writer collected closes the connection: an answer never read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{seconds}\n".encode())
    await writer.drain()
    return reader, writer


async def _answer(request: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    reader, writer = request
    assert await reader.readline() == b"ok\n"
    writer.close()


async def main(spec: dict[str, Any]) -> None:
    settings = StateConfig.model_validate(
        {"url": spec["url"], "prefix": spec["prefix"], "lease": spec["lease"], "refresh": spec["refresh"],
         "timeout": spec["timeout"], "on_outage": spec.get("on_outage", OnOutage.SHARE.value)},
        context={BELOW_LEASE_RULE: True})
    config = make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000",
                                "max_concurrent": spec["limit"]}}, {"a": {"primary": "m"}})
    pool = ModelPool(config, shared=settings)
    state = pool["m"]
    try:
        if spec["role"] == "staller":
            for _ in range(spec["slots"]):
                await state.acquire(10)
            sent = [await _request(spec["port"], spec["hold"]) for _ in range(spec["slots"])]
            print("holding", flush=True)
            if spec["stall"]:
                time.sleep(spec["stall"])  # the loop blocked: nothing on it runs, the heartbeat neither
            else:
                await asyncio.sleep(spec["hold"])
            for request in sent:
                await _answer(request)
            for _ in range(spec["slots"]):
                await state.release()
            print("done", flush=True)
            return
        if spec["role"] == "holder":
            await state.acquire(10)
            print("holding", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            await state.release()
            print("done", flush=True)
            return
        if spec["role"] == "waiter":
            await state.acquire(spec["bound"])
            print("granted", flush=True)
            await _answer(await _request(spec["port"], spec["hold"]))
            await state.release()
            print("done", flush=True)
            return
        served = refused = started = 0
        end = time.monotonic() + spec["duration"]
        wanted = spec.get("requests")

        async def client() -> None:
            nonlocal served, refused, started
            while time.monotonic() < end and (wanted is None or started < wanted):
                started += 1
                try:
                    await state.acquire(1.0)
                except QueueTimeout:
                    refused += 1
                    started -= 1
                    await asyncio.sleep(0.05)  # refused at once while the store is out of reach: no busy loop
                    continue
                try:
                    await _answer(await _request(spec["port"], spec["hold"]))
                    served += 1
                finally:
                    await state.release()

        print("loading", flush=True)
        await asyncio.gather(*(client() for _ in range(spec["clients"])))
        print(f"served {served} refused {refused}", flush=True)
    finally:
        await pool.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
