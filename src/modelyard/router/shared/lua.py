"""The Lua scripts that make a model's slots and breaker atomic in Redis.

Each script is one step of the protocol, run by Redis with nothing interleaved, so two processes
can never both take the last slot or both become the half-open probe. Times are Redis's own
clock (``TIME``, milliseconds) unless a test passes a clock of its own (``now`` argument), so
hosts with different clocks agree on every lease and deadline.

Per model, under one hash tag (so a cluster could hold them in one slot):

- ``holders``  sorted set: token → lease deadline. A holder not renewed in time is dropped.
- ``queue``    sorted set: token → ticket number (FIFO order of the waiters).
- ``leases``   sorted set: waiter token → lease deadline (a crashed waiter must not block the head).
- ``released`` sorted set: token → when it was released (a late heartbeat must not revive it).
- ``meta``     hash: ``seq`` (ticket counter), ``epoch`` (changes when Redis lost its data),
  ``grace`` (no slot is handed out before this: live holders re-register first), ``held`` (how many
  holders the last script left: an empty ``holders`` set where it says more was evicted alone),
  ``last`` (the time of the last script that purged: a gap past a window is a clock jump, see ``purge``),
  ``jump`` / ``jump_at`` (the last forward jump seen, ms, and when), ``back`` / ``back_at`` (a step back).
- ``breaker``  hash: ``state``, ``failures``, ``cooldown``, ``until``, ``reason``, ``gen``,
  ``probe`` (token of the one half-open probe) and ``probe_until`` (its lease).
- ``caps``     sorted set: process (its instance entry, ``PREFIX:instances``) → the ``max_concurrent`` its config gives
  the model (:data:`CAPS`). Every script that grants a slot grants up to the smallest of a live process (``capped``).

Every key expires :data:`KEY_TTL_MS` after its last renewal (a breaker open longer: that long past its deadline).
Each live process renews every model's keys with its heartbeat (``RENEW``) and the prefix's own keys each tick
(``INSTANCES``), and a script that creates a key gives it the expiry at once — so the keys of a prefix whose processes
are all gone (``kill -9``, a host removed, a model renamed) leave Redis within a day instead of staying for good.

A slot freed (release, lease expiry) goes straight to the oldest waiter — hand-over, as in the
in-process :class:`~modelyard.router.slots.Slots` — and the grant is published on one channel,
so exactly the granted waiter wakes.
"""

from __future__ import annotations

#: how long a key outlives its last renewal: far longer than any heartbeat or cooldown in use, so a key never expires
#: under a live process (each renews every key of its models every lease/3); the keys of processes all gone expire
KEY_TTL_MS = 24 * 3600 * 1000

_PRELUDE = r"""
local KEY_TTL = @KEY_TTL@
-- Redis runs Lua 5.1 (a global unpack), Dragonfly Lua 5.4 (table.unpack only; a global it lacks is an error there)
local unpack = table.unpack or unpack

-- a key a script may have just created gets its expiry (renew() extends it; a key with one already is left alone)
local function keep(...)
  for _, k in ipairs({...}) do
    if redis.call('PTTL', k) == -1 then redis.call('PEXPIRE', k, KEY_TTL) end
  end
end

-- the heartbeat: every key of a model lives another KEY_TTL (a breaker open longer than that: KEY_TTL past its end)
local function renew(B, now, ...)
  for _, k in ipairs({...}) do redis.call('PEXPIRE', k, KEY_TTL) end
  local until_ = tonumber(redis.call('HGET', B, 'until') or '0')
  redis.call('PEXPIRE', B, math.max(KEY_TTL, math.ceil(until_ - now) + KEY_TTL))
end

local function now_ms(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function zrem_all(key, list)
  for i = 1, #list, 500 do
    redis.call('ZREM', key, unpack(list, i, math.min(i + 499, #list)))
  end
end

-- holders and waiters whose lease ran out belonged to a process that stopped renewing them — unless the clock jumped.
-- Every live process renews every model each lease/3 (half a window) and stamps ``last``: a gap of more than a window
-- while holders were registered means either every holder's process stopped at once, or Redis's clock stepped
-- forward (a VM resumed, an NTP step, Redis itself paused). Then every lease runs out together, and handing the slots
-- out again at once would give them twice while their holders still run. So the store waits a grace (as after a
-- restart) in which the live processes re-register what they hold; only then are slots handed out. The jump is kept
-- in ``jump`` / ``jump_at`` for the processes to say. A step back is only noted (``back``): leases last longer,
-- nothing is handed out twice.
local function purge(H, Q, W, now, M, win, grace_ms)
  local last = tonumber(redis.call('HGET', M, 'last') or '0')
  local n = redis.call('ZREMRANGEBYSCORE', H, '-inf', now)  -- a write first: under maxmemory the rest may write too
  local gone = redis.call('ZRANGEBYSCORE', W, '-inf', now)
  if #gone > 0 then zrem_all(W, gone); zrem_all(Q, gone) end
  if last > 0 and n > 0 and now - last > win and redis.call('ZCARD', H) == 0 then
    redis.call('HSET', M, 'jump', tostring(now - last), 'jump_at', tostring(now))
    if tonumber(redis.call('HGET', M, 'grace') or '0') < now + grace_ms then
      redis.call('HSET', M, 'grace', tostring(now + grace_ms))
    end
  elseif last > 0 and last - now > 1000 then
    redis.call('HSET', M, 'back', tostring(last - now), 'back_at', tostring(now))
  end
  if last ~= now then redis.call('HSET', M, 'last', tostring(now)) end
  return n + #gone
end

-- free slots go to the oldest waiters, in order; the grant is published so they wake. A granted waiter's slot keeps
-- the lease its waiter had (its process renewed that one; a fresh window would outlive it): a waiter whose process was
-- killed (-9) and which reached the head before its lease ran out held the slot a whole window from the grant — up to
-- two windows after the kill, while the live waiters behind it waited
local function promote(H, Q, W, M, now, win, limit, channel)
  if now < tonumber(redis.call('HGET', M, 'grace') or '0') then return 0 end
  local free = limit - redis.call('ZCARD', H)
  if free <= 0 then return 0 end
  local heads = redis.call('ZRANGE', Q, 0, free - 1)
  if #heads == 0 then return 0 end
  for _, t in ipairs(heads) do
    local leased = tonumber(redis.call('ZSCORE', W, t) or '0')
    redis.call('ZADD', H, (leased > now and leased < now + win) and leased or now + win, t)
  end
  zrem_all(Q, heads); zrem_all(W, heads)
  redis.call('PUBLISH', channel, table.concat(heads, ' '))
  return #heads
end

-- the smallest max_concurrent a live process applies to the model (``limit``, the caller's own, if none is smaller):
-- each process registers its config's (CAPS), so processes whose configs disagree all hand out the smallest — each
-- passed its own, and the backend saw the largest (4 at a server one host said takes 2). ``I``: the instance entries
-- (score: when each runs out) — a process gone (left, killed, its entry run out) no longer counts. Writes nothing.
local function capped(C, I, now, limit)
  if not (C and I) then return limit end
  local below = redis.call('ZRANGEBYSCORE', C, '-inf', limit and ('(' .. limit) or '+inf', 'WITHSCORES')
  for i = 1, #below, 2 do
    if tonumber(redis.call('ZSCORE', I, below[i]) or '0') > now then return tonumber(below[i + 1]) end
  end
  return limit
end

-- whether the model's caps name a live process other than ``me`` (its instance entry, see CAPS). Each one renews the
-- model's meta every heartbeat, so a meta missing while one lives was lost (evicted, flushed), not never written
local function others_alive(C, I, now, me)
  if not (C and I) then return false end
  for _, id in ipairs(redis.call('ZRANGE', C, 0, -1)) do
    if id ~= me and tonumber(redis.call('ZSCORE', I, id) or '0') > now then return true end
  end
  return false
end

-- the store's epoch; a caller that knew another one is from before Redis lost its data, so no
-- slot is handed out for a grace period while every live process re-registers its holders.
-- ``fresh``: a new token of the caller (its instance entry, ':', a count); ``C``, ``I``: the caps and instances keys
local function epoch(M, H, known, fresh, now, grace_ms, C, I)
  local cur = redis.call('HGET', M, 'epoch')
  -- the holders' set gone while meta stays: an allkeys-* policy evicted that one key. As much a loss of data — also
  -- for a caller that knows no epoch yet (a process's first heartbeat, sent before its first reply): it handed the
  -- evicted slots out at once, with no grace, while their holders ran on
  local evicted = cur and tonumber(redis.call('HGET', M, 'held') or '0') > 0 and redis.call('EXISTS', H) == 0
  -- meta gone too (a volatile-* or allkeys-* policy evicted both: they carry a TTL) while another live process uses
  -- the model: a loss, also for a caller that knows no epoch yet — a process just started was granted the evicted
  -- slots at once, beside their holders still running (twice the limit until those processes' next heartbeat)
  if not cur and known == '' and others_alive(C, I, now, string.match(fresh, '^(.*):')) then evicted = true end
  if evicted then cur = nil end
  if not cur then cur = fresh; redis.call('HSET', M, 'epoch', cur) end
  local lost = evicted or (known ~= '' and known ~= cur)
  if lost and tonumber(redis.call('HGET', M, 'grace') or '0') < now + grace_ms then
    redis.call('HSET', M, 'grace', tostring(now + grace_ms))
  end
  return cur, lost
end

-- the same loss seen by a script that knows no epoch (RELEASE): a fresh epoch, so every live process registers again
-- what it holds, and the grace before any hand-over. Without it RELEASE noted the evicted set's 0 holders over the
-- evidence and handed the free-looking slots out at once — the backend saw twice the limit under allkeys-lru.
local function lost_unknowing(M, H, now, grace_ms)
  local cur = redis.call('HGET', M, 'epoch')
  if cur and not (tonumber(redis.call('HGET', M, 'held') or '0') > 0 and redis.call('EXISTS', H) == 0) then
    return false
  end
  redis.call('HSET', M, 'epoch', (cur or 'lost') .. ':' .. tostring(now))
  if tonumber(redis.call('HGET', M, 'grace') or '0') < now + grace_ms then
    redis.call('HSET', M, 'grace', tostring(now + grace_ms))
  end
  return true
end

-- what the holders' set holds now, noted beside the epoch (see epoch()); written only when it changed, so a script
-- that changed nothing writes nothing (under maxmemory a first write may be refused)
local function noted(M, H, result)
  local n = redis.call('ZCARD', H)
  if tonumber(redis.call('HGET', M, 'held') or '-1') ~= n then redis.call('HSET', M, 'held', n) end
  return result
end
""".replace("@KEY_TTL@", str(KEY_TTL_MS))

#: KEYS holders queue leases meta [released caps instances];
#: ARGV now win limit token known_epoch fresh_epoch grace_ms channel [max_queue]
#: → {1 granted | 0 queued | 2 the store lost its data (re-register, then ask again) | 3 no slot free and
#: ``max_queue`` already waiting, across every process (nothing registered) | 4 the token was given back already
#: (nothing registered), epoch, waiting}
#: A token in ``released`` was given back before this call ran: its caller gave up while the call was on its way (a
#: queue bound or a cancel that ran out during the round trip, the RELEASE sent on another connection and run first).
#: Registered anyway, it held a slot (or the queue's head) that no process renews, until its lease ran out.
ACQUIRE = _PRELUDE + r"""
local H, Q, W, M, R = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function done(result) noted(M, H, result); keep(H, Q, W, M); return result end
local now, win, token = now_ms(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local limit = capped(KEYS[6], KEYS[7], now, tonumber(ARGV[3]))
local cur, lost = epoch(M, H, ARGV[5], ARGV[6], now, tonumber(ARGV[7]), KEYS[6], KEYS[7])
if lost then return done({2, cur}) end
if R and redis.call('ZSCORE', R, token) then return done({4, cur}) end
purge(H, Q, W, now, M, win, tonumber(ARGV[7]))
promote(H, Q, W, M, now, win, limit, ARGV[8])
-- a repeated call (retried on a new connection)
if redis.call('ZSCORE', H, token) then return done({1, cur}) end
if redis.call('ZSCORE', Q, token) then redis.call('ZADD', W, now + win, token); return done({0, cur}) end
if redis.call('ZCARD', Q) == 0 and redis.call('ZCARD', H) < limit
    and now >= tonumber(redis.call('HGET', M, 'grace') or '0') then
  redis.call('ZADD', H, now + win, token)
  return done({1, cur})
end
local waiting = redis.call('ZCARD', Q)
if ARGV[9] and ARGV[9] ~= '' and waiting >= tonumber(ARGV[9]) then return done({3, cur, waiting}) end
redis.call('ZADD', Q, redis.call('HINCRBY', M, 'seq', 1), token)
redis.call('ZADD', W, now + win, token)
return done({0, cur})
"""

#: KEYS holders queue leases meta released [caps instances]; ARGV now win limit channel grace_ms token…
#: Gives slots back / withdraws waiters, hands freed slots over. → number of slots given back
RELEASE = _PRELUDE + r"""
local H, Q, W, M, R = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, win = now_ms(ARGV[1]), tonumber(ARGV[2])
local limit = capped(KEYS[6], KEYS[7], now, tonumber(ARGV[3]))
lost_unknowing(M, H, now, tonumber(ARGV[5]))
purge(H, Q, W, now, M, win, tonumber(ARGV[5]))
local n = 0
for i = 6, #ARGV do
  n = n + redis.call('ZREM', H, ARGV[i])
  redis.call('ZREM', Q, ARGV[i]); redis.call('ZREM', W, ARGV[i])
  redis.call('ZADD', R, now, ARGV[i])
end
promote(H, Q, W, M, now, win, limit, ARGV[4])
noted(M, H, n)
keep(H, Q, W, M, R)
return n
"""

#: KEYS holders queue leases meta released [caps instances]; ARGV now win limit channel grace_ms token
#: A waiter whose queue bound ran out: holding a slot already (granted, its grant not read yet — a busy machine kept the
#: process from running, and the bound's timer came before the listener that reads the grant) → its lease renewed, 1:
#: the waiter keeps the slot; else taken out of the queue (and noted released: a late heartbeat does not queue it
#: again) → 0. Either way the slots free go to the next waiters.
WITHDRAW = _PRELUDE + r"""
local H, Q, W, M, R = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, win, token = now_ms(ARGV[1]), tonumber(ARGV[2]), ARGV[6]
local limit = capped(KEYS[6], KEYS[7], now, tonumber(ARGV[3]))
lost_unknowing(M, H, now, tonumber(ARGV[5]))
purge(H, Q, W, now, M, win, tonumber(ARGV[5]))
local kept = 0
if redis.call('ZSCORE', H, token) then
  redis.call('ZADD', H, now + win, token)
  kept = 1
else
  redis.call('ZREM', Q, token); redis.call('ZREM', W, token)
  redis.call('ZADD', R, now, token)
end
promote(H, Q, W, M, now, win, limit, ARGV[4])
noted(M, H, kept)
keep(H, Q, W, M, R)
return kept
"""

#: KEYS holders queue leases meta released breaker [caps instances];
#: ARGV now win limit channel known_epoch fresh_epoch grace_ms n_holders n_waiters holder… waiter… probe…
#: The heartbeat of one process for one model: renews its holders, waiters and probe; re-registers
#: what the store lost (never what was released); hands over freed slots.
#: → {epoch, lost (0/1), granted waiter…, '#', holder that ran out while held… (see below)}
#: A holder missing while Redis lost nothing (same epoch, no grace started) ran out while its process was stopped (a
#: SIGSTOP, a VM paused, its lease keeper cut off too): its slot may have been handed out meanwhile. It is registered
#: again — its request may still run, and counting it keeps the next grant back until one of them ends — and named.
RENEW = _PRELUDE + r"""
local H, Q, W, M, R, B = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, win, channel = now_ms(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local limit = capped(KEYS[7], KEYS[8], now, tonumber(ARGV[3]))
local cur, lost = epoch(M, H, ARGV[5], ARGV[6], now, tonumber(ARGV[7]), KEYS[7], KEYS[8])
local nh, nw = tonumber(ARGV[8]), tonumber(ARGV[9])
purge(H, Q, W, now, M, win, tonumber(ARGV[7]))
redis.call('ZREMRANGEBYSCORE', R, '-inf', now - 4 * win)
local lapsed = {}
local graced = now < tonumber(redis.call('HGET', M, 'grace') or '0')
for i = 10, 9 + nh do
  local t = ARGV[i]
  if redis.call('ZSCORE', H, t) then
    redis.call('ZADD', H, now + win, t)
  elseif not redis.call('ZSCORE', R, t) then
    if not lost and not graced then lapsed[#lapsed + 1] = t end
    redis.call('ZADD', H, now + win, t)
  end
end
for i = 10 + nh, 9 + nh + nw do
  local t = ARGV[i]
  if redis.call('ZSCORE', H, t) then
    redis.call('ZADD', H, now + win, t)
  elseif redis.call('ZSCORE', Q, t) then
    redis.call('ZADD', W, now + win, t)
  elseif not redis.call('ZSCORE', R, t) then
    redis.call('ZADD', Q, redis.call('HINCRBY', M, 'seq', 1), t)
    redis.call('ZADD', W, now + win, t)
  end
end
local probe = redis.call('HGET', B, 'probe')
for i = 10 + nh + nw, #ARGV do
  if probe == ARGV[i] then redis.call('HSET', B, 'probe_until', tostring(now + win)) end
end
promote(H, Q, W, M, now, win, limit, channel)
local out = {cur, lost and 1 or 0}
for i = 10 + nh, 9 + nh + nw do
  if redis.call('ZSCORE', H, ARGV[i]) then out[#out + 1] = ARGV[i] end
end
out[#out + 1] = '#'
for _, t in ipairs(lapsed) do out[#out + 1] = t end
noted(M, H, out)
renew(B, now, H, Q, W, M, R)
return out
"""

#: KEYS holders queue breaker meta [caps instances]; ARGV now
#: → {holders, waiting, state, ms left of the cooldown, reason, failures, probe out (0/1), ms of grace left,
#:    generation, epoch ('' once the store lost its data), the last forward jump of the clock (ms, '' none) and when
#:    it was seen, the last step back and when, whether the breaker's key exists (0/1: gone, its failures with it),
#:    the smallest max_concurrent a live process applies (0: none registered)}
VIEW = _PRELUDE + r"""
local now = now_ms(ARGV[1])
local b = redis.call('HMGET', KEYS[3], 'state', 'until', 'reason', 'failures', 'probe', 'probe_until', 'gen')
local m = redis.call('HMGET', KEYS[4], 'grace', 'epoch', 'jump', 'jump_at', 'back', 'back_at')
local left = math.max(0, math.floor(tonumber(b[2] or '0') - now))
local probing = (b[5] and b[5] ~= '' and tonumber(b[6] or '0') > now) and 1 or 0
local grace = math.max(0, math.floor(tonumber(m[1] or '0') - now))
return {redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), redis.call('ZCARD', KEYS[2]), b[1] or 'closed', left,
        b[3] or '', tonumber(b[4] or '0'), probing, grace, tonumber(b[7] or '0'), m[2] or '', m[3] or '', m[4] or '',
        m[5] or '', m[6] or '', redis.call('EXISTS', KEYS[3]), capped(KEYS[5], KEYS[6], now, nil) or 0}
"""

#: KEYS breaker; ARGV now win token
#: → {1 pass | 2 probe | 0 skip, generation, ms left, reason}
ADMIT = _PRELUDE + r"""
local B = KEYS[1]
local now, win, token = now_ms(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local b = redis.call('HMGET', B, 'state', 'until', 'probe', 'probe_until', 'gen', 'reason')
local state, gen = b[1] or 'closed', tonumber(b[5] or '0')
if state == 'closed' then return {1, gen} end
if state == 'open' then
  local left = tonumber(b[2]) - now
  if left > 0 then return {0, gen, math.ceil(left), b[6] or ''} end
  redis.call('HSET', B, 'state', 'half_open')
  keep(B)
end
if b[3] == token then return {2, gen} end  -- a repeated call (retried on a new connection)
if b[3] and b[3] ~= '' and tonumber(b[4] or '0') > now then return {0, gen, 0, 'probing'} end
redis.call('HSET', B, 'probe', token, 'probe_until', tostring(now + win))
keep(B)
return {2, gen}
"""

#: KEYS breaker; ARGV now verdict(ok|fail) generation reason health(0/1) retry_after_ms (capped) persistent(0/1)
#:                     failures_to_open cooldown_ms max_cooldown_ms [verdict_id]
#: ``verdict_id`` makes it repeatable: a failure counted under it is not counted again when the call is sent once more
#: (its reply lost with a dropped connection; it was not repeatable, and that took the link down for a tick).
#: The same rules as router/health.py: a verdict from an earlier generation does not move the
#: breaker — except that the server's own word on how long to wait (a retry-after, a revoked key) from a request that
#: was in flight when another opened it still lengthens the open deadline; a deadline is never moved earlier by a
#: later, shorter cooldown. → 1 if it opened
VERDICT = _PRELUDE + r"""
local B = KEYS[1]
local now, verdict, gen = now_ms(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local b = redis.call('HMGET', B, 'state', 'gen', 'failures', 'cooldown', 'until', 'verdict')
local state, cur = b[1] or 'closed', tonumber(b[2] or '0')
local base, max = tonumber(ARGV[9]), tonumber(ARGV[10])
local id = ARGV[11] or ''
-- the same verdict sent again (its reply lost with its connection): counted once; 1 if it was the one that opened
if id ~= '' and b[6] == id then return (state ~= 'closed' and cur == gen + 1) and 1 or 0 end
if gen ~= cur then
  if verdict ~= 'fail' or ARGV[5] ~= '1' or state ~= 'open' then return 0 end
  local said = tonumber(ARGV[6]) > 0 and tonumber(ARGV[6]) or (ARGV[7] == '1' and max or 0)
  if now + said > tonumber(b[5] or '0') then
    redis.call('HSET', B, 'until', tostring(now + said), 'reason', ARGV[4])
    redis.call('PEXPIRE', B, math.max(KEY_TTL, math.ceil(said) + KEY_TTL))
  end
  return 0
end
if verdict == 'ok' then
  if state == 'open' then return 0 end
  redis.call('HSET', B, 'state', 'closed', 'failures', 0, 'cooldown', base, 'probe', '')
  keep(B)
  return 0
end
redis.call('HSET', B, 'probe', '')
keep(B)
if ARGV[5] ~= '1' then return 0 end
local failures = tonumber(b[3] or '0') + 1
local cooldown = tonumber(b[4] or base)
redis.call('HSET', B, 'failures', failures, 'reason', ARGV[4], 'verdict', id)
keep(B)
local open_for = nil
if state == 'half_open' then
  cooldown = math.min(cooldown * 2, max)
  redis.call('HSET', B, 'cooldown', cooldown)
  open_for = cooldown
elseif tonumber(ARGV[6]) > 0 then
  open_for = tonumber(ARGV[6])
elseif ARGV[7] == '1' then
  open_for = max
elseif failures >= tonumber(ARGV[8]) then
  open_for = cooldown
end
if not open_for then return 0 end
local deadline = math.max(tonumber(b[5] or '0'), now + open_for)
redis.call('HSET', B, 'state', 'open', 'gen', cur + 1, 'until', tostring(deadline))
redis.call('PEXPIRE', B, math.max(KEY_TTL, math.ceil(deadline - now) + KEY_TTL))  -- kept until past the cooldown
return 1
"""

#: KEYS breaker; ARGV now ms_left generation reason failures
#: Redis lost the breaker (restarted empty, flushed, evicted) while a process's last view had it open, or closed with
#: failures counted short of opening: open again for what was left (``ms_left`` > 0), else closed with those failures,
#: at the generation it had (a probe's verdict after it still counts), unless something wrote it since (another
#: process's REOPEN, a verdict) → 1 if it was put back
REOPEN = _PRELUDE + r"""
local B = KEYS[1]
if redis.call('EXISTS', B) == 1 then return 0 end
local now, left = now_ms(ARGV[1]), tonumber(ARGV[2])
if left <= 0 then
  redis.call('HSET', B, 'state', 'closed', 'gen', ARGV[3], 'reason', ARGV[4], 'failures', ARGV[5] or '0')
  keep(B)
  return 1
end
local deadline = now + left
redis.call('HSET', B, 'state', 'open', 'gen', ARGV[3], 'until', tostring(deadline), 'reason', ARGV[4], 'failures',
           ARGV[5] or '0')
redis.call('PEXPIRE', B, math.max(KEY_TTL, math.ceil(deadline - now) + KEY_TTL))
return 1
"""

#: KEYS meta…; ARGV now fresh_epoch grace_ms
#: Redis restarted (its run id changed) with data it kept (RDB, AOF): what came back may be older than what it had —
#: a slot taken since the last snapshot is missing — yet the epoch came back too, so nothing said data was lost.
#: A restart counts as a loss whatever came back: a new epoch, and the grace. One INFO for all the models named; where
#: INFO is not allowed (an ACL), nothing is checked. → how many epochs changed
RESTARTED = _PRELUDE + r"""
local info = redis.pcall('INFO', 'server')
if type(info) ~= 'string' then return 0 end
local run = string.match(info, 'run_id:(%w+)')
local now, n = now_ms(ARGV[1]), 0
for i, M in ipairs(KEYS) do
  local seen = redis.call('HGET', M, 'run')
  if seen ~= run then
    redis.call('HSET', M, 'run', run)
    keep(M)
    if seen and redis.call('HGET', M, 'epoch') then  -- else a first look, or the data is gone (epoch() sees that)
      redis.call('HSET', M, 'epoch', ARGV[2] .. ':' .. i)
      local grace = now + tonumber(ARGV[3])
      if tonumber(redis.call('HGET', M, 'grace') or '0') < grace then
        redis.call('HSET', M, 'grace', tostring(grace))
      end
      n = n + 1
    end
  end
end
return n
"""

#: KEYS breaker; ARGV token — the probe ended with no verdict (queued out, cancelled): free it
ABANDON = r"""
if redis.call('HGET', KEYS[1], 'state') == 'half_open' and redis.call('HGET', KEYS[1], 'probe') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'probe', '')
  return 1
end
return 0
"""

#: KEYS instances configs [host_keys [seen]]; ARGV now win id leave(0/1) host_prefix limits silent_ms [tag…]
#: The processes sharing this prefix: registers (or removes) this one with the limits it applies (``limits``: its
#: config's max_concurrent per shared model, as JSON), forgets the ones whose entry ran out, and counts the *silent*
#: ones — alive, but not registered for ``silent_ms`` (every process registers each tick): cut off from Redis, so
#: using their outage share on their own (or dead, until their entry runs out). ``seen``: when each registered last.
#: The entry's score is its registration plus that process's own ``win`` (its lease), so with another lease here than
#: there the score said nothing of when: a process with a shorter lease was counted silent always, one with a longer
#: lease never — and its outage share was not held back while it was cut off (3 at a limit of 2).
#: ``host_keys``: the tags (``PREFIX:{model@host}``) of the models whose slots are a host's own (RedisState.per_host),
#: each with a deadline ``win`` past its last registration by a process of that host. Nobody else ever touches those
#: keys, so a host removed for good left them in Redis forever; once a tag's deadline passed and no process of its
#: host is alive, its keys are deleted (a host still alive — an older version does not register its tags — keeps
#: them, looked at again after another ``win``). Such a tag is returned, and :data:`FORGET` deletes its keys: a script
#: touches only the keys it is given (Dragonfly refuses any other: "script tried accessing undeclared key"), and these
#: are known only here.
#: → {alive, alive on this host, silent, silent on this host, n, the n tags of hosts gone, then (instance, limits) for
#: each set of limits unlike this one's}
INSTANCES = _PRELUDE + r"""
local now = now_ms(ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)  -- a write first: under maxmemory the rest may write too
for i = 1, #gone, 500 do redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 499, #gone))) end
local S = KEYS[4]
if S and #gone > 0 then zrem_all(S, gone) end
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[3]); redis.call('HDEL', KEYS[2], ARGV[3])
  if S then redis.call('ZREM', S, ARGV[3]) end
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3]); redis.call('HSET', KEYS[2], ARGV[3], ARGV[6])
  if S then redis.call('ZADD', S, now, ARGV[3]); redis.call('PEXPIRE', S, KEY_TTL) end
end
redis.call('PEXPIRE', KEYS[1], KEY_TTL); redis.call('PEXPIRE', KEYS[2], KEY_TTL)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local host, on_host = ARGV[5], 0
for _, id in ipairs(ids) do
  if string.sub(id, 1, #host) == host then on_host = on_host + 1 end
end
local dead = {}
if KEYS[3] then
  local until_ = now + tonumber(ARGV[2])
  if ARGV[4] ~= '1' then
    for i = 8, #ARGV do redis.call('ZADD', KEYS[3], until_, ARGV[i]) end
  end
  for _, tag in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
    local there = (string.match(tag, '@([^@]*)}$') or '') .. ':'
    local alive = false
    for _, id in ipairs(ids) do
      if string.sub(id, 1, #there) == there then alive = true; break end
    end
    if alive then
      redis.call('ZADD', KEYS[3], until_, tag)
    else
      dead[#dead + 1] = tag
    end
  end
  redis.call('PEXPIRE', KEYS[3], KEY_TTL)
end
local silent, silent_on_host = 0, 0
if ARGV[4] ~= '1' and ARGV[7] then
  -- an entry's score is its registration plus ``win``: registered more than silent_ms ago is silent
  local registered_before = now + tonumber(ARGV[2]) - tonumber(ARGV[7])
  for _, id in ipairs(ids) do
    local at = S and redis.call('ZSCORE', S, id)
    local quiet
    if at then
      quiet = tonumber(at) < now - tonumber(ARGV[7])
    else  -- an older version registers no time: its entry's score, as it did
      quiet = tonumber(redis.call('ZSCORE', KEYS[1], id)) < registered_before
    end
    if quiet then
      silent = silent + 1
      if string.sub(id, 1, #host) == host then silent_on_host = silent_on_host + 1 end
    end
  end
end
local out = {#ids, on_host, silent, silent_on_host, #dead}
for _, tag in ipairs(dead) do out[#out + 1] = tag end
if ARGV[4] ~= '1' then
  local seen = {[ARGV[6]] = true}
  for _, id in ipairs(ids) do
    local c = redis.call('HGET', KEYS[2], id)
    if c and not seen[c] then seen[c] = true; out[#out + 1] = id; out[#out + 1] = c end
  end
end
return out
"""

#: KEYS instances host_keys, then the tag's holders queue leases meta released breaker caps (:data:`TAG_KEYS`);
#: ARGV now tag
#: The keys of a host's own model (``PREFIX:{model@host}``) once its tag's deadline passed and no process of that host
#: is alive — what :data:`INSTANCES` names, checked again here (a process of that host may have come back since).
#: → 1 if they were deleted
FORGET = _PRELUDE + r"""
local now, tag = now_ms(ARGV[1]), ARGV[2]
local until_ = redis.call('ZSCORE', KEYS[2], tag)
if not until_ or tonumber(until_) > now then return 0 end
local there = (string.match(tag, '@([^@]*)}$') or '') .. ':'
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if string.sub(id, 1, #there) == there then return 0 end
end
redis.call('DEL', unpack(KEYS, 3))
redis.call('ZREM', KEYS[2], tag)
return 1
"""

#: the keys under a model's tag, in the order :data:`FORGET` takes them (``RedisState`` names its keys so)
TAG_KEYS = ("holders", "queue", "leases", "meta", "released", "breaker", "caps")

#: KEYS holders breaker; ARGV now win n_tokens token… probe…
#: The lease keeper's renewal (:mod:`.keeper`), sent from a thread while this process's event loop is stalled: extends
#: the lease of each token still in ``holders`` and of the probe it holds — and nothing else. It never adds a holder
#: (a token gone was released, or Redis lost it: the loop's RENEW decides that once it runs again), purges nothing,
#: hands nothing over and writes no key that is not there: a slot still registered was handed to nobody else, so
#: keeping it registered while its request runs is the truth. → how many holders it kept
KEEP = _PRELUDE + r"""
local H, B = KEYS[1], KEYS[2]
local now, win, n = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local kept = 0
for i = 4, 3 + n do
  local until_ = redis.call('ZSCORE', H, ARGV[i])
  if until_ then
    if tonumber(until_) < now + win then redis.call('ZADD', H, 'XX', now + win, ARGV[i]) end  -- never shortened
    kept = kept + 1
  end
end
local probe = redis.call('HGET', B, 'probe')
for i = 4 + n, #ARGV do
  if probe == ARGV[i] and redis.call('HGET', B, 'state') == 'half_open'
      and tonumber(redis.call('HGET', B, 'probe_until') or '0') < now + win then
    redis.call('HSET', B, 'probe_until', tostring(now + win))
  end
end
return kept
"""

#: KEYS instances caps…; ARGV now instance limit… (one for each caps key)
#: Registers the ``max_concurrent`` this process's config gives each model (every tick, after INSTANCES renewed its
#: entry), and forgets the processes whose instance entry is gone (left, killed, run out): ``capped`` grants up to the
#: smallest. → how many models were registered
CAPS = _PRELUDE + r"""
local now, me = now_ms(ARGV[1]), ARGV[2]
for i = 2, #KEYS do
  local C = KEYS[i]
  -- a write first (it removes nothing: every limit is 1 or more): under maxmemory the rest may write too
  redis.call('ZREMRANGEBYSCORE', C, '-inf', 0)
  redis.call('ZADD', C, ARGV[i + 1], me)
  for _, id in ipairs(redis.call('ZRANGE', C, 0, -1)) do
    if tonumber(redis.call('ZSCORE', KEYS[1], id) or '0') <= now then redis.call('ZREM', C, id) end
  end
  redis.call('PEXPIRE', C, KEY_TTL)
end
return #KEYS - 1
"""
