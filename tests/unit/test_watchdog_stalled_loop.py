"""A loop kept from running past a time bound while the answer came in: the answer counts, not the bound.

On a busy machine the gateway's process may get no CPU for a while. A backend (its own process) answers meanwhile;
when the loop runs again, one turn reads both the answer on the socket and the watchdog's timer, the answer first —
but the task it wakes runs only on the next turn, and the old watchdog cancelled it on this one: a first token in
hand became ``first_token_timeout``, and a healthy backup's answer the gateway's 503 (the reliability suite's
``test_fault_through_the_gateway[hang_after_first_token-json]`` once, in a long loaded run). Here the backend's
answer comes over a real socket, read by an I/O callback as aiohttp's is, while the loop sleeps in a callback past
the bound (the machine's scheduler, made deterministic).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
from tests.helpers import ScriptedProvider, make_config

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.gateway.loop import ServeLoop
from modelyard.router import ChainExhausted, ModelPool, Router
from modelyard.types import ChatRequest, Chunk, Message, Usage

REQ = ChatRequest(messages=[Message("user", "hi")])
FIRST_TOKEN = 0.2
#: the loop gets no CPU this long once the request is out: well past the first-token bound
STALL = FIRST_TOKEN + 0.3
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop, "serve": ServeLoop}


class _OverSocket(ScriptedProvider):
    """Answers over a socket pair; ``answers``: whether the backend's bytes come during the stall at all;
    ``then_waits``: after they came, the stream awaits something that never comes (still a first-token wait)."""

    def __init__(self, name: str, config: ModelConfig, *, answers: bool = True, then_waits: bool = False):
        super().__init__(name, config)
        self.answers, self.then_waits = answers, then_waits

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        ours, backend = socket.socketpair()
        arrived: asyncio.Future[str] = loop.create_future()

        def read() -> None:
            loop.remove_reader(ours.fileno())
            arrived.set_result(ours.recv(100).decode())

        def stall() -> None:  # the backend answers while this process's loop is kept from running
            if self.answers:
                backend.send(b"hello")
            time.sleep(STALL)

        loop.add_reader(ours.fileno(), read)
        loop.call_soon(stall)
        try:
            text = await arrived
            if self.then_waits:
                await loop.create_future()
        finally:
            loop.remove_reader(ours.fileno())
            ours.close()
            backend.close()
        yield Chunk("text", text=text)
        yield Chunk("usage", usage=Usage(3, 1))
        yield Chunk("done", stop_reason="stop")


def route(loop_kind: str, stream: bool, **behaviour: bool) -> tuple[str | None, list, float]:
    """The solo agent's answer (None if its chain was exhausted), its attempts, and the loop time it took."""
    config = make_config({"a": {"provider": "openai"}}, {"solo": {"primary": "a"}},
                         defaults={"timeouts": {"queue": 1, "first_token": FIRST_TOKEN, "idle": FIRST_TOKEN,
                                                "total": 10}, "retries": {"attempts": 0}})
    router = Router(config, pool=ModelPool(config, providers={"a": _OverSocket("a", config.models["a"],
                                                                                **behaviour)}))

    async def main() -> tuple[str | None, list]:
        try:
            if stream:
                routed = router.stream("solo", REQ)
                try:
                    text = "".join([c.text async for c in routed if c.kind == "text"])
                finally:
                    await routed.aclose()
                return text, routed.record.attempts
            done = await router.complete("solo", REQ)
            return done.response.text, done.record.attempts
        except ChainExhausted as exc:
            return None, exc.record.attempts
        finally:
            await router.aclose()

    loop = LOOPS[loop_kind]()
    try:
        start = loop.time()
        text, attempts = loop.run_until_complete(main())
        return text, attempts, loop.time() - start
    finally:
        loop.close()


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
@pytest.mark.parametrize("loop_kind", list(LOOPS))
def test_an_answer_that_came_while_the_loop_was_stalled_is_taken(loop_kind: str, stream: bool) -> None:
    text, attempts, _ = route(loop_kind, stream)
    assert text == "hello", [(a.outcome, a.reason, a.detail) for a in attempts]
    assert [(a.outcome, a.reason) for a in attempts] == [("ok", None)]


@pytest.mark.parametrize("behaviour", [{"answers": False}, {"then_waits": True}], ids=["no_answer", "then_waits"])
@pytest.mark.parametrize("loop_kind", list(LOOPS))
def test_a_stream_still_waiting_after_the_stall_times_out_at_once(loop_kind: str, behaviour: dict[str, bool]) -> None:
    """Guard (passes on the old code too): the one more turn is given only to a task whose awaited answer came, and
    once per bound — nothing came, or it awaits again after what came, and it ends on the loop's first turns after
    the stall, as a timeout."""
    text, attempts, took = route(loop_kind, False, **behaviour)
    assert text is None and [(a.outcome, a.reason) for a in attempts] == [("fallback", "first_token_timeout")]
    assert took < STALL + 1.0  # not left hanging: the stall and a few turns (1 s of slack for a loaded machine)
