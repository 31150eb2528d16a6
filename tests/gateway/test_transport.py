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

    def get_write_buffer_size(self) -> int:  # asyncio's transports have it; HeldHead asks after each write
        return 0


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


async def test_keep_alive_closes_an_idle_connection_only_after_the_bound_since_its_last_answer() -> None:
    """One keep-alive timer per connection (issue #15): requests that keep coming keep it open past the
    bound counted from the first answer; idle for the bound after the last answer, the server closes it."""
    import socket

    import uvicorn

    from modelyard.gateway.transport import OneWriteProtocol

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=OneWriteProtocol,  # type: ignore[arg-type]
                                           timeout_keep_alive=0.4, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(5):  # 1 s of requests 0.25 s apart: past the bound counted from the first answer
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
            last = loop.time()  # after the server's answer (read here, not the sleep's end: a loaded loop oversleeps)
            await asyncio.sleep(0.25)
        assert loop.time() - t0 > 1.0
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server...
        assert loop.time() - last >= 0.39  # ...no earlier than the bound after the last answer
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def test_a_client_that_says_nothing_or_stops_halfway_is_closed_after_the_bound() -> None:
    """uvicorn bounds only the wait between requests: a connection that never sent a byte, or stopped halfway
    through a request's head or body (a client gone without a FIN, a slowloris), was held for good — its fd, and
    for a body its handler task waiting for the rest. A weeks-long ``serve`` ran out of them. Now every wait on
    the client has the bound (mid-body the gateway's handler answers a 408 first: test_client_faults_round2.py); a
    body that keeps coming within a few bounds, and an answer that takes longer than the bound, are not cut."""
    import socket

    import uvicorn

    from modelyard.gateway.transport import OneWriteProtocol

    bound = 0.5
    handlers: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                handlers.append("disconnect")
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/slow":
            await asyncio.sleep(bound * 3)  # the app answering: not the client's silence
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        handlers.append("answered")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=OneWriteProtocol,  # type: ignore[arg-type]
                                           timeout_keep_alive=bound, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        silent = {
            "nothing": b"",
            "half a head": b"POST /echo HTTP/1.1\r\nhost: x\r\n",
            "half a body": b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{\"a\"",
        }
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in silent]
        t0 = loop.time()
        for (_, writer), sent in zip(opened, silent.values(), strict=True):
            writer.write(sent)
        # a body that trickles in slower than nothing at all would be cut, but each piece within the bound
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\n\r\n")
        for piece in (b"ab", b"cd", b"ef"):
            await asyncio.sleep(bound * 0.6)
            writer.write(piece)
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(6) == b"abcdef"
        writer.write(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nok")
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(2) == b"ok"
        writer.close()
        for name, (silent_reader, silent_writer) in zip(silent, opened, strict=True):
            assert await asyncio.wait_for(silent_reader.read(), 5) == b"", name  # closed by the server
            silent_writer.close()
        assert loop.time() - t0 >= bound * 0.9
        while "disconnect" not in handlers:  # the handler waiting for the rest of the body is let go
            assert loop.time() - t0 < 5
            await asyncio.sleep(0.01)
        assert sorted(handlers) == ["answered", "answered", "disconnect"]
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
