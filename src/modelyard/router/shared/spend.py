"""Spend caps counted across processes: one counter per capped model and window in Redis.

Without it each process counted the spend in its own routing log (its file, or PostgreSQL read every 10 s), so two
gateways with their own files each allowed the whole cap — a limit that held only inside one host (a peer gateway's
replicas went over budget the same way between its 60 s syncs: BerriAI/litellm#6288, #33325). Each tick the
link adds what this process spent since the last one (``INCRBYFLOAT``) and reads every process's total back, in
one script; :class:`~modelyard.router.spend.SpendCaps` counts the larger of that total and the log's.

Each counter is a hash of every process's spend in the window, one field per process (``instance``), and a tick
sends this process's *whole* spend in the window, kept if larger than the field's: a tick whose reply was lost is
sent again whole at the next one, counting nothing twice. Each call also carries every field as this process last read
it — floors: a field only grows within its window, so one found below it lost its value (Redis restarted empty,
``FLUSHALL``, an eviction, an older snapshot) and is set back to it. Without them a counter started again from zero
and the team could spend about another whole cap (LiteLLM reseeds on such a miss: BerriAI/litellm#26829, #37555);
with one floor (the highest total read) it missed what the others added after this process's last read and the
amount of a tick that failed across the loss (it was not sent again: a retried ``INCRBYFLOAT`` may add twice). Now a
process alive across the loss restores its own spend exactly, and the others' as last read. A process that sends one
request at a time (``ask``, ``chat``: short-lived, a field each would grow a month's hash with every run) adds what it
spent since its last tick to one field of its own kind, ``once``, as before: an amount whose call failed is not sent
again (Redis may have added it before the reply was lost; it is in the routing log, which the cap counts too).

A process that spent and ended before its tick reached Redis (``kill -9`` between two ticks) left its last amount out
of the counter, and with each host on its own log file every other host counted short by that much for the window: a
later process of that host, alone on it, sends what its file holds beyond every share of the host's processes as the
host's field ``@log:HOST`` (a floor, so kept where larger: :func:`unsent_field`). With ``log.url`` each host reads every
host's spend from PostgreSQL and needs none of it.

The script also returns Redis's clock (``TIME``): the windows are named by it, one clock for every host (each host's
own named a different day near midnight UTC). The script's first write adds no data (``PERSIST``, see below): under
``maxmemory`` with ``noeviction`` Redis refuses a script's first write that adds data (``OOM``) — which took the whole
link down after every paid answer — but not one after another write.

A counter carries no TTL: under a ``volatile-*`` eviction policy (a managed Redis's default, or a Redis that is also
an application's cache) Redis evicts only keys that have one, and a counter evicted reset its cap — with no live
process left to restore it (a nightly restart of every gateway), the team could spend the cap again that window.
Instead each counter is noted in one index (:func:`index_key`, no TTL either) with when it may go (:data:`KEEP_S` after
its last write); a call that finds counters past that deletes them (:data:`SWEEP`): a prefix's counters leave Redis
as before, once a later process spends. Counters an older version left with a TTL lose it at their next write here
(``PERSIST``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from modelyard.router.shared import wire
from modelyard.router.spend import SharedCount, Unshared

if TYPE_CHECKING:
    from modelyard.router.shared.link import RedisLink
    from modelyard.router.spend import SpendCaps

#: a month's window and a day of slack: a counter outlives its window, then the next call deletes it (see the index)
KEEP_S = 33 * 86400

#: the field of the processes that send one request at a time (see above): added to, never set
ONCE = "once"

#: the field under which the script returns what versions before the hash counted in their string counter
#: (``PREFIX:spend:MODEL:WINDOW``, see :func:`legacy_key`): read, never written, and never sent back as a floor
LEGACY = "@spend"

#: the field of one host's spend that its log file holds and no process of it sent (:func:`unsent_field`)
UNSENT = "@log:"


def unsent_field(host: str) -> str:
    """A host's spend that reached its log file but never the counter (a process killed between two ticks), restored
    from that file by a later process of the host (:meth:`SpendCaps.unsent_here`). Sent as a floor, so kept where larger
    and carried through a Redis restart like every field; a host name holds no '@', so no instance's field is named
    so."""
    return f"{UNSENT}{host}"


#: KEYS one counter per capped model, then each one's counter of the versions before it (:func:`legacy_key`), then the
#: index (:func:`index_key`); ARGV keep_s, this process's field, then each one's amount (USD, as text: this process's
#: whole spend in the window, or for the ``once`` field what it spent since its last tick), then each one's floors
#: (JSON: field → USD as text) → Redis's TIME (s, µs), then each counter's fields (field, value, …; what older
#: versions counted as the field ``@spend``), then the counters of the index that are due (see :data:`SWEEP`)
SPEND = r"""
local keep, me, n = tonumber(ARGV[1]), ARGV[2], (#KEYS - 1) / 2
local index = KEYS[#KEYS]
local t = redis.call('TIME')
local now = tonumber(t[1])
local out = {t[1], t[2]}
local due = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 100)
for i = 1, n do
  local key = KEYS[i]
  -- first: a write that adds nothing, so OOM refuses none after it; and a counter an older version wrote has a TTL,
  -- which volatile-* policies evict
  redis.call('PERSIST', key)
  redis.call('ZADD', index, now + keep, key)
  for who, value in pairs(cjson.decode(ARGV[2 + n + i])) do
    if who ~= '@LEGACY@' and tonumber(value) > tonumber(redis.call('HGET', key, who) or '0') then
      redis.call('HSET', key, who, value)  -- the counter lost what was already spent
    end
  end
  local amount = ARGV[2 + i]
  if me == '@ONCE@' then
    if tonumber(amount) > 0 then redis.call('HINCRBYFLOAT', key, me, amount) end
  elseif tonumber(amount) > tonumber(redis.call('HGET', key, me) or '0') then
    redis.call('HSET', key, me, amount)
  end
  local fields = redis.call('HGETALL', key)
  local older = redis.call('GET', KEYS[n + i])  -- a process of a version before this one counts there
  if older then fields[#fields + 1] = '@LEGACY@'; fields[#fields + 1] = older end
  out[#out + 1] = fields
end
out[#out + 1] = due
return out
""".replace("@ONCE@", ONCE).replace("@LEGACY@", LEGACY)

#: KEYS the index (:func:`index_key`), then counters SPEND found due; ARGV — → how many were deleted. Apart from SPEND:
#: a script touches only the keys it is given (Dragonfly refuses any other), and these are known only from the index.
#: Each is checked again (a process may have written it since).
SWEEP = r"""
local now, n = tonumber(redis.call('TIME')[1]), 0
for i = 2, #KEYS do
  local until_ = redis.call('ZSCORE', KEYS[1], KEYS[i])
  if until_ and tonumber(until_) <= now then
    redis.call('ZREM', KEYS[1], KEYS[i]); n = n + redis.call('DEL', KEYS[i])
  end
end
return n
"""


def key(prefix: str, model: str, start: float) -> str:
    """A hash, named apart from the string counters of versions before it (:func:`legacy_key`), which it reads."""
    return f"{prefix}:spent:{model}:{int(start)}"


def index_key(prefix: str) -> str:
    """Every counter of a prefix and when it may go (a sorted set, score: Redis's clock, s); no TTL, as the counters."""
    return f"{prefix}:spent-keys"


def legacy_key(prefix: str, model: str, start: float) -> str:
    """The string counter versions before the hash added to (``INCRBYFLOAT``). During a rolling upgrade the old
    processes go on adding there for the rest of the window: the new ones read it as one more share (``@spend``),
    so they count the old ones' spend too — before, each side counted only its own and the team could spend the cap
    once on each side. The old processes never read the hash: until they are all replaced they see only theirs."""
    return f"{prefix}:spend:{model}:{int(start)}"


async def share(link: RedisLink, caps: SpendCaps) -> None:
    """Send this process's spend and the floors to the counters, read every process's back (one round trip), and
    Redis's clock with them. Raises what :meth:`RedisLink.call` raises.

    The first call of a process only reads Redis's clock: the spend goes to the window that clock names, not to the
    one this host's clock named before it was read (a host ahead near midnight counted into tomorrow's counter)."""
    if caps.store_clock_unknown and link.clock is None:
        await _call(link, caps, caps.take_unshared(nothing=True))
    await _call(link, caps, caps.take_unshared(once=link.one_shot))


async def _call(link: RedisLink, caps: SpendCaps, taken: dict[str, Unshared]) -> None:
    models = list(taken)
    keys = [*(key(link.prefix, m, taken[m].start) for m in models),
            *(legacy_key(link.prefix, m, taken[m].start) for m in models), index_key(link.prefix)]
    field = ONCE if link.one_shot else link.instance
    floors = [{who: usd for who, usd in taken[m].floors.items() if who != LEGACY} for m in models]
    # alone on this host (registered: a look is not, nor counted), a process's file holds this host's whole spend
    if not link.one_shot and not link.looking and link.host_instances == 1:
        restore = unsent_field(link.host)
        for m, said in zip(models, floors, strict=True):
            if (unsent := caps.unsent_here(m, link.host, link.instance, skip=(ONCE, LEGACY))) > 0:
                said[restore] = max(said.get(restore, 0.0), unsent)
    args = [KEEP_S, field, *(repr(taken[m].amount) for m in models),
            *(json.dumps({who: repr(usd) for who, usd in said.items()}) for said in floors)]
    reply = await link.call("SPEND", keys, args)
    counts = {}
    if due := [*map(wire.text, reply[2 + len(models)])]:
        await link.call("SWEEP", [index_key(link.prefix), *due], [])
    for m, flat in zip(models, reply[2:2 + len(models)], strict=True):
        shares = {flat[j].decode(): float(flat[j + 1]) for j in range(0, len(flat), 2)}
        counts[m] = SharedCount(taken[m].start, sum(shares.values()), shares, taken[m].mine)
    # Redis's clock, unless a test drives the link by a clock of its own (then the host's names the windows)
    caps.shared_seen(counts, int(reply[0]) + int(reply[1]) / 1e6 if link.clock is None else None)
