"""Write routing-log rows off the request path, in batches.

The router calls :meth:`LogWriter.submit`, which only appends to an in-memory queue
(microseconds). A background thread drains the queue and writes everything it finds in
one transaction, so throughput grows with load instead of paying one fsync per request.
:meth:`flush` waits until everything submitted so far is committed — front-ends call it
before they report an answer as delivered, so a crash cannot lose a request the user saw.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from modelyard.ledger.db import connect
from modelyard.router.records import RequestRecord

_STOP = object()

REQUEST_COLUMNS = (
    "id", "parent_id", "ts", "agent", "model", "is_local", "outcome", "fallback_reason", "n_attempts",
    "queue_wait_ms", "ttft_ms", "total_ms", "tokens_in", "tokens_out", "tokens_per_s", "cost_usd",
    "prompt", "response", "thinking", "error",
)
ATTEMPT_COLUMNS = (
    "request_id", "seq", "ts", "agent", "model", "provider", "outcome", "reason", "detail", "queue_wait_ms",
    "ttft_ms", "duration_ms", "tokens_in", "tokens_out", "tokens_per_s", "cost_usd",
)
_INSERT_REQUEST = (f"INSERT OR REPLACE INTO requests ({', '.join(REQUEST_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})")
_INSERT_ATTEMPT = (f"INSERT OR REPLACE INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})")


def request_row(r: RequestRecord, local_models: frozenset[str]) -> tuple:
    reason = next((a.reason for a in r.attempts if a.outcome != "ok" and a.reason), None)
    return (
        r.id, r.parent_id, r.ts, r.agent, r.model,
        None if r.model is None else int(r.model in local_models),
        r.outcome, reason, len(r.attempts), r.queue_wait_ms, r.ttft_ms, r.total_ms, r.tokens_in, r.tokens_out,
        r.tokens_per_s, r.cost_usd, r.prompt, r.response, r.thinking, r.error,
    )


def attempt_rows(r: RequestRecord) -> Iterable[tuple]:
    for seq, a in enumerate(r.attempts):
        yield (r.id, seq, a.started_at, r.agent, a.model, a.provider, a.outcome, a.reason or None,
               a.detail or None, a.queue_wait_ms, a.ttft_ms, a.duration_ms, a.tokens_in, a.tokens_out,
               a.tokens_per_s, a.cost_usd)


class LogWriter:
    def __init__(self, path: str | Path, *, local_models: Iterable[str] = (), max_batch: int = 2000):
        self.path = Path(path)
        self.local_models = frozenset(local_models)
        self.max_batch = max_batch
        self.written = 0
        self.errors = 0
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._submitted = 0
        self._done = threading.Condition()
        #: (target count, future) of async callers waiting in wait_written(); guarded by _done
        self._async_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._conn: sqlite3.Connection = connect(self.path)
        self._thread = threading.Thread(target=self._loop, name="modelyard-log-writer", daemon=True)
        self._closed = False
        self._thread.start()
        atexit.register(self.close)

    def submit(self, record: RequestRecord) -> None:
        """Queue a finished request (with its attempts) for writing. Never blocks."""
        self._submitted += 1
        self._queue.put(record)

    __call__ = submit

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record submitted so far is committed."""
        target = self._submitted
        with self._done:
            return self._done.wait_for(lambda: self.written + self.errors >= target or self._closed, timeout)

    async def wait_written(self, timeout: float = 10.0) -> bool:
        """Async :meth:`flush`: wait, without blocking the event loop, until every record submitted so
        far is committed. Concurrent callers share the writer's next commit (group commit)."""
        target = self._submitted
        with self._done:
            if self.written + self.errors >= target or self._closed:
                return True
            fut = asyncio.get_running_loop().create_future()
            self._async_waiters.append((target, fut))
        try:
            async with asyncio.timeout(timeout):  # no extra task, unlike wait_for: this is per request
                await fut
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        self._conn.close()
        atexit.unregister(self.close)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._write(batch)
                    return
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[RequestRecord]) -> None:
        try:
            self._conn.execute("BEGIN")
            self._conn.executemany(_INSERT_REQUEST, [request_row(r, self.local_models) for r in batch])
            self._conn.executemany(_INSERT_ATTEMPT, [row for r in batch for row in attempt_rows(r)])
            self._conn.execute("COMMIT")
            ok, failed = len(batch), 0
        except sqlite3.Error as exc:  # disk full, locked for too long: count it, keep serving
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self.last_error = f"{type(exc).__name__}: {exc}"
            ok, failed = 0, len(batch)
        with self._done:
            self.written += ok
            self.errors += failed
            self._done.notify_all()
            done = self.written + self.errors
            ready = [f for t, f in self._async_waiters if t <= done]
            if ready:
                self._async_waiters = [(t, f) for t, f in self._async_waiters if t > done]
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for fut in ready:
            by_loop.setdefault(fut.get_loop(), []).append(fut)
        for loop, futures in by_loop.items():  # one wake-up per loop, however many waiters
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_resolve, futures)


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(None)
