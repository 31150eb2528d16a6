"""A response's head leaves with its body in one write (gateway/transport.py, issue #15)."""

from __future__ import annotations

import asyncio

from modelyard.gateway.transport import HeldHead

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_head_and_body_written_in_one_step_leave_in_one_write() -> None:
    sink = Recorder()
    transport = HeldHead(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    assert sink.writes == []
    transport.write(b"{}")
    assert sink.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)
    assert sink.writes == [HEAD + b"{}"]  # nothing sent twice


async def test_a_head_alone_leaves_at_the_next_iteration_and_order_is_kept() -> None:
    sink = Recorder()
    transport = HeldHead(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    await asyncio.sleep(0)  # an SSE answer waiting for its first event: the head is not held back
    assert sink.writes == [HEAD]
    transport.write(b"data: 1\n\n")
    transport.write(b"data: 2\n\n")
    assert sink.writes == [HEAD, b"data: 1\n\n", b"data: 2\n\n"]


async def test_close_sends_a_held_head_first_and_the_rest_is_the_real_transport() -> None:
    sink = Recorder()
    transport = HeldHead(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    transport.close()
    assert sink.writes == [HEAD] and sink.closed
    assert transport.get_extra_info("peername") == "info:peername"
    await asyncio.sleep(0)
    assert sink.writes == [HEAD]
