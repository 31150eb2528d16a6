"""Hosts that reach one Redis server at different addresses share one shared state; hosts on two servers do not.

A small team reaches a Redis that listens only on its own host through a tunnel per host — `ssh -L 6379:127.0.0.1:6379
hostA` or stunnel, then `state: redis://127.0.0.1:6379/0` on every host (the pattern Redis's own security page
suggests for a Redis that must not face the network: https://redis.io/docs/latest/operate/oss_and_stack/management/
security/ , "Network security": bind to loopback, "or use a tunnel"). Each host's fingerprint names its own
127.0.0.1, so the routing log's presence check told them they "limit the same models apart" and made /healthz
degraded. The tests' own TCP proxy (tests/shared/fault_proxy.py) stands in for the tunnel: another port on
127.0.0.1, the same server behind it.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import redis

from modelyard.ledger import presence
from modelyard.ledger.forward import Forwarder
from modelyard.router.shared import link as shared_link
from tests.shared.fault_proxy import FaultProxy
from tests.shared.redis_kit import REDIS_PORT, PrivateRedis, short_lease, until


def _link_servers(url: str, prefix: str) -> tuple[str, ...]:
    """What a running link records as its server (the runtime hands it to the forwarder)."""
    async def run() -> tuple[str, ...]:
        link = shared_link.RedisLink(short_lease(url=url, prefix=prefix, refresh=0.1, timeout=0.5))
        link.ensure_started()
        try:
            for _ in range(100):
                if getattr(link, "servers", None):
                    return link.servers  # type: ignore[no-any-return]
                await asyncio.sleep(0.05)
            return ()
        finally:
            await link.aclose()
    return asyncio.run(run())


def test_a_tunnel_to_the_same_redis_is_not_said_apart_another_server_still_is(tmp_path: Path, redis_url: str,
                                                                              prefix: str, pg_url: str) -> None:
    here = socket.gethostname()
    with FaultProxy(REDIS_PORT) as tunnel, PrivateRedis(tmp_path) as other:
        urls = [redis_url, tunnel.url(), other.url]
        prints = [presence.fingerprint(url, prefix, here) for url in urls]
        assert len(set(prints)) == 3  # three addresses: the address alone cannot tell the tunnel from the other
        servers = []
        for url in urls:  # what each host reads of its server (INFO server), through its own address
            with redis.Redis.from_url(url, socket_timeout=5) as client:
                servers.append((str(client.info("server")["run_id"]),))
        assert servers[0] == servers[1] != servers[2], servers
        hosts = [Forwarder(tmp_path / f"spool-{i}.sqlite3", pg_url, poll=0.05) for i in range(3)]
        try:
            for forwarder, mine, ids in zip(hosts, prints, servers, strict=True):
                forwarder.presence, forwarder.presence_every = mine, 0.2
                forwarder.presence_servers = lambda ids=ids: ids
                forwarder.wake()
            # every host has looked once the odd one out sees both others, and both see it
            until(lambda: (len(hosts[2].state_differs) == 2 and all(h.state_differs for h in hosts[:2]))
                   or [h.last_error for h in hosts if h.last_error])
            for forwarder in hosts[:2]:
                assert [d.split(" (seen ")[0] for d in forwarder.state_differs] == [f"{here} uses {prints[2]}"]
            assert not any(prints[1] in d for d in hosts[0].state_differs)
            assert not any(prints[0] in d for d in hosts[1].state_differs)
        finally:
            for forwarder in hosts:
                forwarder.close()
        # where the runtime's forwarder gets them: the link reads its server's id; `models` reads it once
        assert [_link_servers(url, prefix) for url in urls] == servers
        assert asyncio.run(shared_link.read_server_id(short_lease(url=tunnel.url(), timeout=1))) == servers[1][0]


def test_ids_read_on_either_side_of_a_restart_still_meet() -> None:
    """Redis restarted: its run id changed, and the hosts read it at different moments. A host that read both ids
    and one that read only the old one are on one server; the database or the prefix still has to match."""
    mine = "redis hosta:6379/0 prefix 'm'"
    assert presence.same_server(mine, ["old", "new"], "redis hostb:6379/0 prefix 'm'", ["old"])
    assert not presence.same_server(mine, ["old", "new"], "redis hostb:6379/1 prefix 'm'", ["old"])
    assert not presence.same_server(mine, ["old", "new"], "redis hostb:6379/0 prefix 'team'", ["new"])
    assert not presence.same_server(mine, ["a"], "redis hostb:6379/0 prefix 'm'", ["b"])
    assert not presence.same_server(mine, [], "redis hostb:6379/0 prefix 'm'", [])  # no id: the address decides
    assert presence.same_server("redis unix:/run/r.sock@a db 2 prefix 'm'", ["x"], "redis b:6379/2 prefix 'm'", ["x"])


def test_an_ask_without_shared_state_is_listed_not_degrading(tmp_path: Path, pg_url: str) -> None:
    """A laptop's `ask` whose config has no `state:` wrote to the team's PostgreSQL log: every gateway turned
    degraded for the next 90 s (its presence row's life), though it adds at most one request beyond a limit, for as
    long as it runs. The gateways list it now; a gateway or bot without shared state still makes them degraded."""
    from modelyard.runtime import open_runtime
    from tests.helpers import make_config

    team = "redis 10.0.0.5:6379/0 prefix 'modelyard'"
    hosts = [Forwarder(tmp_path / f"spool-{i}.sqlite3", pg_url, poll=0.05) for i in range(3)]
    try:
        gateway, laptop, stray = hosts
        for forwarder, mine in zip(hosts, [team, presence.NONE, None], strict=True):
            forwarder.presence, forwarder.presence_every = mine, 0.2
        laptop.presence_kind = getattr(presence, "ONE_AT_A_TIME", "")  # what `ask` records (open_runtime, below)
        laptop.wake()

        def looked() -> Any:  # the gateway has read the laptop's row, one way or the other
            h = gateway.health()
            return h if getattr(h, "one_at_a_time_apart", ()) or h.limited_apart else None

        health = until(looked, 15)
        assert not health.degraded and not health.limited_apart, health
        assert "no shared state" in health.one_at_a_time_apart[0] and "one request at a time" in \
            health.one_at_a_time_apart[0]
        stray.presence = presence.NONE
        stray.wake()  # a gateway elsewhere without state: limits apart for as long as it runs
        health = until(lambda: (h := gateway.health()).limited_apart and h, 15)
        assert health.degraded and "no shared state" in health.limited_apart[0]
        assert not health.one_at_a_time_apart  # that host is said once, as apart
    finally:
        for forwarder in hosts:
            forwarder.close()

    config = make_config({"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "model": "m"}},
                         {"a": {"primary": "m"}}, log={"path": str(tmp_path / "log.db"), "url": pg_url})
    for one_shot, kind in ((True, presence.ONE_AT_A_TIME), (False, "")):  # ask/chat; serve, telegram
        runtime = open_runtime(tmp_path / "team.yaml", config=config, one_shot=one_shot)
        try:
            assert runtime.forwarder is not None and runtime.forwarder.presence_kind == kind
        finally:
            asyncio.run(runtime.aclose())


def test_a_host_gone_for_good_leaves_the_presence_table(pg_url: str) -> None:
    """A host removed for good kept its `log_presence` row for ever (ignored after 90 s, never deleted): the next
    record by any host deletes rows a day old."""
    from modelyard.ledger.pg import PgConnection

    pg = PgConnection(pg_url)
    try:
        presence.record(pg, "gone:/spool", "gone", presence.NONE)
        presence.record(pg, "recent:/spool", "recent", presence.NONE)
        pg.execute(f"UPDATE {presence.TABLE} SET seen = seen - ? WHERE who = ?", (2 * 24 * 3600, "gone:/spool"))
        pg.execute(f"UPDATE {presence.TABLE} SET seen = seen - ? WHERE who = ?", (3600, "recent:/spool"))
        presence.record(pg, "here:/spool", "here", presence.NONE)
        left = {row["who"] for row in pg.execute(f"SELECT who FROM {presence.TABLE}").fetchall()}
        assert left == {"recent:/spool", "here:/spool"}
    finally:
        pg.close()
