"""Parts of one piece of work run side by side in lanes, answered in order, all or nothing.

Two callers: an embeddings request's calls over one call's bound (embed_batches.py, lanes on the model's free slots)
and a ``/v1/completions`` list of prompts (gateway/prompt_batch.py, lanes up to the first model's slots). Each lane
takes the next part when it is free, so the parts start in order; the first part that fails cancels the others, waits
for them to end (every lent slot is given back before the work is said to have failed) and is raised — never a list
with a hole in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: a lane beyond the first, given as what gives its slot back: called once the lane has no part left
GiveBack = Callable[[], Awaitable[None]]


async def side_by_side(count: int, part: Callable[[int], Awaitable[T]],
                       more: AsyncIterator[GiveBack] | None = None) -> list[T]:
    """``part(i)`` for each ``i`` below ``count``, in order: on one lane, and on each further lane ``more`` gives
    (asked for one while parts are left; it ends when it has none to give)."""
    answers: dict[int, T] = {}
    todo = iter(range(count))
    owed: list[GiveBack] = []  # lanes whose slot is not yet given back

    async def run(give_back: GiveBack | None) -> None:
        try:
            for i in todo:
                answers[i] = await part(i)
        finally:
            if give_back is not None:
                owed.remove(give_back)
                await give_back()

    tasks = [asyncio.ensure_future(run(None))]
    try:
        while more is not None and len(tasks) < count and not tasks[0].done():
            give_back = await anext(more, None)
            if give_back is None:
                break
            owed.append(give_back)
            tasks.append(asyncio.ensure_future(run(give_back)))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for give_back in owed:  # a lane cancelled before it ran a line: its slot is given back here
            await give_back()
    return [answers[i] for i in range(count)]  # every lane ended without failing: every part was answered
