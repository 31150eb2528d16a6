"""serve's side of the slot protocol: lend the pool's slots and breakers to front-ends on this machine.

A front-end (``ask``, ``chat``, ``telegram``) keeps its own router, agents and routing log, and asks
serve for what must be one per machine: a slot (in serve's own FIFO queue, so its requests and the
front-ends' wait in one line) and the breaker's verdict. The lender calls the pool's
:class:`~modelyard.router.state.ModelState` exactly as serve's router does, so whatever the pool is
(in-process, or Redis) the front-ends get the same answers.

Each connection is one front-end process; whatever it holds is given back when the connection ends,
for any reason (a clean exit, kill -9, a crash): the kernel closes the socket, the lender sees EOF.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import Reason
from modelyard.router.lending.wire import MAX_LINE, VERSION, Op, ProtocolError, decode, encode
from modelyard.router.slots import QueueTimeout
from modelyard.router.state import ModelState, Ticket

log = logging.getLogger("modelyard.lending")

#: the longest wait for a slot a front-end may ask for (its own queue bound is far below)
MAX_WAIT = 3600.0


def _peer(writer: asyncio.StreamWriter) -> tuple[int, int] | None:
    """(pid, uid) of the connected process, where the platform tells (Linux: SO_PEERCRED)."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         struct.calcsize("3i")))
    return pid, uid


def _wait_bound(value: Any) -> float:
    """A front-end's queue bound, within [0, MAX_WAIT] (NaN and negatives: 0, no wait)."""
    seconds = float(value)
    return min(seconds, MAX_WAIT) if seconds > 0 else 0.0


class Lender:
    """Serves ``states`` on the unix socket ``path`` (mode 600, in a private directory)."""

    def __init__(self, states: Mapping[str, ModelState], path: Path):
        self.states = states
        self.path = path
        self.loans: set[_Loan] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a serve that was killed (the registry said it is ours now)
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path), limit=MAX_LINE)
        self.path.chmod(0o600)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        loans = list(self.loans)
        for loan in loans:
            loan.writer.close()  # the handler reads EOF and gives everything back
        tasks = [loan.task for loan in loans if loan.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def borrowers(self) -> list[int]:
        """Pids of the front-ends connected now (0 where the platform does not say)."""
        return sorted(loan.pid for loan in self.loans)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        if peer is not None and peer[1] != os.getuid():  # the socket is 600 already; belt and braces
            log.warning("slot socket: refused a process of uid %d", peer[1])
            writer.close()
            return
        loan = _Loan(self, reader, writer, peer[0] if peer else 0)
        loan.task = asyncio.current_task()
        self.loans.add(loan)
        try:
            await loan.run()
        except (ProtocolError, ValueError, KeyError, TypeError) as exc:
            log.warning("slot socket: closing the connection of pid %d: %s", loan.pid, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the loop is shutting down: give back below, end quietly (asyncio would log a cancelled handler)
        finally:
            self.loans.discard(loan)
            await loan.end()
            writer.close()


class _Loan:
    """One front-end's connection and everything it holds."""

    def __init__(self, lender: Lender, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pid: int):
        self.lender = lender
        self.reader, self.writer = reader, writer
        self.pid = pid
        #: acquire id → the model whose slot it holds
        self.held: dict[int, ModelState] = {}
        #: acquire id → the task waiting in the model's queue
        self.waits: dict[int, asyncio.Task[None]] = {}
        #: admit id → the ticket the model's breaker gave
        self.tickets: dict[int, tuple[ModelState, Ticket]] = {}
        self.task: asyncio.Task[Any] | None = None
        self._ended = False

    async def run(self) -> None:
        while line := await self.reader.readline():
            await self.handle(decode(line))

    def reply(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    def _state(self, message: dict[str, Any]) -> ModelState | None:
        return self.lender.states.get(str(message["model"]))

    async def handle(self, message: dict[str, Any]) -> None:
        op = Op(message["op"])
        ident = int(message.get("id", 0))
        if op is Op.HELLO:
            self.pid = self.pid or int(message.get("pid", 0))
            self.reply({"op": "hello", "pid": os.getpid(), "version": VERSION,
                        "limits": {name: s.limit for name, s in self.lender.states.items()}})
        elif op is Op.ACQUIRE:
            state = self._state(message)
            if state is None:
                self.reply({"id": ident, "ok": False, "waited": 0.0, "reason": Reason.UNAVAILABLE,
                            "message": f"serve has no model {message['model']!r}"})
                return
            self.waits[ident] = asyncio.create_task(self._acquire(ident, state, _wait_bound(message["timeout"])))
        elif op in (Op.RELEASE, Op.DROP):
            if (task := self.waits.pop(ident, None)) is not None:
                task.cancel()  # a slot granted just before is passed on by the state itself
            if (state := self.held.pop(ident, None)) is not None:
                await state.release()
        elif op is Op.ADMIT:
            state = self._state(message)
            ticket = await state.admit() if state is not None else None
            if state is None or ticket is None:
                detail = state.cooling_detail() if state is not None else "unknown to serve"
                self.reply({"id": ident, "admission": None, "detail": detail})
                return
            self.tickets[ident] = (state, ticket)
            self.reply({"id": ident, "admission": ticket.admission.value, "generation": ticket.generation})
        elif op is Op.SUCCEEDED:
            if (entry := self.tickets.get(ident)) is not None:
                await entry[0].succeeded(entry[1])
        elif op is Op.FAILED:
            if (entry := self.tickets.get(ident)) is not None:
                after = message.get("retry_after")
                try:
                    reason = Reason(message["reason"])
                except ValueError:  # a front-end of a newer version: its verdict is skipped, not the connection
                    log.warning("slot socket: pid %d reported an unknown reason %r", self.pid, message["reason"])
                    return
                await entry[0].failed(entry[1], reason, None if after is None else float(after))
        elif op is Op.ABANDONED:
            if (entry := self.tickets.pop(ident, None)) is not None:
                await entry[0].abandoned(entry[1])
        elif op is Op.VIEW:
            self.reply({"id": ident, "view": {name: [c.value, detail, in_flight, waiting] for name, s
                                              in self.lender.states.items()
                                              for c, detail, in_flight, waiting in [s.snapshot()]}})

    async def _acquire(self, ident: int, state: ModelState, timeout: float) -> None:
        try:
            waited = await state.acquire(timeout)
        except QueueTimeout as exc:
            self.reply({"id": ident, "ok": False, "waited": timeout if exc.waited is None else exc.waited,
                        "reason": exc.reason.value, "message": str(exc)})
            return
        finally:
            self.waits.pop(ident, None)
        if self._ended:  # the front-end went away while this slot was being handed over
            await state.release()
            return
        self.held[ident] = state
        self.reply({"id": ident, "ok": True, "waited": waited})

    async def end(self) -> None:
        """The front-end is gone: its waits end, its slots and probes go back."""
        if self._ended:
            return
        self._ended = True
        waits = list(self.waits.values())
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        held, self.held = list(self.held.values()), {}
        for state in held:
            await state.release()
        tickets, self.tickets = list(self.tickets.values()), {}
        for state, ticket in tickets:
            await state.abandoned(ticket)
