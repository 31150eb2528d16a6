"""Cancel work when the HTTP client goes away, so an abandoned request frees its model slot at once.

ASGI servers do not cancel a handler when the client disconnects; they only report it as an
``http.disconnect`` message on ``receive``. Watching for that message while the work runs is
what lets a dropped connection release the upstream call (and its slot) instead of letting a
local model generate, for nobody, until its token budget runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before the work finished; the work was cancelled."""


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` in this task; if the client disconnects first, cancel it and raise :class:`ClientGone`.

    The work runs in the handler's own task and one watcher task cancels it on disconnect, which
    costs less per request than racing two tasks with ``asyncio.wait``.
    """
    current = asyncio.current_task()
    assert current is not None
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
