"""Cancel work when the HTTP client goes away, so an abandoned request frees its model slot at once.

ASGI servers do not cancel a handler when the client disconnects; they only report it as an
``http.disconnect`` message on ``receive``. Watching for that message while the work runs is
what lets a dropped connection release the upstream call (and its slot) instead of letting a
local model generate, for nobody, until its token budget runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive, Scope

from modelyard.errors import Reason
from modelyard.router.clock import running_loop
from modelyard.router.records import CALLER_GONE

T = TypeVar("T")

#: the scope key under which a server that reports a lost connection itself puts its :class:`Hangup`
HANGUP = "modelyard.hangup"
#: the scope key under which the server puts a :class:`LateBody` when it stops waiting for a request's body
LATE_BODY = "modelyard.late_body"


class LateBody:
    """The server stopped waiting for the rest of a request's body (gateway/transport.py): the handler reading it
    sees a disconnect, as for a client gone, and — the client being still there — may :meth:`answer` it with a 408
    that says ``why``. Only a late body makes one: nothing of it is on a request's normal path."""

    __slots__ = ("_revive", "why")

    def __init__(self, why: str, revive: Callable[[], None]):
        self.why = why
        self._revive = revive

    def answer(self) -> None:
        """Make the connection take the handler's response again (it then closes after it)."""
        self._revive()


class Hangup:
    """A request's "the client went away" signal, set by the server (gateway/transport.py) when its
    connection is lost: watching it costs a set entry instead of a task per request (issue #15)."""

    __slots__ = ("gone", "listeners")

    def __init__(self) -> None:
        #: True once the connection is lost; a :class:`Reason` when the server cut it off (``client_stalled``)
        self.gone: bool | Reason = False
        self.listeners: set[Callable[[], None]] = set()

    def lost(self, why: bool | Reason = True) -> None:
        self.gone = why
        for listener in list(self.listeners):
            listener()


def say_why_gone(scope: Scope) -> None:
    """Call in the request's task, cancelled by a lost connection, before its work is closed: when the server cut the
    client off (it stopped reading its answer), the routing row's cancelled attempt says ``client_stalled``, not
    ``cancelled`` (the router reads :data:`~modelyard.router.records.CALLER_GONE` in this task's context)."""
    hangup = scope.get(HANGUP)
    if hangup is not None and isinstance(hangup.gone, Reason):
        CALLER_GONE.set(hangup.gone)


class ClientGone(Exception):
    """The client disconnected before the work finished; the work was cancelled."""


def until_disconnect(receive: Receive, work: Awaitable[T], scope: Scope | None = None) -> Awaitable[T]:
    """Await ``work`` in this task; if the client disconnects first, cancel it and raise :class:`ClientGone`.
    Call it in the task that awaits its answer.

    The work runs in the handler's own task. When the server puts a :class:`Hangup` in ``scope``
    (``modelyard serve``'s protocol does), the lost connection cancels it directly; otherwise one
    watcher task reads ``receive`` until ``http.disconnect``, which costs less per request than
    racing two tasks with ``asyncio.wait``. Not a coroutine itself: the one it returns is the only frame between
    the request and its work (a frame each resumption of the request passes through, issue #15).
    """
    current = asyncio.current_task(running_loop())  # without get_running_loop()'s getpid system call (issue #15)
    assert current is not None
    hangup = scope.get(HANGUP) if scope is not None else None
    if hangup is not None:
        return _until_hangup(hangup, current, work)
    return _until_watched(receive, current, work)


async def _until_watched(receive: Receive, current: asyncio.Task, work: Awaitable[T]) -> T:
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        current.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGone from None
        raise
    finally:
        watcher.cancel()


async def _until_hangup(hangup: Hangup, current: asyncio.Task, work: Awaitable[T]) -> T:
    gone = False

    def cancel() -> None:
        nonlocal gone
        gone = True
        current.cancel()

    if hangup.gone:  # lost before the work began: do none of it
        cancel()
    hangup.listeners.add(cancel)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGone from None
        raise
    finally:
        hangup.listeners.discard(cancel)
