"""Spend caps counted across processes: one counter per capped model and window in Redis.

Without it each process counted the spend in its own routing log (its file, or PostgreSQL read every 10 s), so two
gateways with their own files each allowed the whole cap — a limit that held only inside one host (a peer gateway's
replicas went over budget the same way between its 60 s syncs: BerriAI/litellm#6288, #33325). Each tick the
link adds what this process spent since the last one (``INCRBYFLOAT``) and reads every process's total back, in
one script; :class:`~modelyard.router.spend.SpendCaps` counts the larger of that total and the log's.

Each call also carries the highest total this process has read for the window — a floor: a counter only grows within
its window, so one found below it lost its value (Redis restarted empty, ``FLUSHALL``, an eviction) and is set back to
it before the add. Without it the counter started again from zero and the team could spend about another whole cap
(LiteLLM reseeds on such a miss: BerriAI/litellm#26829, #37555); every process that read the old total sends the same
floor, so setting it twice changes nothing. The script's first write is an ``EXPIRE``: under ``maxmemory`` with
``noeviction`` Redis refuses a script's first write that adds data (``OOM``) — which took the whole link down after
every paid answer — but not one after another write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.router.spend import SpendCaps

if TYPE_CHECKING:
    from modelyard.router.shared.link import RedisLink

#: a month's window and a day of slack: a counter outlives its window, then leaves Redis by itself
KEEP_S = 33 * 86400

#: KEYS one counter per capped model; ARGV keep_s, then the amount to add to each (USD, as text), then each one's floor
#: (the highest total this process read, as text) — every total after it, as text (a Lua number would come back as an
#: integer)
SPEND = r"""
local out = {}
local n = #KEYS
for i, key in ipairs(KEYS) do
  redis.call('EXPIRE', key, tonumber(ARGV[1]))  -- first: a write that adds nothing, so OOM refuses none after it
  local floor = ARGV[n + i + 1]
  if tonumber(redis.call('GET', key) or '0') < tonumber(floor) then
    redis.call('SET', key, floor, 'EX', tonumber(ARGV[1]))  -- the counter lost what was already spent
  end
  local add = ARGV[i + 1]
  if tonumber(add) > 0 then
    out[i] = redis.call('INCRBYFLOAT', key, add)
    redis.call('EXPIRE', key, tonumber(ARGV[1]))
  else
    out[i] = redis.call('GET', key) or '0'
  end
end
return out
"""


def key(prefix: str, model: str, start: float) -> str:
    return f"{prefix}:spend:{model}:{int(start)}"


async def share(link: RedisLink, caps: SpendCaps) -> None:
    """Add this process's new spend to the counters and read every process's totals (one round trip).
    Raises what :meth:`RedisLink.call` raises. An amount whose call failed is not sent again: Redis may have added
    it before the reply was lost, and a counter that grows with every timeout stops a model that is under its cap
    (BerriAI/litellm#30460: Redis spend counters inflated over ElastiCache timeouts). It is in this process's routing
    log, which the cap counts too (the larger of the two)."""
    taken = caps.take_unshared()
    models = list(taken)
    keys = [key(link.prefix, m, taken[m].start) for m in models]
    args = [KEEP_S, *(repr(taken[m].amount) for m in models), *(repr(taken[m].floor) for m in models)]
    totals = await link.call("SPEND", keys, args)
    caps.shared_seen({m: (taken[m].start, float(t)) for m, t in zip(models, totals, strict=True)})
