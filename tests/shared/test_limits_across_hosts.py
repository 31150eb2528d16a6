"""Limits that must hold across processes and hosts: what last round's hunt read and left (RELIABILITY.md, "Shared state
hunt (shared24)"), each against a real Redis — the machine's for the normal case, a private ``redis-server`` restarted
empty on the same port for a loss.

- **A spend window named by each host's clock.** Near midnight UTC a host whose clock is minutes ahead counts into the
  next day's counter while the others count into today's: each sees only its own spend, and the day's cap is
  reached by neither. Hosts' clocks do differ by that much: a peer gateway's users found their per-day budgets reset
  at different moments per replica and asked for one clock (BerriAI/litellm#6288: budgets reset by each pod's own
  scheduler; Redis's ``TIME`` is the one clock every host of a team already reads — redis.io, commands/time).
- **A spend counter restored short of the last tick.** Redis restarted empty (the README's own ``--save ""
  --appendonly no``, a failover to a replica that had not synced — BerriAI/litellm#37555 "cold spend counter resets
  the cap") while a tick's call was in flight: the amount was dropped (not sent again, for a retried ``INCRBYFLOAT``
  may add twice — BerriAI/litellm#30460) and the counter was set back to the highest total read, without it.
- **A breaker's failures short of opening lost in the same restart.** The team asked the failing model its whole
  ``cooldown.failures`` again; a Redis restarting every few failures kept it from ever opening.

Found here (the hunt that followed):

- **Two processes racing a cooldown.** One process's failure opens the model's breaker for the base cooldown; a
  request another process had in flight then gets a 429 whose ``Retry-After`` says a minute. Its verdict is from the
  generation before the opening, so it was dropped whole: the model was asked again at the first, shorter deadline
  — BerriAI/litellm#40130, "a slower in-flight request on the same deployment then fails with a 429 … the deployment
  is back in rotation 1s later with 59s of its cooldown unserved".
- **Two hosts with one name and one log path on one PostgreSQL log.** Replicas of one image with a fixed host name
  (Compose's ``hostname:``; Docker's ``--uts=host`` shares the host's, docs.docker.com/engine/containers/run/#uts-
  settings---uts), pods with ``hostNetwork: true`` on one node: each forwarder recorded its shared state under
  ``host:path`` in ``log_presence``, overwrote the other's row and read its own back — hosts limiting the same models
  apart (another Redis each) went unsaid between the two, and the second host's routing label #N (no request,
  named ``host:path#N``) replaced the first's. Made here with a mount namespace of the test's own
  (``unshare -m``): the second forwarder's spool directory bound over the first's path.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from modelyard.config.schema import Cooldown
from modelyard.errors import Reason
from modelyard.router import ModelPool
from modelyard.router.health import Admission, Health
from modelyard.router.shared import spend as shared_spend
from modelyard.router.shared.link import StoreUnreachable
from modelyard.router.shared.state import RedisState
from modelyard.router.spend import SpendCaps
from tests.shared.redis_kit import REDIS_URL, PrivateRedis
from tests.shared.test_redis_state import Pools, _joined, _until, pools  # noqa: F401 - fixture
from tests.shared.test_spend_counter_faults import CAP, _config

#: the store's call bound: a first call (connect, load the scripts) on a loaded 2-core machine can take 0.3 s
TIMEOUT = 1.0


def _with_clock(pool: ModelPool, offset: float) -> SpendCaps:
    """The pool's spend caps on a host whose clock is ``offset`` seconds off (SpendCaps' own clock seam, ``wall``)."""
    assert pool.spend is not None and pool.link is not None
    caps = SpendCaps(pool.spend.caps, wall=lambda: time.time() + offset)
    pool.spend = pool.link.spend = caps
    pool.link.ensure_started()
    return caps


def _counter(url: str, prefix: str) -> dict[str, float]:
    """The capped model's counters as Redis holds them: key → every process's spend in it."""
    admin = redis.Redis.from_url(url)
    try:
        return {k.decode(): sum(float(v) for v in admin.hvals(k))
                for k in admin.scan_iter(match=f"{prefix}:spent:paid:*")}
    finally:
        admin.close()


async def test_hosts_with_clocks_either_side_of_midnight_count_into_one_window(pools: Pools) -> None:  # noqa: F811
    """Two processes, one whose clock reads a minute before the next UTC midnight and one a minute after it, $6
    each: both count the team's $12 against the $10 cap, in one counter (the day Redis's clock names). Before: each
    named the window by its own clock — two counters, $6 each, and neither saw the cap reached."""
    real = time.time()
    midnight = (datetime.fromtimestamp(real, UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                               microsecond=0).timestamp()
    assert CAP == 10.0
    behind, ahead = pools(2, timeout=TIMEOUT, models=_config())
    early = _with_clock(behind, midnight - 60 - real)
    late = _with_clock(ahead, midnight + 60 - real)
    early.add("paid", 6.0)
    late.add("paid", 6.0)
    assert behind.link is not None
    try:
        await _until(lambda: early.spent("paid") == late.spent("paid") == 12.0, 5)
    except AssertionError:
        raise AssertionError(f"each host counted apart: {early.spent('paid')}, {late.spent('paid')}; "
                             f"counters {_counter(behind.link.settings.url, behind.link.prefix)}") from None
    assert early.over("paid") and late.over("paid")
    today = datetime.fromtimestamp(real, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    link = behind.link
    assert _counter(link.settings.url, link.prefix) == {f"{link.prefix}:spent:paid:{int(today)}": 12.0}


async def test_a_tick_lost_with_the_restart_is_counted_again(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """$3 and $2 through the counter; Redis dies as a tick carrying a third process-A dollar is sent (its call fails:
    the reply never comes, whether Redis had added it or not); Redis comes back empty. The team spent $6 and both
    processes count $6. Before: the dollar was not sent again and the counter came back as the highest total read,
    $5 — under a $5.5 cap the team went on spending."""
    server = PrivateRedis(tmp_path).start()
    try:
        made = pools(2, url=server.url, timeout=TIMEOUT, models=_config())
        a, b = (_with_clock(p, 0.0) for p in made)
        a.add("paid", 3.0)
        await _until(lambda: a.spent("paid") == 3.0 and b.spent("paid") == 3.0)
        b.add("paid", 2.0)
        await _until(lambda: a.spent("paid") == 5.0 and b.spent("paid") == 5.0)
        server.kill()
        a.add("paid", 1.0)
        link = made[0].link
        assert link is not None
        try:  # the tick that was on its way when Redis died
            await shared_spend.share(link, a)
        except StoreUnreachable:
            pass
        else:
            raise AssertionError("the share reached a dead Redis")
        server.start()
        admin = redis.Redis(port=server.port)
        assert admin.dbsize() == 0
        await _until(lambda: all(p.link is not None and p.link.up for p in made)
                     and admin.zcard(f"{link.prefix}:instances") == 2, 15)
        await _until(lambda: a.spent("paid") == 6.0 and b.spent("paid") == 6.0, 3)
        assert sum(_counter(server.url, link.prefix).values()) == 6.0
    finally:
        server.kill()


async def _pair(pools: Pools, server: PrivateRedis, **cooldown: float) -> list[RedisState]:  # noqa: F811
    """Two processes' states of model ``m`` on ``server``, each joined (connected, scripts loaded)."""
    made = pools(2, url=server.url, timeout=TIMEOUT, **cooldown)
    for pool in made:
        await _joined(pool)
    return [pool["m"] for pool in made]  # type: ignore[misc]


async def _fail(state: RedisState) -> None:
    ticket = await state.admit()
    assert ticket is not None
    await state.failed(ticket, Reason.SERVER_ERROR)


async def _restarted_empty(server: PrivateRedis, a: RedisState, b: RedisState) -> None:
    """Both processes' views read what they had (every 0.1 s); Redis restarts empty; both run on the new server."""
    await asyncio.sleep(0.5)
    server.kill()
    server.start()
    admin = redis.Redis(port=server.port)
    assert admin.dbsize() == 0
    await _until(lambda: a.link.up and b.link.up and admin.zcard(f"{a.link.prefix}:instances") == 2, 15)
    await asyncio.sleep(0.5)  # a few ticks of each on the new server


async def test_failures_short_of_opening_outlive_a_redis_restarted_empty(pools: Pools,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """``cooldown.failures: 3``; two failures counted in the shared breaker; Redis restarts empty; one more failure
    opens it, and the other process skips the model. Before: the count started again from zero, the third failure
    was the first, and the other process sent the failing model the next request."""
    server = PrivateRedis(tmp_path).start()
    try:
        a, b = await _pair(pools, server, failures=3, seconds=30)
        for _ in range(2):
            await _fail(a)
        assert redis.Redis(port=server.port).hget(f"{a.link.prefix}:{{m}}:breaker", "failures") == b"2"
        await _restarted_empty(server, a, b)
        await _fail(a)
        await _until(lambda: b.cooling()[0] > 20, 3)
        assert await b.admit() is None, "the other process sent the failing model a request"
    finally:
        server.kill()


async def test_a_breaker_lost_while_its_probe_was_out_gets_one_probe_again(pools: Pools,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    """The model's cooldown ran out and one process's probe is out (half-open); Redis restarts empty. The next request
    is one probe again: the other process gets it, and nothing more until a verdict. Before: only an *open* breaker
    was put back; a half-open one read closed, and every process sent the failing model all its traffic."""
    server = PrivateRedis(tmp_path).start()
    try:
        a, b = await _pair(pools, server, failures=1, seconds=0.3)
        await _fail(a)
        await asyncio.sleep(0.4)  # the cooldown ran out
        probe = await a.admit()
        assert probe is not None and probe.admission is Admission.PROBE
        await _restarted_empty(server, a, b)
        first, second = await b.admit(), await b.admit()
        assert first is not None and first.admission is Admission.PROBE, first
        assert second is None, "a model whose probe had not answered took traffic again"
    finally:
        server.kill()


async def test_a_retry_after_from_a_request_in_flight_lengthens_a_cooldown_another_process_opened(
        pools: Pools) -> None:  # noqa: F811
    """Process B's request is in flight; process A's fails (500) and opens the shared breaker for the base 5 s; B's
    then ends in a 429 with ``Retry-After: 60``. Both processes keep the model cooling for the minute the server
    asked. Before: B's verdict was from the generation before the opening and was dropped — the model was asked
    again after 5 s."""
    made = pools(2, failures=1, seconds=5)
    for pool in made:
        await _joined(pool)
    a, b = (pool["m"] for pool in made)
    in_flight = await b.admit()
    assert in_flight is not None
    ticket = await a.admit()
    assert ticket is not None
    await a.failed(ticket, Reason.SERVER_ERROR)
    await b.failed(in_flight, Reason.RATE_LIMITED, retry_after=60)
    await _until(lambda: a.cooling()[0] > 50 and b.cooling()[0] > 50, 3)
    assert b.cooling()[1] is Reason.RATE_LIMITED


def test_a_stale_retry_after_lengthens_the_cooldown_in_one_process() -> None:
    """The same race inside one process (two requests to a model with ``max_concurrent`` 2), on its own breaker."""
    now = [1000.0]
    health = Health(Cooldown(failures=1, seconds=5), lambda: now[0])
    health.failure(Reason.SERVER_ERROR, generation=0)
    assert health.seconds_left() == 5
    health.failure(Reason.RATE_LIMITED, retry_after=60, generation=0)  # in flight since before the opening
    assert health.seconds_left() == 60
    health.failure(Reason.RATE_LIMITED, retry_after=10, generation=0)  # never earlier
    assert health.seconds_left() == 60


#: the second host: a forwarder of its own in a mount namespace where its spool sits at the first one's path
_TWIN = """
import json, sys, time
from pathlib import Path
from modelyard.ledger.db import connect
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.labels import LabelSource, add_label
forwarder = Forwarder(Path(sys.argv[1]), sys.argv[2], poll=0.05)
forwarder.presence, forwarder.presence_every = sys.argv[3], 0.2
conn = connect(sys.argv[1])
add_label(conn, "sort these names", "sorter", LabelSource.CLI)
conn.close()
forwarder.wake()
time.sleep(float(sys.argv[4]))
print(json.dumps(forwarder.state_differs))
forwarder.close()
"""


def test_two_hosts_with_one_name_and_log_path_see_each_others_shared_state(tmp_path: Path, pg_url: str) -> None:
    """Two forwarders named alike (this machine's host name, the same spool path — the second's own file bound over
    the first's directory), one recording the machine's Redis, the other another: each says the other limits the
    same models apart, and the log holds a row for each. Before: one row, overwritten by each in turn; each read its
    own back, and neither said anything."""
    from modelyard.ledger import presence
    from modelyard.ledger.db import connect
    from modelyard.ledger.forward import Forwarder
    from modelyard.ledger.labels import LabelSource, add_label
    from modelyard.ledger.pg import PgConnection
    from tests.shared.redis_kit import until

    here = socket.gethostname()
    right = presence.fingerprint(REDIS_URL, "p", here)
    wrong = presence.fingerprint("redis://10.0.0.6:6379/0", "p", here)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    spool = first / "spool.sqlite3"
    twin = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"',
         "sh", str(second), str(first), sys.executable, "-c", _TWIN, str(spool), pg_url, wrong, "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    host = Forwarder(spool, pg_url, poll=0.05)
    try:
        host.presence, host.presence_every = right, 0.2
        conn = connect(spool)
        add_label(conn, "total my taxi receipts", "coder", LabelSource.CLI)  # label #1 on each host
        conn.close()
        host.wake()
        until(lambda: host.state_differs or twin.poll() is not None, 10, 0.05)
        out, err = twin.communicate(timeout=15)
        assert twin.returncode == 0, err
        assert [d.split(" (seen ")[0] for d in host.state_differs] == [f"{here} uses {wrong}"]
        assert [d.split(" (seen ")[0] for d in json.loads(out)] == [f"{here} uses {right}"]
        assert host.flush(30)
        pg = PgConnection(pg_url)
        try:
            rows = [r["who"] for r in pg.execute("SELECT who FROM log_presence").fetchall()]
            labels = sorted(r["text"] for r in pg.execute("SELECT text FROM routing_labels").fetchall())
        finally:
            pg.close()
        assert len(set(rows)) == 2 and all(who.startswith(f"{here}:{spool}") for who in rows), rows
        assert labels == ["sort these names", "total my taxi receipts"], labels  # neither replaced the other
    finally:
        if twin.poll() is None:
            twin.kill()
            twin.wait(10)
        host.close()
