"""A Starlette app served by uvicorn on a loopback port in a background thread.

Tests drive real HTTP clients against it, so the server must start in well under a
second, stop promptly even while handlers hang, and record what it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.faults import Fault, FaultLike, FaultScript

T = TypeVar("T")

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 3.0


class _QuickServer(uvicorn.Server):
    """uvicorn without its 0.1 s polling tick and grace sleep: tests stop servers constantly."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_requested: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self.exit_requested = asyncio.Event()
        await self.on_tick(0)  # fills the default headers
        if not self.should_exit:
            await self.exit_requested.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()


@dataclass
class RecordedRequest:
    """What one request looked like on the wire (headers lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    json: Any = None
    received_at: float = field(default_factory=time.monotonic)
    fault: Fault | None = None


def poll(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
    """Poll `predicate` until it returns something truthy; TimeoutError otherwise (blocks the thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


async def apoll(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
    """poll() for async tests: yields to the event loop while polling."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


class FakeServer:
    """Base class: subclasses provide `routes()`; this class runs and observes them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._in_flight_by_model: dict[str, int] = {}
        self._max_in_flight_by_model: dict[str, int] = {}
        self.faults = FaultScript()
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._uvicorn: _QuickServer | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ----- lifecycle -------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def start(self) -> Self:
        """Bind 127.0.0.1 (same port as before on a restart) and serve in a thread."""
        if self.running:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port or 0))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=self.routes()),
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="critical",
            access_log=False,
            timeout_graceful_shutdown=0,
        )
        self._uvicorn = _QuickServer(config)
        self._error = None
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sock, ready), name=f"{type(self).__name__}:{self._port}", daemon=True
        )
        self._thread.start()
        ready.wait(_START_TIMEOUT)
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} failed to start") from self._error
            time.sleep(0.002)
        return self

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._stopping = asyncio.Event()
        ready.set()
        assert self._uvicorn is not None
        try:
            loop.run_until_complete(self._uvicorn.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced by start()
            self._error = exc
        finally:
            sock.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Abort every connection (hanging handlers included) and end the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(self._begin_shutdown)
        thread.join(_STOP_TIMEOUT)
        self._thread = None
        self._loop = None

    def _begin_shutdown(self) -> None:
        server = self._uvicorn
        assert server is not None
        server.should_exit = True
        server.force_exit = True
        if server.exit_requested is not None:
            server.exit_requested.set()
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        if self._stopping is not None:
            self._stopping.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stopping(self) -> asyncio.Event:
        """Set (inside the server loop) when stop() begins; hanging handlers watch it."""
        assert self._stopping is not None
        return self._stopping

    # ----- faults ----------------------------------------------------------------------

    def push(self, *faults: FaultLike, times: int = 1) -> None:
        """Queue one-shot faults for the next requests."""
        self.faults.push(*faults, times=times)

    def set_default(self, fault: FaultLike) -> None:
        """Sticky fault used when no one-shot fault is queued."""
        self.faults.set_default(fault)

    # ----- recording -------------------------------------------------------------------

    async def record(
        self, request: Request, parsed: Any = None, *, parse_json: bool = True
    ) -> RecordedRequest:
        """Read the body and keep a copy; `parsed` overrides the JSON decoding."""
        body = await request.body()
        if parsed is None and parse_json and body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body,
            json=parsed,
        )
        with self._lock:
            self._requests.append(recorded)
        return recorded

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request received yet")
            return self._requests[-1]

    # ----- concurrency accounting ------------------------------------------------------

    def tracked(self, app: ASGIApp, model: str | None = None) -> ASGIApp:
        """Count the request as in flight until `app` has finished responding."""
        self._enter(model)

        async def run(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await app(scope, receive, send)
            finally:
                self._leave(model)

        return run

    def _enter(self, model: str | None) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            if model is not None:
                now = self._in_flight_by_model.get(model, 0) + 1
                self._in_flight_by_model[model] = now
                self._max_in_flight_by_model[model] = max(self._max_in_flight_by_model.get(model, 0), now)

    def _leave(self, model: str | None) -> None:
        with self._lock:
            self._in_flight -= 1
            if model is not None:
                self._in_flight_by_model[model] -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight_by_model(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._in_flight_by_model.items() if v}

    @property
    def max_in_flight_by_model(self) -> dict[str, int]:
        with self._lock:
            return dict(self._max_in_flight_by_model)

    def reset_counters(self) -> None:
        """Forget recorded requests and restart the peaks from the current load."""
        with self._lock:
            self._requests.clear()
            self._max_in_flight = self._in_flight
            self._max_in_flight_by_model = {k: v for k, v in self._in_flight_by_model.items() if v}

    def reset(self) -> None:
        """reset_counters() plus an empty fault queue and the `ok` default."""
        self.reset_counters()
        self.faults.clear()

    # ----- helpers ---------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
        """Poll `predicate` until it returns something truthy; TimeoutError otherwise."""
        return poll(predicate, timeout, interval)

    async def wait_for_async(
        self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01
    ) -> T:
        """wait_for() for async tests: yields to the test's event loop while polling."""
        return await apoll(predicate, timeout, interval)
