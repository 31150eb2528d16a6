"""An OpenAI-compatible server that answers ``408 Request Timeout`` and closes a kept-alive connection it had let idle
past its keep-alive bound, instead of closing it silently.

What real servers do so: ntex's (Rust) keep-alive of 5 s — "if a pooled connection is idle for >5s and the client
reuses it, we get a 408 that does not appear in the router logs" (graphql-hive/router#1144); a server that "instead of
immediately closing the connection" sends "408 RequestTimeout ... with a ``Connection: close`` header"
(eclipse-rdf4j/rdf4j#3698); the proposal that Node's http server do the same when it closes idle connections
(nodejs/node#38890). MDN: a 408 "is sent on an idle connection by some servers, even without any previous request
by the client". RFC 9110 §15.5.9: "If the client has an outstanding request in transit, it MAY repeat that request";
the connection is no longer usable (httpwg/http-core#579), so on a new one.

Here the bound is checked when the next request arrives (the race in which the server's timer fires as the request
is in flight, made certain): a request on a connection idle longer than ``keep_alive`` seconds gets the 408 and the
close; a request on a new connection, or one reused in time, gets a streamed answer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Self

from tests.fakes.fixed_reply import read_request

ANSWER = "Sunny and warm."
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 15\r\n"
              b"connection: close\r\n\r\nRequest Timeout")


def _stream() -> bytes:
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ANSWER}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 4}}]
    return b"".join(b"data: %s\n\n" % json.dumps(e).encode() for e in events) + b"data: [DONE]\n\n"


class KeepAlive408Server:
    """The server in a thread of its own (its own loop), as the other fakes run: ``url``, ``answered``, ``timed_out``
    (408s sent), ``connections`` (accepted)."""

    def __init__(self, keep_alive: float = 0.3):
        self.keep_alive = keep_alive
        self.answered = self.timed_out = self.connections = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(5)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        loop = asyncio.get_running_loop()
        idle_since: float | None = None  # None: no answer given on this connection yet
        try:
            while True:
                await read_request(reader)
                if idle_since is not None and loop.time() - idle_since > self.keep_alive:
                    self.timed_out += 1
                    writer.write(_TIMED_OUT)
                    await writer.drain()
                    return
                body = _stream()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n"
                             % len(body) + body)
                await writer.drain()
                self.answered += 1
                idle_since = loop.time()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
