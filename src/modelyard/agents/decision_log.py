"""Write routing decisions to the ``routing_decisions`` table, off the request path.

Same idea as :class:`modelyard.ledger.LogWriter`, much smaller: ``submit`` only queues a row;
one background thread per log file writes it. ``flush`` waits for everything queued so far
(tests, and front-ends before they exit).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from pathlib import Path
from typing import ClassVar

from modelyard.agents.classifier import Decision
from modelyard.ledger.db import connect

log = logging.getLogger(__name__)
_INSERT = ("INSERT INTO routing_decisions (request_id, ts, text, agent, method, confidence, ms) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")


class DecisionLog:
    _instances: ClassVar[dict[Path, DecisionLog]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path):
        self.path = path
        self._queue: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._submitted = 0
        self._done = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="modelyard-decision-log", daemon=True)
        self._thread.start()

    @classmethod
    def for_path(cls, path: str | Path) -> DecisionLog:
        key = Path(path).expanduser().absolute()
        with cls._lock:
            if key not in cls._instances:
                cls._instances[key] = cls(key)
            return cls._instances[key]

    def submit(self, decision: Decision, *, text: str | None, request_id: str | None) -> None:
        """Queue one decision. ``text`` is None when the config says not to store text."""
        self._submitted += 1
        self._queue.put((request_id, time.time(), text, decision.agent, decision.method,
                         decision.confidence, decision.ms))

    def flush(self, timeout: float = 10.0) -> bool:
        target = self._submitted
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def _loop(self) -> None:
        conn = None
        while True:
            rows = [self._queue.get()]
            while True:
                try:
                    rows.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            real = [r for r in rows if r is not None]
            try:
                if real:
                    conn = conn or connect(self.path)
                    conn.execute("BEGIN")
                    try:
                        conn.executemany(_INSERT, real)
                        conn.execute("COMMIT")
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
            except Exception as exc:  # a broken log must never break routing
                log.warning("could not write routing decisions to %s: %s", self.path, exc)
            with self._cond:
                self._done += len(real)
                self._cond.notify_all()
            if None in rows:
                if conn is not None:
                    conn.close()
                return


def _flush_all() -> None:
    for instance in list(DecisionLog._instances.values()):
        instance.flush(timeout=5.0)


atexit.register(_flush_all)
