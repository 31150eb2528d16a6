"""A front-end's side of the slot protocol: slots and breakers borrowed from the running ``serve``.

``ask``, ``chat`` and ``telegram`` keep their own router, agents, tools and routing log; only what
must be one per machine comes from serve: the slot (serve's FIFO queue, shared with its own
requests) and the breaker. So ``max_concurrent: 2`` holds for everything on the machine, with no
Redis and with no request written to the log twice.

When serve is not there (never started, stopped, killed) each model falls back to a
:class:`~modelyard.router.pool.LocalState` of this process, and the link says so once through its
``notice`` callback (the CLI prints it, the bot logs it). A long-running front-end looks for serve
again at its next request once serve's registry entry has changed (a serve started or restarted since:
its first request then borrows), else at most every :data:`RETRY` seconds, and goes back to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.errors import Reason
from modelyard.router.health import Admission
from modelyard.router.lending.registry import Discovery, ServeEntry, discover, entry_path
from modelyard.router.lending.wire import MAX_LINE, VERSION, Op, ProtocolError, decode, encode
from modelyard.router.pool import LocalState  # pool imports this module only when it borrows: no cycle
from modelyard.router.slots import QueueTimeout
from modelyard.router.state import Condition, ModelState, Ticket

log = logging.getLogger("modelyard.state")

#: seconds between looks for a serve that is not (or no longer) there
RETRY = 2.0
#: bound on a reply that needs no waiting (admit, view, hello): serve is on this machine
REPLY_TIMEOUT = 1.0
#: seconds between reads of serve's view while connected (what /status, ``models`` and the metrics show)
VIEW_EVERY = 1.0


class ServeLost(Exception):
    """The connection to serve ended (or serve did not answer in time)."""


@dataclass(slots=True, frozen=True)
class BorrowedTicket(Ticket):
    """A ticket from serve's breaker (``connection`` > 0) or, with serve away, this process's (0)."""

    ref: int = 0
    connection: int = 0


class ServeLink:
    """This process's one connection to serve, shared by every model's :class:`BorrowedState`."""

    def __init__(self, config_path: str | os.PathLike[str], found: Discovery,
                 notice: Callable[[str], None] | None = None):
        self.config_path = Path(config_path)
        self.entry: ServeEntry | None = found.entry
        self.notice = notice or log.warning
        self.states: dict[str, BorrowedState] = {}
        self.limits: dict[str, int] = {}
        #: a number per connection: a slot or ticket from an earlier connection is not given back to a new one
        self.connection = 0
        self.reason = found.why
        self._said = ""
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader_task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_try = 0.0
        #: the registry entry as it was at the last look that found no serve to borrow from (see :meth:`_stamp`)
        self._down_stamp: tuple[int, int] | None = None
        self._entry_file: Path | None = None
        self._connecting: asyncio.Future[bool] | None = None
        self._view: dict[str, list[Any]] = {}
        self.view_at: float | None = None
        self._watch_task: asyncio.Task[None] | None = None
        #: attempts to connect so far (a first, successful one is silent; a later one says it joined)
        self._attempts = 0

    @property
    def up(self) -> bool:
        """Connected, on the loop that runs now (a plain CLI listing has no loop: not up)."""
        try:
            return self._writer is not None and self._loop is asyncio.get_running_loop()
        except RuntimeError:
            return False

    def differences(self) -> list[str]:
        """How serve's limits differ from this process's config — serve read the file when it started, so an
        edit since (a model added, a limit changed) is not in it until it restarts."""
        out = []
        for name, state in sorted(self.states.items()):
            theirs = self.limits.get(name)
            if theirs is None:
                out.append(f"{name} is not in it (its limits stay in this process)")
            elif theirs != state.limit:
                out.append(f"{name}: max_concurrent {state.limit} in the file, {theirs} in serve (serve's applies)")
        return out

    def _drift(self) -> str:
        diffs = self.differences() if self.limits else []
        return (f"runs this config as the file was when it started — {'; '.join(diffs)}: restart it to apply "
                "the file" if diffs else "")

    def describe(self) -> str:
        """One line for ``models``, the bot's start line and /healthz: where this process's limits live."""
        if self._writer is not None and self.entry is not None:
            drift = self._drift()
            return f"shared with `modelyard serve` (pid {self.entry.pid})" + (f"; it {drift}" if drift else "")
        why = f": {self.reason}" if self.reason else " (no `modelyard serve` running for this config)"
        return f"this process only{why}"

    def _say(self, message: str) -> None:
        if message != self._said:
            self._said = message
            self.notice(message)

    # -- connection -----------------------------------------------------------------------

    async def ready(self) -> bool:
        """Connected to serve (connecting if it is time to look again)?"""
        if self.up:
            return True
        if self._connecting is not None:  # one attempt at a time; the others wait for its outcome
            return await asyncio.shield(self._connecting)
        if time.monotonic() < self._next_try and self._stamp() == self._down_stamp:
            return False  # nothing announced since the last look: not yet time to look again
        fut = self._connecting = asyncio.get_running_loop().create_future()
        ok = False
        try:
            ok = await self._connect()
        except Exception as exc:  # whatever went wrong, this process must go on with its own state
            self._down(f"cannot reach `modelyard serve` ({type(exc).__name__}: {exc})")
        finally:
            self._connecting = None
            fut.set_result(ok)  # the callers waiting on this attempt (a cancelled one still resolves them)
        return ok

    async def _connect(self) -> bool:
        had = self.connection > 0 or self._attempts > 0  # a front-end that ran on its own a while: say it joins
        self._attempts += 1
        self._down_stamp = self._stamp()  # before the look: a serve announced during it is looked for again
        found = discover(self.config_path)
        if found.entry is None:
            self._down(found.why)
            return False
        self.entry = found.entry
        if not found.entry.socket:
            self._down(f"`modelyard serve` (pid {found.entry.pid}) does not lend its slots")
            return False
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(found.entry.socket, limit=MAX_LINE)
                writer.write(encode({"op": Op.HELLO, "pid": os.getpid(), "version": VERSION}))
                hello = decode(await reader.readline())
            limits = {str(k): int(v) for k, v in dict(hello.get("limits") or {}).items()}
        except (OSError, TimeoutError, ProtocolError, ValueError, TypeError) as exc:
            if writer is not None:
                writer.close()
            self._down(f"`modelyard serve` (pid {found.entry.pid}) does not answer on {found.entry.socket} "
                       f"({type(exc).__name__})")
            return False
        if hello.get("version") != VERSION:
            writer.close()
            self._down(f"`modelyard serve` (pid {found.entry.pid}) runs another version of modelyard "
                       f"(slot protocol {hello.get('version')!r}, here {VERSION}): restart it after an upgrade")
            return False
        self.limits = limits
        self._loop = asyncio.get_running_loop()
        self._writer = writer
        self.connection += 1
        self.reason = ""
        self._reader_task = self._loop.create_task(self._read(reader, self.connection), name="modelyard-serve-link")
        self._watch_task = self._loop.create_task(self._watch(self.connection), name="modelyard-serve-view")
        if had:
            self._say(f"limits: shared with `modelyard serve` (pid {found.entry.pid}) now")
        self._said = ""
        if drift := self._drift():  # an edited config: say it once per connection, not silently mix the two
            self._say(f"limits: `modelyard serve` (pid {found.entry.pid}) {drift}")
        return True

    def _stamp(self) -> tuple[int, int] | None:
        """Which registry file is there now (inode, mtime; None: none). A serve announces itself by replacing the
        file, so a serve started since the last look changes it: without this check, a request within
        :data:`RETRY` of that look ran on this process's own slots beside serve's (and a bot that got no other
        request kept them) — one stat, not a read."""
        try:
            if self._entry_file is None:
                self._entry_file = entry_path(self.config_path)
            info = self._entry_file.stat()
        except (OSError, ValueError, RuntimeError):
            return None
        return info.st_ino, info.st_mtime_ns

    def _down(self, why: str) -> None:
        self._next_try = time.monotonic() + RETRY
        self.reason = why
        if why:  # nothing to say when no serve was ever announced: this process is simply on its own
            self._say(f"limits: this process only — {why}")

    async def _read(self, reader: asyncio.StreamReader, connection: int) -> None:
        why = "it closed the connection"
        try:
            while line := await reader.readline():
                message = decode(line)
                fut = self._pending.pop(int(message.get("id", 0)), None)
                if fut is not None and not fut.done():
                    fut.set_result(message)
        except (OSError, ValueError, ProtocolError, asyncio.IncompleteReadError) as exc:
            why = f"{type(exc).__name__}"
        except asyncio.CancelledError:
            return
        if connection == self.connection:
            self.lost(f"lost `modelyard serve` (pid {self.entry.pid if self.entry else '?'}): {why}")

    def lost(self, why: str) -> None:
        """Serve is gone: every waiting call raises :class:`ServeLost`, the models use this process's state."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ServeLost(why))
        self._pending.clear()
        self._view = {}
        self._down_stamp = self._stamp()
        self._down(why)
        self._next_try = time.monotonic() + RETRY / 4  # a restarted serve is usually back quickly

    # -- calls ----------------------------------------------------------------------------

    def new_id(self) -> int:
        return next(self._ids)

    def send(self, message: dict[str, Any]) -> None:
        """A message that needs no answer (its order relative to the others is kept)."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode(message))

    async def call(self, message: dict[str, Any], timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        if not self.up:
            raise ServeLost(self.reason or "not connected")
        assert self._loop is not None
        ident = message.setdefault("id", self.new_id())
        fut: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[ident] = fut
        self.send(message)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            self.lost(f"`modelyard serve` did not answer within {timeout:g}s")
            raise ServeLost(self.reason) from None
        finally:
            self._pending.pop(ident, None)

    # -- the view -------------------------------------------------------------------------

    def view(self, model: str) -> list[Any] | None:
        """Serve's view of ``model`` (at most :data:`VIEW_EVERY` old), or None when not connected."""
        return self._view.get(model) if self.up else None

    async def peek(self) -> None:
        """Read every model's state from serve now (connecting if need be)."""
        try:
            if await self.ready():
                reply = await self.call({"op": Op.VIEW})
                self._view = dict(reply.get("view") or {})
                self.view_at = time.monotonic()
        except ServeLost:
            pass

    async def _watch(self, connection: int) -> None:
        """Keep the view fresh while this connection lasts (a long-running bot's /status reads it)."""
        while connection == self.connection and self.up:
            await asyncio.sleep(VIEW_EVERY)
            await self.peek()

    async def aclose(self) -> None:
        """Closing the connection gives back, at serve, everything this process still holds."""
        for task in (self._watch_task, self._reader_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                    await task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, RuntimeError):
                await self._writer.wait_closed()
            self._writer = None


def _reason(value: Any) -> Reason:
    """Why serve gave no slot (a reason this version does not know reads as a queue timeout)."""
    try:
        return Reason(value)
    except ValueError:
        return Reason.QUEUE_TIMEOUT


class BorrowedState(ModelState):
    """One model: slots and breaker at serve while it answers, else ``local`` (this process alone)."""

    def __init__(self, local: LocalState, link: ServeLink):
        self.name = local.name
        self.limit = local.limit
        self.local = local
        self.link = link
        #: what this process holds, newest last: (acquire id, connection, task), connection 0 = a local slot
        self.held: list[tuple[int, int, asyncio.Task[Any] | None]] = []
        self._skip = ""
        link.states[self.name] = self

    async def _remote(self) -> bool:
        return await self.link.ready() and self.name in self.link.limits

    # -- slots ----------------------------------------------------------------------------

    async def acquire(self, timeout: float) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        if await self._remote():
            ident, connection = self.link.new_id(), self.link.connection
            try:
                reply = await self.link.call({"op": Op.ACQUIRE, "id": ident, "model": self.name, "timeout": timeout},
                                             timeout + REPLY_TIMEOUT)
            except ServeLost:
                pass  # serve went away while this request waited: wait here for what is left
            except BaseException:
                self.link.send({"op": Op.DROP, "id": ident})  # cancelled: the wait (or its fresh slot) goes back
                raise
            else:
                if reply.get("ok"):
                    self.held.append((ident, connection, asyncio.current_task()))
                    return float(reply.get("waited") or 0.0)
                raise QueueTimeout(str(reply.get("message") or "no free slot"), waited=float(reply.get("waited") or 0),
                                   reason=_reason(reply.get("reason")))
        remaining = timeout - (loop.time() - start)
        if remaining <= 0:
            raise QueueTimeout(f"no free slot within {timeout:g}s ({self.link.reason})", waited=loop.time() - start)
        await self.local.acquire(remaining)
        self.held.append((0, 0, asyncio.current_task()))
        return loop.time() - start

    async def release(self) -> None:
        """Give back the slot this task took (the router takes and gives back in one task): with slots
        from serve and from this process both held around a switch, the right one goes back."""
        if not self.held:
            return
        task = asyncio.current_task()
        mine = next((i for i in range(len(self.held) - 1, -1, -1) if self.held[i][2] is task), len(self.held) - 1)
        ident, connection, _ = self.held.pop(mine)
        if connection == 0:
            await self.local.release()
        elif connection == self.link.connection:
            self.link.send({"op": Op.RELEASE, "id": ident})
        # else: granted by a serve that is gone; its slot went with it

    # -- breaker --------------------------------------------------------------------------

    async def admit(self) -> Ticket | None:
        if await self._remote():
            try:
                reply = await self.link.call({"op": Op.ADMIT, "model": self.name})
            except ServeLost:
                pass
            else:
                if reply.get("admission") is None:
                    self._skip = str(reply.get("detail") or "cooling down at serve")
                    return None
                return BorrowedTicket(Admission(reply["admission"]), int(reply.get("generation") or 0),
                                      ref=int(reply["id"]), connection=self.link.connection)
        ticket = await self.local.admit()
        if ticket is None:
            self._skip = f"{self.local.cooling_detail()} (this process alone)"
            return None
        return BorrowedTicket(ticket.admission, ticket.generation)

    def _at_serve(self, ticket: Ticket) -> bool:
        return isinstance(ticket, BorrowedTicket) and ticket.connection > 0

    async def succeeded(self, ticket: Ticket) -> None:
        if self._at_serve(ticket):
            self._send_verdict(ticket, {"op": Op.SUCCEEDED})
        else:
            await self.local.succeeded(ticket)

    async def failed(self, ticket: Ticket, reason: Reason, retry_after: float | None = None) -> None:
        if self._at_serve(ticket):
            self._send_verdict(ticket, {"op": Op.FAILED, "reason": reason.value, "retry_after": retry_after})
        else:
            await self.local.failed(ticket, reason, retry_after)

    async def abandoned(self, ticket: Ticket) -> None:
        if self._at_serve(ticket):
            self._send_verdict(ticket, {"op": Op.ABANDONED})
        else:
            await self.local.abandoned(ticket)

    def _send_verdict(self, ticket: Ticket, message: dict[str, Any]) -> None:
        assert isinstance(ticket, BorrowedTicket)
        if ticket.connection == self.link.connection:  # else: that serve is gone, and its breaker with it
            self.link.send({**message, "id": ticket.ref})

    # -- what it looks like ---------------------------------------------------------------

    def cooling_detail(self) -> str:
        return self._skip

    def snapshot(self) -> tuple[Condition, str, int, int]:
        view = self.link.view(self.name)
        if view is not None:
            condition, detail, in_flight, waiting = view
            return Condition(condition), f"{detail} (at serve)" if detail else "", int(in_flight), int(waiting)
        condition, detail, in_flight, waiting = self.local.snapshot()
        return condition, detail, in_flight, waiting
