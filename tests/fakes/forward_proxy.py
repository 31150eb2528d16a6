"""A company's forward HTTP proxy on loopback: the one way out to names this machine cannot resolve itself.

As RFC 9112 §3.2.2 and squid/tinyproxy take it: a request in absolute form (``POST http://api.cloud.test:8080/v1/…
HTTP/1.1``) with ``Proxy-Authorization: Basic …`` when the proxy asks for a user (407 without it, RFC 9110 §15.5.8).
The proxy resolves the name itself (here: from ``names``, host → loopback port) and passes the bytes on both ways; the
origin server takes the absolute-form target as HTTP/1.1 servers must. CONNECT (https:// through the proxy) is not
served: the fakes speak plain HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Self


class ForwardProxy:
    """``names``: the host names the proxy reaches, each to a port on 127.0.0.1. ``seen``: each request's target and
    its ``Proxy-Authorization``, in order."""

    def __init__(self, names: dict[str, int], *, user: str | None = None, password: str | None = None) -> None:
        self.names = names
        self.credentials = (base64.b64encode(f"{user}:{password}".encode()).decode() if user else None)
        self.seen: list[tuple[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="forward-proxy")
        self.port = 0

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        """Every connection still piped ends here, so none is left to a closed loop."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) == 3 else ""
        auth = next((line.split(":", 1)[1].strip() for line in lines[1:]
                     if line.lower().startswith("proxy-authorization:")), "")
        self.seen.append((target, auth))
        if self.credentials and auth != f"Basic {self.credentials}":
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        host = target.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        if not target.startswith("http://") or host not in self.names:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.names[host])
        # on to the origin in origin form, the proxy's own headers dropped, one request per connection (a proxy may
        # close after each response: the client opens another)
        method, _, version = lines[0].split(" ")
        path = "/" + target.split("://", 1)[1].partition("/")[2]
        kept = [line for line in lines[1:] if line and not line.lower().startswith(
            ("proxy-authorization:", "proxy-connection:", "connection:"))]
        forwarded = [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
        up_writer.write("\r\n".join(forwarded).encode("latin-1"))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        upstream = asyncio.ensure_future(pipe(reader, up_writer))
        await pipe(up_reader, writer)  # the origin's answer, until it closes: then this connection closes too
        upstream.cancel()
