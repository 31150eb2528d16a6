"""The model's free slots lent to one embeddings request's calls beyond the one its attempt holds.

A request past one call's bound goes in several calls (providers/embed_batches.py); they ran one after another on
the attempt's slot while the model's other slots sat idle. Here a call gets one more slot only if one is free now and
no request is queued for one: the batch never waits in the queue for its own extra calls, never takes a slot another
request waits for, and never runs the model past ``max_concurrent`` (every lent slot is one of its slots, counted as
the attempt's own is; a shared store's view is asked with a short bound, as the queue bound is honoured there).
"""

from __future__ import annotations

from modelyard.router.slots import QueueTimeout
from modelyard.router.state import ModelState

#: seconds a lent slot may take to be granted: one round trip to a shared store; in this process it is at once
LEND_WAIT = 0.25


class SpareSlots:
    """:class:`~modelyard.providers.embed_batches.Lanes` over one model's slots; ``most``: the calls out at once."""

    __slots__ = ("lent", "most", "state")

    def __init__(self, state: ModelState):
        self.state = state
        self.lent = 0
        #: the most calls out together (the attempt's own slot included): what the routing log says
        self.most = 1

    async def take(self) -> bool:
        """One more of the model's slots, if one is free and nobody is queued for one."""
        _, _, in_flight, waiting = self.state.snapshot()
        if in_flight >= self.state.limit or waiting:
            return False
        try:
            await self.state.acquire(LEND_WAIT)
        except QueueTimeout:
            return False
        self.lent += 1
        self.most = max(self.most, self.lent + 1)
        return True

    async def give_back(self) -> None:
        self.lent -= 1
        await self.state.release()
