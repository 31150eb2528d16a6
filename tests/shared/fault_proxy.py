"""A loopback TCP proxy of the tests' own between modelyard and a real server (Redis, PostgreSQL), run in a thread
so that ``modelyard serve`` child processes can go through it while the test drives the faults.

The faults are the ones a small team meets between two hosts, in the shapes users report them: a node isolated by an
``iptables`` DROP rule, where the client waits on a connection nothing answers (redis/redis-py#2243, "process hangs
due to default socket_timeout=None"); a ~15-minute hang in a network hiccup (redis/redis-py#1527); a server paused
(``DEBUG SLEEP``, ``docker pause``) leaving the connection half-open (redis/ioredis#1318):

- ``delay(s, jitter=j)``: every chunk the client sends reaches the server ``s`` seconds late, give or take up to
  ``j`` (a slow link or a slow server: each command's answer comes ``s`` later; a WAN or VPN varies from one packet
  to the next; order is kept, as TCP keeps it);
- ``partition()``: this host is cut off — the connections open now go silent in both directions (no RST, no FIN,
  what a firewall dropping packets looks like), and new ones are accepted and then hear nothing;
- ``reset()``: every open connection is reset (RST) and new ones are refused until :meth:`heal`;
- ``silence_on(marker)``: a connection goes silent as above the moment its client sends ``marker`` (a query's text),
  which never arrives: the path dropped while that query's answer is awaited, every time (a ``partition()`` timed by
  watching the server races the query);
- ``stall_after(n)``: a connection stops reading its server's bytes once it carried ``n`` of them — a peer that
  stops reading (a client process paused, a path whose receive window stays shut): the server's send buffer fills
  and it blocks writing the answer (PostgreSQL's ``ClientWrite`` wait event, "waiting to write data to the client":
  https://www.postgresql.org/docs/current/monitoring-stats.html#WAIT-EVENT-CLIENT-TABLE), while new connections
  pass;
- ``silence_open()``: the connections open now go silent, new ones pass — a client that has not yet read what
  its server did on its connection (closed it, as it stopped), while its next new connection meets the stopped server
  (refused upstream, closed at once: libpq's "server closed the connection unexpectedly");
- ``drop_reply_on(marker)``: the next connection whose client sends ``marker`` carries it to the server, then is
  reset (RST) the moment the server's answer comes, which never reaches the client: a proxy or a path that drops the
  connection mid-reply, after the command ran (redis-py raises ``ConnectionError``; a retried command runs twice);
- ``heal()``: everything passes again (connections made from now on; silenced ones stay dead, as after a real
  partition the client has to notice and reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from enum import Enum
from typing import Any


class Mode(Enum):
    PASS = 1
    PARTITIONED = 2
    REFUSING = 3


class _Pipe:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter):
        self.client, self.upstream = client, upstream
        self.silent = False
        self.carried = 0  # bytes from the server (``stall_after``)
        self.drop_reply = False  # its next answer from the server is dropped with the connection (``drop_reply_on``)


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = Mode.PASS
        self.latency = 0.0
        self.jitter = 0.0
        self._random = random.Random(7)
        self.connections = 0
        self.trigger: bytes | None = None
        self.stall: int | None = None
        self.drop_marker: bytes | None = None
        self._pipes: list[_Pipe] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fault-proxy")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def close(self) -> None:
        """Stop serving, close every connection, end the tasks still carrying, then close the loop: left open (and
        its tasks pending), the collector reported an unclosed event loop in whichever later test it came in."""
        async def stop() -> None:
            for pipe in self._pipes:
                pipe.client.close()
                pipe.upstream.close()
            if self._server is not None:
                self._server.close()
            await asyncio.sleep(0.05)
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)  # the closed transports' connection_lost callbacks
        self._run(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def open(self) -> int:
        """How many connections the proxy carries now (each leaves once both its ends closed)."""
        return len(self._pipes)

    def url(self, scheme: str = "redis", path: str = "/0") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    # -- faults -----------------------------------------------------------------------------

    def delay(self, seconds: float, jitter: float = 0.0) -> None:
        self.latency, self.jitter = seconds, jitter

    def partition(self) -> int:
        """Silence every open connection, and accept new ones only to hear nothing; how many went silent."""
        self.mode = Mode.PARTITIONED
        return self.silence_open()

    def silence_open(self) -> int:
        """Silence every open connection (nothing more reaches either end, not even a close); new ones pass. How
        many went silent."""
        silenced = [p for p in self._pipes if not p.silent]
        for pipe in silenced:
            pipe.silent = True
        return len(silenced)

    def silence_on(self, marker: bytes) -> None:
        """Silence each connection whose client sends ``marker``, from that chunk on (it is swallowed)."""
        self.trigger = marker

    def drop_reply_on(self, marker: bytes) -> None:
        """Reset the next connection that sends ``marker`` when its answer comes (once)."""
        self.drop_marker = marker

    def stall_after(self, carried: int) -> None:
        """Stop reading from the server on each connection that carried ``carried`` bytes from it (it stays open)."""
        self.stall = carried

    def reset(self) -> None:
        """RST every open connection and refuse new ones."""
        self.mode = Mode.REFUSING

        def rst() -> None:
            for pipe in list(self._pipes):
                for writer in (pipe.client, pipe.upstream):
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.close()
            self._pipes.clear()
        self._loop.call_soon_threadsafe(rst)

    def heal(self) -> None:
        self.mode = Mode.PASS
        self.latency = 0.0
        self.jitter = 0.0
        self.trigger = None
        self.stall = None
        self.drop_marker = None

    # -- inside the proxy's loop --------------------------------------------------------------

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._carry, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode is Mode.REFUSING:
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pipe = _Pipe(writer, up_writer)
        pipe.silent = self.mode is Mode.PARTITIONED
        self._pipes.append(pipe)
        self.connections += 1
        try:
            await asyncio.gather(self._pump(reader, up_writer, pipe, delayed=True),
                                 self._pump(up_reader, writer, pipe, delayed=False))
        finally:
            with contextlib.suppress(ValueError):
                self._pipes.remove(pipe)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, pipe: _Pipe, *, delayed: bool) -> None:
        """Carry one direction. Delayed chunks go out in order, each ``latency`` after it arrived."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        last = 0.0  # a chunk never overtakes the one before it (TCP's order)

        async def send() -> None:
            while True:
                at, data = await queue.get()
                if (wait := at - self._loop.time()) > 0:
                    await asyncio.sleep(wait)
                try:
                    if pipe.silent:
                        continue  # swallowed: the sender saw it leave, nothing arrives
                    dst.write(data)
                    await dst.drain()
                finally:
                    queue.task_done()

        sender = asyncio.ensure_future(send())
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                if delayed and self.trigger is not None and self.trigger in data:
                    pipe.silent = True
                if delayed and self.drop_marker is not None and self.drop_marker in data:
                    self.drop_marker = None
                    pipe.drop_reply = True
                if not delayed and pipe.drop_reply:
                    for writer in (pipe.client, pipe.upstream):  # the answer goes nowhere: RST both ways
                        sock = writer.get_extra_info("socket")
                        if sock is not None:
                            with contextlib.suppress(OSError):
                                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        writer.close()
                    break
                late = max(0.0, self.latency + self._random.uniform(-self.jitter, self.jitter)) if delayed else 0.0
                last = max(last, self._loop.time() + late)
                queue.put_nowait((last, data))
                if not delayed:
                    pipe.carried += len(data)
                    if self.stall is not None and pipe.carried >= self.stall:
                        await asyncio.Event().wait()  # reads no more, until the proxy closes
                if sender.done():
                    break
        with contextlib.suppress(OSError, ConnectionError, asyncio.TimeoutError):
            async with asyncio.timeout(max(self.latency + self.jitter, 0) + 1):
                # every chunk still delayed is delivered before the close, as TCP delivers the bytes sent before a FIN
                # (``queue.empty()`` was true once the sender had taken the last chunk, still waiting out its delay:
                # a command written just before its client closed the connection never arrived)
                delivered = asyncio.ensure_future(queue.join())
                try:
                    await asyncio.wait([delivered, sender], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    delivered.cancel()
        sender.cancel()
        if not pipe.silent:
            dst.close()
