"""One model's slots and breaker, shared through Redis by every process that uses the same prefix.

Slots are a counting semaphore with a FIFO queue and per-holder leases (see :mod:`.lua`): a
request takes a token, and either holds a slot at once or waits for the grant message that
hands it the next free one. Holders and waiters are renewed by the process's heartbeat, so a
process that dies gives its slots back within the lease; nothing expires while its owner lives.

While Redis cannot be reached (:class:`~.link.RedisLink` says *down*) the model falls back to
this process alone: ``on_outage: share`` keeps ``floor(max_concurrent / instances last seen)``
slots here — the instances together never exceed the limit — and a local breaker; ``fail`` (or a
process that never reached Redis, so cannot know its share) gives no slot, and the request moves
to its next model with reason ``state_unreachable``. A command that sends one request at a time
(``ask``, ``chat``: ``link.one_shot``) takes at least one slot of a model with a limit unless
``on_outage: fail`` — a laptop's ``ask`` during an outage got nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any

from modelyard.config.schema import Cooldown, OnOutage
from modelyard.errors import HEALTH_FAILURES, PERSISTENT, Reason
from modelyard.router.clock import Clock, loop_clock
from modelyard.router.health import Admission, Health, State
from modelyard.router.shared import wire
from modelyard.router.shared.link import RedisLink, StoreUnreachable, awake_time
from modelyard.router.slots import QueueTimeout
from modelyard.router.state import Condition, ModelState, Ticket, over_queue_bound

log = logging.getLogger("modelyard.state")


class _Wake(Enum):
    GRANTED = 1
    #: the store went down (or came back) while waiting: ask again the other way
    RETRY = 2
    #: the queue bound ran out first
    BOUND = 3


def _bound_reached(fut: asyncio.Future[_Wake]) -> None:
    """A waiter's queue bound ran out before its grant was read. A result, not a cancellation: the waiter then asks
    Redis whether the slot is its already (:meth:`RedisState._withdraw`). A loop that a busy machine kept from running
    past the bound reads, in the turn it gets back, both the grant that came meanwhile and this timer, the grant's bytes
    first — but the listener task they wake (it hands the slot over) runs later, after its own read bound, also past,
    has cancelled its read: ended on the timer alone, the waiter fell back with a slot granted to it, given back
    unused."""
    if not fut.done():
        fut.set_result(_Wake.BOUND)


#: a breaker lost while half-open is put back open this long (ms): the next request is its probe
PROBE_AGAIN_MS = 1


@dataclass(slots=True, frozen=True)
class SharedTicket(Ticket):
    """A ticket granted by the shared breaker (``shared``) or, while Redis is out of reach, the local one.
    ``clean``: the breaker was closed with no failure counted, so a success changes nothing there."""

    token: str = ""
    shared: bool = True
    clean: bool = False


class RedisState(ModelState):
    def __init__(self, name: str, limit: int, cooldown: Cooldown, link: RedisLink, clock: Clock = loop_clock, *,
                 per_host: bool = False, max_queue: int | None = None):
        self.name = name
        self.limit = limit
        #: the model's ``max_queue``, checked by ACQUIRE itself: :meth:`queue_full` answers from the view (a refresh
        #: old), so a burst that came within one refresh all read the queue short and all queued — from every
        #: process, and from one: 6 waiting of max_queue 1 with two processes sending three each
        self.max_queue = max_queue
        self.policy = cooldown
        self.link = link
        #: a model that runs inside each process (llama.cpp): each host has its own, so its slots and breaker are
        #: shared by the processes of this host only — one host's embedded model never waits for another's
        self.per_host = per_host
        tag = f"{link.prefix}:{{{name}@{link.host}}}" if per_host else f"{link.prefix}:{{{name}}}"
        #: the keys' common part (a per-host model's is registered with the instance entry: see lua.INSTANCES)
        self.tag = tag
        self._slots = [f"{tag}:holders", f"{tag}:queue", f"{tag}:leases", f"{tag}:meta"]
        self._released = f"{tag}:released"
        #: each live process's max_concurrent for the model (see lua.CAPS): the scripts grant up to the smallest
        self.caps_key = f"{tag}:caps"
        #: the keys of ACQUIRE, RELEASE and WITHDRAW
        self._keys = [*self._slots, self._released, self.caps_key, link.instances_key]
        self.meta_key = self._slots[3]
        self._breaker = f"{tag}:breaker"
        #: tokens of the slots this process holds (slots are interchangeable: release gives back any)
        self.held: list[str] = []
        #: tokens queued in Redis by this process → the future their grant resolves
        self.waiting: dict[str, asyncio.Future[_Wake]] = {}
        #: tokens that may be in Redis (so must be given back there)
        self._remote: set[str] = set()
        #: given back while Redis was out of reach: removed there when it answers again
        self._pending: set[str] = set()
        self.probes: set[str] = set()
        self.epoch = ""
        #: the breaker while Redis is out of reach (what this process sees on its own)
        self.fallback = Health(cooldown, clock)
        self._local_waiters: deque[asyncio.Future[_Wake]] = deque()
        self._view: list[Any] | None = None
        #: when it was read (awake_time: a cooldown left at that view runs on while a laptop sleeps)
        self._view_at: float | None = None
        #: the highest breaker generation this process knows of: a cached view older than that is not used
        self._generation = 0
        self._skip = ""
        #: a re-registration after a Redis restart is on its way
        self._resyncing = False
        #: holders the heartbeat found run out after a stop (registered again: see ``renewed``); one not yet used is
        #: given back instead (:meth:`_ran_out`)
        self._lapsed: set[str] = set()
        #: when each grant handed to a waiter was read (awake_time): the waiter checks it was not stopped since
        self._grant_read: dict[str, float] = {}
        #: a grant read that may have run out (see :meth:`confirm_grant`), and the RENEW that settles it on its way
        self._unsure = self._confirming = False
        #: asks for the grant when the grace after a Redis restart ends (a waiter is handed its slot then)
        self._grace_timer: asyncio.TimerHandle | None = None
        #: the smallest max_concurrent a live process applied at the last view (None: not read, or none registered)
        self.cap_seen: int | None = None
        #: the store's last clock jumps as read (None: not read yet — a jump from before this process is not news)
        self._jumps_seen: tuple[str, ...] | None = None
        #: cut off from the store while the others may still hand out the whole limit there (see ``_share``): the
        #: slots this process may use until they hold its share back — those it held
        self._until_held_back: int | None = None
        link.register(self)

    # -- slots ----------------------------------------------------------------------------

    async def acquire(self, timeout: float) -> float:
        self.link.ensure_started()
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout
        while True:
            if loop.time() >= deadline:
                raise QueueTimeout(f"no free slot within {timeout:g}s", waited=loop.time() - start)
            got = (await self._acquire_shared(loop, start, deadline, timeout) if self.link.up
                   else await self._acquire_local(loop, start, deadline, timeout))
            if got:
                return loop.time() - start

    async def _acquire_shared(self, loop: asyncio.AbstractEventLoop, start: float, deadline: float,
                              timeout: float) -> bool:
        token = self.link.new_token()
        fut: asyncio.Future[_Wake] = loop.create_future()
        self.waiting[token] = fut  # before the call: the grant may be published before its reply arrives
        self.link.waiters[token] = self
        self._remote.add(token)
        sent = awake_time()
        args = [self.link.now_arg(), self.link.window_ms, self.shared_limit(), token, self.epoch, self.link.new_token(),
                self.link.grace_ms, self.link.channel, "" if self.max_queue is None else self.max_queue]
        try:
            status, epoch, *waiting = await self.link.call("ACQUIRE", self._keys, args,
                                                           budget=deadline - loop.time())
        except StoreUnreachable:
            self._forget(token)
            return False
        except BaseException as exc:  # the queue bound ran out during the call, or the request was cancelled
            self._forget(token)
            if isinstance(exc, TimeoutError):
                raise QueueTimeout(f"no free slot within {timeout:g}s", waited=loop.time() - start) from None
            raise
        self.epoch = epoch.decode()
        if status == 1:
            # a heartbeat sent while this call was out may have seen the token hold its slot, and its
            # reply may have come first (granted() already counted it): count it once, not twice
            counted = fut.done() and not fut.cancelled() and fut.result() is _Wake.GRANTED
            self._unwait(token)
            if not counted:
                self.held.append(token)
            return not await self._ran_out(token, sent)
        if status == 3:  # every slot busy and max_queue waiting, counted in the store: moved on, as queue_full
            self._unwait(token)
            self._remote.discard(token)
            applied = self.applied_limit()
            raise QueueTimeout(over_queue_bound(applied, applied, int(waiting[0]), self.max_queue or 0),
                               waited=loop.time() - start, reason=Reason.QUEUE_FULL)
        if status == 4:  # given back while the call was on its way (see lua.ACQUIRE): nothing held, ask again
            self._unwait(token)
            self._remote.discard(token)
            return False
        if status == 2:  # Redis lost its data: re-register what this process holds, then ask again
            self._unwait(token)
            self._remote.discard(token)
            with contextlib.suppress(StoreUnreachable):
                await self.link.sync(self)
            return False
        timer = loop.call_at(deadline, _bound_reached, fut)
        try:
            wake = await fut
        except BaseException:
            self._grant_read.pop(token, None)
            if fut.done() and not fut.cancelled() and fut.result() is _Wake.GRANTED:
                self.held.remove(token)  # cancelled after the slot was handed over: pass it on
                self._give_back_later([token])
            else:
                self._forget(token)
            raise
        finally:
            timer.cancel()
        if wake is _Wake.BOUND:
            if await self._withdraw(token):
                return True
            raise QueueTimeout(f"no free slot within {timeout:g}s", waited=loop.time() - start)
        return wake is _Wake.GRANTED and not await self._ran_out(token, self._grant_read.pop(token, None))

    async def _ran_out(self, token: str, since: float | None) -> bool:
        """Whether the slot just granted to ``token`` may have run out before its request is sent: the process was
        stopped as a whole (SIGSTOP, a VM paused, a laptop asleep) for longer than a holder's lease (``window``)
        between ``since`` — when the grant's call was sent (ACQUIRE's reply), or when its grant was read — and now.
        The entry ran out in Redis meanwhile and the slot went to another process; taken on the reply, the request
        went out beside that one's (2 of 1 at the backend). Redis says (WITHDRAW: still held → renewed, kept), and a
        slot that ran out is given back and the waiter asks again. A holder the heartbeat found run out after such a
        stop (``renewed`` registers it again, as a request already sent may still run) is given back unused likewise.
        Measured on :func:`~.link.awake_time`, which counts a laptop's sleep. What stays open: a stop after this check,
        before or while the request's bytes go out — only a fencing token the backend checks could cover that."""
        link = self.link
        lapsed = token in self._lapsed
        if not lapsed and (since is None or awake_time() - since <= link.window_ms / 1000):
            return False
        self._lapsed.discard(token)
        try:
            if not lapsed and link.up and await link.call("WITHDRAW", self._keys,
                                                          self._release_args([token])):
                return False
        except StoreUnreachable:
            pass  # cannot tell: given back below (kept pending until the store answers), the request asks again
        except BaseException:  # cancelled on the way: the slot goes back
            if token in self.held:
                self.held.remove(token)
            self._give_back_later([token])
            raise
        if token in self.held:
            self.held.remove(token)
        self._give_back_later([token])
        log.warning("shared state %s: model %s: a slot granted to this process ran out before its request was sent "
                    "(the process was stopped — SIGSTOP, a VM paused, a host asleep — longer than %.1fs): given back "
                    "unused, the request asks again", link.settings.shown_url, self.name, link.window_ms / 1000)
        return True

    async def _withdraw(self, token: str) -> bool:
        """The waiter's bound ran out: Redis says whether ``token`` holds a slot already — granted while this process
        could not read the grant — and it is kept then (True); else the token leaves the queue."""
        self._unwait(token)  # a grant read from here on is not this waiter's to take: the answer below says
        if not self.link.up:
            self._pending.add(token)
            return False
        try:
            kept = await self.link.call("WITHDRAW", self._keys, self._release_args([token]))
        except StoreUnreachable:
            self._pending.add(token)
            return False
        except BaseException:  # cancelled on the way: given back whatever it holds
            self._give_back_later([token])
            raise
        if kept:
            self.held.append(token)
            return True
        self._remote.discard(token)
        return False

    async def _acquire_local(self, loop: asyncio.AbstractEventLoop, start: float, deadline: float,
                             timeout: float) -> bool:
        share = self._share()
        if self._share(early=False) == 0:
            raise QueueTimeout(f"shared state unreachable ({self.link.down_reason}): {self._share_text()}",
                               waited=loop.time() - start, reason=Reason.STATE_UNREACHABLE)
        while self._local_waiters and self._local_waiters[0].done():
            self._local_waiters.popleft()
        if len(self.held) < share and not self._local_waiters:
            self.held.append(self.link.new_token())
            return True
        fut: asyncio.Future[_Wake] = loop.create_future()
        self._local_waiters.append(fut)
        try:
            async with asyncio.timeout_at(deadline):
                wake = await fut
        except TimeoutError:
            if fut.done() and not fut.cancelled() and fut.result() is _Wake.GRANTED:
                return True
            raise QueueTimeout(f"no free slot within {timeout:g}s; shared state unreachable: {self._share_text()}",
                               waited=loop.time() - start, reason=Reason.STATE_UNREACHABLE) from None
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.result() is _Wake.GRANTED:
                self.held.pop()
                self._hand_over_local()
            raise
        return wake is _Wake.GRANTED

    async def release(self) -> None:
        if not self.held:
            return
        token = self.held.pop()
        self._lapsed.discard(token)
        if not self.link.up:
            if token in self._remote:
                self._pending.add(token)
            self._hand_over_local()
            return
        try:
            await self._give_back([token])
        except asyncio.CancelledError:  # cancelled on the way: it must still go back (removing twice is harmless)
            self._give_back_later([token])
            raise

    def _instances(self) -> int:
        return self.link.host_instances if self.per_host else self.link.instances

    def _silent(self) -> int:
        return self.link.host_silent if self.per_host else self.link.silent

    def shared_limit(self) -> int:
        """The limit this process hands out through Redis: ``max_concurrent`` less the outage share of every process
        gone silent (cut off from Redis, it may be using that share on its own; see ``RedisLink.silent_ms``). Never
        below 1: the shares of the others are at most (instances - 1) · floor(limit / instances)."""
        held_back = self._silent() * self._counted_share()
        # 'fail' here uses no share, but a silent process with 'share' does (another's config; an older version's
        # says nothing): held back all the same — a 'fail' gateway handed out the whole limit beside it (3 of 2)
        if (self.link.settings.on_outage is OnOutage.FAIL and not self.link.safe.others_may_share) or held_back == 0:
            return self.applied_limit()
        return max(1, self.applied_limit() - held_back)

    def applied_limit(self) -> int:
        """The max_concurrent every process hands out: the smallest a live process's config gives the model (Redis
        grants up to that one, see lua.CAPS), as last read — this config's own until then."""
        return min(self.limit, self.cap_seen) if self.cap_seen else self.limit

    def _counted_share(self) -> int:
        """floor(limit / instances last seen), of the limit they all applied; 0 when this process never counted them."""
        return self.applied_limit() // self._instances() if self._instances() else 0

    def _share(self, *, early: bool = True) -> int:
        """The slots this process uses while the store is out of reach. ``early``: with the cap of the first seconds —
        the others go on handing out the whole limit through Redis until they count this process silent (~2 s), so
        until then it takes only the slots it held (registered there as its own, so handed out to nobody else). It took
        its whole share at once, and the backend saw the limit plus the share for those seconds; then the slots free at
        its last view too, and the others had handed those out since (3 of 2: see :meth:`went_down`)."""
        if self.link.settings.on_outage is OnOutage.FAIL:
            return 0
        share = self._counted_share()
        if self.link.one_shot and self.limit >= 1:
            # a command that sends one request at a time (ask, chat) takes at least one slot: it got none when it
            # never reached Redis (it could not know its share) or when the share rounded down to 0
            share = max(share, 1)
        if early and self._early_cap() is not None:
            return min(share, self._early_cap() or 0)
        return share

    def _early_cap(self) -> int | None:
        if self._until_held_back is None or self._instances() <= 1 or self.link.held_back_in() <= 0:
            return None
        return self._until_held_back

    def _share_text(self) -> str:
        if self.link.settings.on_outage is OnOutage.FAIL:
            return "on_outage is 'fail': no slot without it"
        if (cap := self._early_cap()) is not None and cap < self._share(early=False):
            return (f"this process's share is {self._share(early=False)} of {self.applied_limit()} slot(s), but the "
                    f"other processes hold it back only {self.link.held_back_in():.1f}s from now: until then it uses "
                    f"the {cap} it held")
        if self.link.one_shot and self.limit >= 1 and self._counted_share() == 0:
            return ("this command sends one request at a time, so it takes 1 slot of "
                    f"{self.applied_limit()} (with the other processes' shares, one over the limit at most)")
        if self._instances() == 0:
            return "this process never counted the processes that share it, so it cannot know its share"
        return (f"this process's share is {self._share()} of {self.applied_limit()} slot(s) "
                f"({self._instances()} instance(s) last seen{' on this host' if self.per_host else ''})")

    def _hand_over_local(self) -> None:
        share = self._share()
        while self._local_waiters and len(self.held) < share:
            fut = self._local_waiters.popleft()
            if not fut.done():
                self.held.append(self.link.new_token())
                fut.set_result(_Wake.GRANTED)

    # -- bookkeeping of tokens ------------------------------------------------------------

    def _unwait(self, token: str) -> None:
        self.waiting.pop(token, None)
        self.link.waiters.pop(token, None)

    def _forget(self, token: str) -> None:
        """A waiter gave up: take its token out of the queue (or give back the slot it was just granted)."""
        self._unwait(token)
        self._give_back_later([token])

    def _give_back_later(self, tokens: list[str]) -> None:
        self.link.spawn(self._give_back(tokens))

    async def _give_back(self, tokens: list[str]) -> None:
        self._lapsed.difference_update(tokens)
        tokens = [t for t in tokens if t in self._remote]
        if not tokens:
            return
        if not self.link.up:
            self._pending.update(tokens)
            return
        try:
            await self.link.call("RELEASE", self._keys,
                                 self._release_args(tokens))
        except StoreUnreachable:
            self._pending.update(tokens)
            self._hand_over_local()
        else:
            self._remote.difference_update(tokens)

    def _release_args(self, tokens: list[str]) -> list[Any]:
        link = self.link
        return [link.now_arg(), link.window_ms, self.shared_limit(), link.channel, link.grace_ms, *tokens]

    def granted(self, token: str) -> None:
        """The grant listener (or a heartbeat) says ``token`` now holds a slot."""
        fut = self.waiting.pop(token, None)
        self.link.waiters.pop(token, None)
        if fut is None:
            return
        if fut.done():
            if not fut.cancelled() and fut.result() is _Wake.BOUND:
                return  # its bound ran out just before: the waiter asks Redis itself (WITHDRAW), and keeps the slot
            self._give_back_later([token])  # the waiter gave up just before: the slot is not wanted
            return
        self.held.append(token)
        self._grant_read[token] = awake_time()
        fut.set_result(_Wake.GRANTED)

    def confirm_grant(self) -> None:
        """A grant read after this process could not renew for longer than a lease (see
        :meth:`~.link.RedisLink.lease_may_have_run_out`): Redis says, not the message, whether the waiter holds a slot.
        Taken on the message, a waiter stopped with its grant unread ran beside the next process's waiter, which had
        the slot once the grant ran out (the backend saw 2 of 1). The heartbeat's RENEW hands over the slot still
        held, and queues again a waiter whose grant ran out."""
        self._unsure = True
        if not self._confirming:
            self._confirming = True
            self.link.spawn(self._confirm())

    async def _confirm(self) -> None:
        try:
            while self._unsure and self.waiting and self.link.up:
                self._unsure = False
                with contextlib.suppress(StoreUnreachable):
                    await self.link.sync(self)
        finally:
            self._confirming = False

    async def give_back_pending(self) -> None:
        if self._pending:
            tokens = list(self._pending)
            await self.link.call("RELEASE", self._keys,
                                 self._release_args(tokens))
            self._pending.difference_update(tokens)
            self._remote.difference_update(tokens)

    async def give_back_all(self) -> None:
        """Shutting down: every slot, waiter and probe of this process goes back."""
        tokens = [*self.held, *self.waiting, *self._pending]
        self.held.clear()
        self._pending.clear()
        for token in list(self.waiting):
            self._unwait(token)
        if tokens:
            await self.link.call("RELEASE", self._keys,
                                 self._release_args(tokens))
        for token in list(self.probes):
            await self.link.call("ABANDON", [self._breaker], [token])
        self.probes.clear()

    def went_down(self) -> None:
        """Redis is out of reach: waiters in its queue try again here (their entries are removed later). Until the
        others hold this process's share back it uses only what it held; then the waiters queued here meanwhile are
        handed the rest of the share. Not the slots free at its last view: they were free to every process, which
        went on handing them out through Redis after that view — with Redis killed the moment a gateway took both
        slots of 2, another whose view was a tick old took one of them again (the backend saw 3, the clean-clone CI)."""
        self._until_held_back = len(self.held)
        wait = self.link.held_back_in()
        if wait > 0:
            with contextlib.suppress(RuntimeError):  # no running loop: a plain listing, nobody waits
                asyncio.get_running_loop().call_later(wait + 0.01, self._hand_over_local)
        for token, fut in list(self.waiting.items()):
            self._unwait(token)
            self._pending.add(token)
            if not fut.done():
                fut.set_result(_Wake.RETRY)

    def came_up(self) -> None:
        """Redis answers again (and holds every slot taken meanwhile): local waiters queue there now."""
        while self._local_waiters:
            fut = self._local_waiters.popleft()
            if not fut.done():
                fut.set_result(_Wake.RETRY)

    def keep_call(self) -> tuple[list[str], list[Any]] | None:
        """The lease keeper's renewal of what this process holds of this model (:data:`.lua.KEEP`), None when it holds
        nothing here. Called from the keeper's thread while the loop is stalled: it only copies (a ``set`` or ``list``
        of a set is copied whole under the GIL)."""
        tokens = set(self.held) | set(self._remote)  # a grant whose reply the stalled loop has not read yet
        probes = list(self.probes)
        if not (tokens or probes):
            return None
        return [self._slots[0], self._breaker], [self.link.now_arg(), self.link.window_ms, len(tokens), *tokens,
                                                 *probes]

    def renew_call(self) -> tuple[list[str], list[Any]]:
        holders, waiters, probes = list(self.held), list(self.waiting), list(self.probes)
        args = [self.link.now_arg(), self.link.window_ms, self.shared_limit(), self.link.channel, self.epoch,
                self.link.new_token(), self.link.grace_ms, len(holders), len(waiters), *holders, *waiters, *probes]
        return [*self._slots, self._released, self._breaker, self.caps_key, self.link.instances_key], args

    def renewed(self, result: list[Any], sent: float | None = None) -> None:
        """A RENEW's reply; ``sent``: when it was sent (awake_time). A reply read more than a window after it was sent
        (the process stopped meanwhile) names grants that may have run out since: Redis is asked again
        (:meth:`confirm_grant`), as for a grant message read that late."""
        self.epoch = result[0].decode()
        rest = [raw.decode() for raw in result[2:]]
        mark = rest.index("#") if "#" in rest else len(rest)
        # a slot taken here while Redis was out of reach was never there: registered now, not "ran out"
        ran_out = [token for token in rest[mark + 1:] if token in self._remote]
        self._lapsed.update(ran_out)
        lapsed = len(ran_out)
        self._remote.update(self.held)  # every slot held here is registered there now
        late = sent is not None and awake_time() - sent > self.link.window_ms / 1000
        for token in rest[:mark]:
            if late and token in self.waiting:
                self.confirm_grant()
            else:
                self.granted(token)
        if lapsed:
            # the process was stopped as a whole (SIGSTOP, a VM paused or a laptop asleep): no thread of it could
            # renew, and nothing inside it can keep a slot then (see .keeper); said, as nothing else would say it
            log.warning("shared state %s: model %s: %d slot(s) of this process ran out while it was stopped (SIGSTOP, "
                        "a VM paused, a host asleep) longer than %.1fs, and may have been handed out meanwhile: the "
                        "model may have more than its max_concurrent %d until those requests end; registered again",
                        self.link.settings.shown_url, self.name, lapsed, self.link.window_ms / 1000, self.limit)

    # -- breaker --------------------------------------------------------------------------

    async def admit(self) -> Ticket | None:
        self.link.ensure_started()
        view = self._view
        if (self.link.up and view is not None and view[2] == b"closed" and int(view[8]) >= self._generation
                and self.link.view_fresh()):
            # Closed at the last read (≤ one tick ago): pass without a round trip. A breaker opened by
            # another process is seen within that tick; one opened here is seen at once (failed()).
            return SharedTicket(Admission.PASS, int(view[8]), clean=int(view[5]) == 0)
        if self.link.up:
            token = self.link.new_token()
            try:
                res = await self.link.call("ADMIT", [self._breaker], [self.link.now_arg(), self.link.window_ms, token])
            except StoreUnreachable:
                pass
            else:
                kind, generation = int(res[0]), int(res[1])
                self._generation = max(self._generation, generation)
                if kind == 1:
                    return SharedTicket(Admission.PASS, generation)
                if kind == 2:
                    self.probes.add(token)
                    return SharedTicket(Admission.PROBE, generation, token)
                why = res[3].decode()
                self._skip = ("another process is probing it" if why == "probing"
                              else f"{int(res[2]) / 1000:.1f}s left after {why}")
                return None
        admission = self.fallback.allow()
        if admission is None:
            self._skip = (f"{self.fallback.seconds_left():.1f}s left after {self.fallback.last_reason} "
                          "(this process alone: shared state unreachable)")
            return None
        return SharedTicket(admission, self.fallback.generation, shared=False)

    def _verdict_args(self, verdict: str, ticket: Ticket, reason: Reason | None = None,
                      retry_after: float | None = None) -> list[Any]:
        p = self.policy
        retry_ms = (min(retry_after, p.max_retry_after) * 1000
                    if retry_after and reason in (Reason.RATE_LIMITED, Reason.OVERLOADED) else 0)
        return [self.link.now_arg(), verdict, ticket.generation, reason or "", int(reason in HEALTH_FAILURES),
                retry_ms, int(reason in PERSISTENT), p.failures, p.seconds * 1000, p.max_seconds * 1000,
                self.link.new_token()]

    async def _shared_verdict(self, ticket: Ticket, args: list[Any]) -> bool:
        """Record a verdict in Redis; False when the ticket is local or Redis is out of reach."""
        if not (isinstance(ticket, SharedTicket) and ticket.shared):
            return False
        self.probes.discard(ticket.token)
        if not self.link.up:
            return False
        if ticket.clean and args[1] == "ok":
            return True  # closed with no failure counted: nothing to reset
        try:
            opened = await self.link.call("VERDICT", [self._breaker], args)
        except StoreUnreachable:
            return False
        if opened:  # this process skips the model from now on, not from its next read of the view
            self._generation = max(self._generation, ticket.generation + 1)
        return True

    def _local_generation(self, ticket: Ticket) -> int | None:
        return ticket.generation if isinstance(ticket, SharedTicket) and not ticket.shared else None

    async def succeeded(self, ticket: Ticket) -> None:
        self.answered += 1
        if not await self._shared_verdict(ticket, self._verdict_args("ok", ticket)):
            self.fallback.success(self._local_generation(ticket))

    async def failed(self, ticket: Ticket, reason: Reason, retry_after: float | None = None) -> None:
        if not await self._shared_verdict(ticket, self._verdict_args("fail", ticket, reason, retry_after)):
            self.fallback.failure(reason, retry_after, self._local_generation(ticket))

    async def abandoned(self, ticket: Ticket) -> None:
        if ticket.admission is not Admission.PROBE or not isinstance(ticket, SharedTicket):
            return
        if not ticket.shared:
            if self.fallback.state is State.HALF_OPEN:
                self.fallback.end_probe()
        elif ticket.token in self.probes:
            self.probes.discard(ticket.token)
            if self.link.up:
                self.link.spawn(self._abandon(ticket.token))

    async def _abandon(self, token: str) -> None:
        with contextlib.suppress(StoreUnreachable):  # else its lease runs out instead
            await self.link.call("ABANDON", [self._breaker], [token])

    # -- what it looks like ---------------------------------------------------------------

    def queue_full(self, max_queue: int) -> str:
        """While the store is out of reach this process has its share, not the model's limit: with the limit, a
        request found a slot 'free' that the share did not have, queued past ``max_queue`` and waited its bound."""
        if self.link.up:
            _, _, in_flight, waiting = self.snapshot()
            return over_queue_bound(self.applied_limit(), in_flight, waiting, max_queue)
        if self._share(early=False) == 0:  # no share at all: acquire says state_unreachable
            return ""
        _, _, in_flight, waiting = self.snapshot()
        why = over_queue_bound(self._share(early=False), in_flight, waiting, max_queue)
        return f"{why}; shared state unreachable: {self._share_text()}" if why else ""

    def cooling_detail(self) -> str:
        return self._skip

    def view_call(self) -> tuple[list[str], list[Any]]:
        return ([self._slots[0], self._slots[1], self._breaker, self._slots[3], self.caps_key, self.link.instances_key],
                [self.link.now_arg()])

    def viewed(self, result: list[Any]) -> None:
        """The view read this tick (every ``refresh``). It also tells this process about a Redis restart sooner
        than its heartbeat would (every ``lease / 3``): the slots and waiters it has are registered again at once,
        well within the grace in which nobody gets a slot; and a waiter's process asks for the grant when the
        grace ends, not at its next heartbeat (a Redis restart paused every grant for the grace plus up to a
        heartbeat: 12 s with the default lease)."""
        before, before_at = self._view, self._view_at
        self._view, self._view_at = result, awake_time()
        if before is not None and before_at is not None:
            self._breaker_lost(before, before_at, result)
        if len(result) > 13:
            self._jumped(result[10], result[11], result[12], result[13])
        if len(result) > 15:
            self.cap_seen = int(result[15]) or None
        if not (self.held or self.waiting or self.probes):
            return
        epoch = result[9].decode() if len(result) > 9 else self.epoch
        if self.epoch and epoch != self.epoch and not self._resyncing:
            self._resyncing = True  # until the sync answers (the next tick may still read the old view)
            self.link.spawn(self._resync())
        grace_ms = int(result[7])
        if grace_ms > 0 and self.waiting and self._grace_timer is None:
            loop = asyncio.get_running_loop()
            self._grace_timer = loop.call_later(grace_ms / 1000 + 0.005, self._grace_over)

    def _breaker_lost(self, before: list[Any], before_at: float, view: list[Any]) -> None:
        """The breaker is gone from Redis now (restarted empty, flushed, evicted) and the last view had it open,
        half-open (a probe out), or closed with failures counted short of opening: put it back. Holders and waiters
        are registered again after such a loss; the breaker was not: an open one read closed, and the team asked
        the model it had stopped asking until it failed ``failures`` more times; failures counted short of opening
        started from zero, so a model failing across a restart needed its whole count again (and a Redis restarting
        every few failures kept it from ever opening)."""
        gone = int(view[14]) == 0 if len(view) > 14 else int(view[8]) == 0  # older scripts: generation 0
        if not gone or int(view[5]) != 0 or view[2] != b"closed":
            return
        failures = int(before[5])
        if before[2] in (b"open", b"half_open") and int(before[8]) > 0:
            # a cooldown run out, or its probe out: open for a moment, so the next request is one probe again (a lost
            # probe's verdict still counts), not every process's traffic to a model that was failing
            left_ms = int(before[3]) - (awake_time() - before_at) * 1000 if before[2] == b"open" else 0
            self.link.spawn(self._reopen(max(int(left_ms), PROBE_AGAIN_MS), int(before[8]), before[4].decode(),
                                         failures))
        elif before[2] == b"closed" and failures > 0:
            self.link.spawn(self._reopen(0, int(before[8]), before[4].decode(), failures))

    async def _reopen(self, left_ms: int, generation: int, reason: str, failures: int) -> None:
        with contextlib.suppress(StoreUnreachable):
            args = [self.link.now_arg(), left_ms, generation, reason, failures]
            if not await self.link.call("REOPEN", [self._breaker], args):
                return
            if left_ms <= 0:
                log.info("shared state %s: model %s: the shared store lost its breaker (a restart without "
                         "persistence, FLUSHALL, an eviction): its %d failure(s) short of opening counted again",
                         self.link.settings.shown_url, self.name, failures)
            elif left_ms <= PROBE_AGAIN_MS:
                log.warning("shared state %s: model %s: the shared store lost its breaker after its cooldown (a "
                            "restart without persistence, FLUSHALL, an eviction): one probe again before traffic",
                            self.link.settings.shown_url, self.name)
            else:
                log.warning("shared state %s: model %s: the shared store lost its cooldown (a restart without "
                            "persistence, FLUSHALL, an eviction): open again for the %.0fs it had left",
                            self.link.settings.shown_url, self.name, left_ms / 1000)

    def _jumped(self, *view: Any) -> None:
        """Say a jump of the store's clock once (see ``purge`` in :mod:`.lua`); the first view only learns the last one.
        ``view``: the forward jump (ms) and when it was seen, the step back and when."""
        seen = tuple(map(wire.text, view))
        before, self._jumps_seen = self._jumps_seen, seen
        if before is None or seen == before:
            return
        forward, forward_at, back, back_at = seen
        if forward_at and forward_at != before[1]:
            self._say_jump(f"model {self.name}: the shared store's clock jumped {float(forward) / 1000:.1f}s forward "
                           "(a VM resumed, an NTP step, Redis paused) and every lease ran out at once: no slot is "
                           f"handed out for the grace ({self.link.grace_ms / 1000:.1f}s) while live processes "
                           "register again what they hold")
        if back_at and back_at != before[3]:
            self._say_jump(f"model {self.name}: the shared store's clock went back {float(back) / 1000:.1f}s: leases "
                           "and cooldowns last that much longer")

    def _say_jump(self, text: str) -> None:
        self.link.clock_note = text
        log.warning("shared state %s: %s", self.link.settings.shown_url, text)

    async def aclose(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    async def _resync(self) -> None:
        try:
            with contextlib.suppress(StoreUnreachable):
                await self.link.sync(self)
        finally:
            self._resyncing = False

    def _grace_over(self) -> None:
        self._grace_timer = None
        if self.waiting and self.link.up:
            self.link.spawn(self._resync())

    def cooling(self) -> tuple[float, Reason | None]:
        view = self._view
        if self.link.up and view is not None:
            state, left_ms, reason = view[2].decode(), int(view[3]), view[4].decode()
            if state != "open" or left_ms <= 0:
                return 0.0, None
            return left_ms / 1000, Reason._value2member_map_.get(reason)  # type: ignore[return-value]
        left = self.fallback.seconds_left()
        return (left, self.fallback.last_reason) if left > 0 else (0.0, None)

    def snapshot(self) -> tuple[Condition, str, int, int]:
        with contextlib.suppress(RuntimeError):  # no running loop (a plain CLI listing): nothing to start
            self.link.ensure_started()
        view = self._view
        if self.link.up and view is not None:
            holders, waiting, state, left_ms, reason = int(view[0]), int(view[1]), view[2].decode(), int(view[3]), \
                view[4].decode()
            if state == "open" and left_ms > 0:
                return Condition.COOLING_DOWN, f"{left_ms / 1000:.0f}s left after {reason}", holders, waiting
            applied = self.applied_limit()
            if holders >= applied:
                smaller = (f"; limit {applied}, not this config's {self.limit}: the smallest a process applies"
                           if applied < self.limit else "")
                return (Condition.BUSY,
                        f"{waiting} waiting ({'this host' if self.per_host else 'all instances'}{smaller})",
                        holders, waiting)
            if state != "closed":
                return Condition.PROBING, "", holders, waiting
            return Condition.AVAILABLE, "", holders, waiting
        in_flight, waiting = len(self.held), sum(1 for f in self._local_waiters if not f.done()) + len(self.waiting)
        if self.link.up:
            return Condition.AVAILABLE, "shared state: connecting", in_flight, waiting
        health = self.fallback
        if health.state is State.OPEN and health.seconds_left() > 0:
            return (Condition.COOLING_DOWN, f"{health.seconds_left():.0f}s left after {health.last_reason} "
                    "(this process alone)", in_flight, waiting)
        share = self._share()
        if self._share(early=False) == 0:
            return Condition.UNAVAILABLE, f"shared state unreachable: {self._share_text()}", in_flight, waiting
        if in_flight >= share:
            return Condition.BUSY, f"shared state unreachable: {self._share_text()}", in_flight, waiting
        return Condition.AVAILABLE, f"shared state unreachable: {self._share_text()}", in_flight, waiting
