"""A spend cap counted from the PostgreSQL log (every host's spend) while that PostgreSQL is down — restarted for an
upgrade or a failover, or unreachable from this host — on a server of the test's own (``tests.pg.OwnServer``).

Budgets that fall back to what one pod has seen let every pod spend the whole budget (BerriAI/litellm#33325: budgets
read from pod-local spend). The reading of the log every 10 s used this host's file when PostgreSQL could not be
reached: the team's spend, read a moment before, was replaced by this host's own, and a model over its cap through
the other hosts' answers served again on this one for as long as the outage lasted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.fakes import AnthropicServer, OllamaServer
from tests.fakes.server import poll
from tests.integration.test_spend_caps import ASK, KEY, config_data
from tests.pg import OwnServer

from modelyard.config.schema import Config, SpendCap, SpendWindow
from modelyard.router.spend import SpendCaps
from modelyard.runtime import open_runtime


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AnthropicServer, OllamaServer, OwnServer]]:
    monkeypatch.setenv("SPEND_TEST_KEY", KEY)
    pg = OwnServer()
    try:
        with AnthropicServer(api_key=KEY, reply_text="From the cloud.") as cloud, \
                OllamaServer(["llama3.2:1b"], reply_text="From here.") as local:
            yield cloud, local, pg
    finally:
        pg.close()


async def test_a_cap_reached_by_other_hosts_holds_while_postgresql_is_down(tmp_path: Path, servers) -> None:
    """Host A spends past the cap; host B reads it from PostgreSQL and answers locally; PostgreSQL stops. B's next
    reading cannot reach it: B keeps counting the team's spend (and its own since). Before: B's own file ($0) was
    the reading, and B sent the capped model its next request."""
    cloud, local, pg = servers
    host_a = Config.model_validate(config_data(tmp_path / "a", cloud.url, local.url, usd=0.00001, url=pg.url))
    host_b = Config.model_validate(config_data(tmp_path / "b", cloud.url, local.url, usd=0.00001, url=pg.url))
    a = open_runtime(config=host_a)
    try:
        assert (await a.router.complete("writer", ASK)).record.model == "haiku"
        poll(lambda: a.forwarder is not None and a.forwarder.health().backlog == 0, timeout=10)
    finally:
        await a.aclose()
    b = open_runtime(config=host_b)
    try:
        assert b.pool.spend is not None
        b.pool.spend.read_now()
        team = b.pool.spend.spent("haiku")
        assert team > 0.00001 and b.pool.spend.over("haiku") is not None  # A's spend, read from PostgreSQL
        pg.stop("fast")
        b.pool.spend.read_now()  # what the worker thread does every 10 s
        assert b.pool.spend.spent("haiku") == team, "the team's spend gave way to this host's file"
        assert (await b.router.complete("writer", ASK)).record.model == "local"
    finally:
        await b.aclose()
    assert len(cloud.requests_to("/v1/messages")) == 1  # only A's answer: the capped model never asked again


def test_this_hosts_file_adds_only_what_it_says_beyond_the_last_reading() -> None:
    """While PostgreSQL cannot be read, this host's file still says what every process *here* spent (a `serve`, the
    bot, an `ask` beside it): it counts where it says more than the last reading plus this process's spend since,
    never less."""
    readings: list[dict[str, float] | Exception] = [{"m": 5.0}, OSError("connection refused"),
                                                    OSError("connection refused")]

    def team(_starts):
        reading = readings.pop(0)
        if isinstance(reading, Exception):
            raise reading
        return reading

    here = [{"m": 3.0}, {"m": 7.5}]
    caps = SpendCaps({"m": SpendCap(usd=100.0, per=SpendWindow.DAY)})
    caps.reader, caps.local_reader = team, lambda _starts: here.pop(0)
    caps.read_now()
    caps.add("m", 1.0)
    caps.read_now()  # the file says $3: less than the $5 read plus this process's $1 since
    assert caps.spent("m") == 6.0
    caps.read_now()  # the file says $7.50: this host's processes spent more than that since
    assert caps.spent("m") == 7.5


def test_a_reading_left_waiting_on_a_silent_connection_is_cut(tmp_path: Path, pg_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection a spend reading uses goes silent mid-query — a firewall dropping packets, a frozen server (the
    shapes in ``tests/shared/fault_proxy.py``): nothing answers and no TCP error comes, so the query waited for ever,
    and since a reading runs only when none is running, no reading followed — the other hosts' spend was never seen
    again. Now the reading's connection is cut after a bound: the reading fails (the last one counts), the next runs.
    """
    from tests.integration.test_pg_partition import _through
    from tests.shared.fault_proxy import FaultProxy

    from modelyard import runtime
    from modelyard.ledger.pg import PgConnection
    from modelyard.ledger.store import LogStore

    PgConnection(pg_url).close()  # the log's tables
    monkeypatch.setattr(runtime, "SPEND_READ_BOUND", 2.0, raising=False)
    with FaultProxy(5432) as proxy, psycopg.connect(pg_url, autocommit=True) as admin:
        reader = runtime.spend_reader(LogStore(tmp_path / "log.sqlite3", _through(pg_url, proxy.port)))
        caps = SpendCaps({"m": SpendCap(usd=100.0, per=SpendWindow.DAY)})
        caps.reader = reader
        proxy.delay(1.5)  # each message from the client arrives 1.5 s late: room to go silent between two
        reading = threading.Thread(target=caps.read_now, daemon=True)
        reading.start()
        # the reading's session is up and its query on the way: silence the path now
        sessions = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'modelyard' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()")
        poll(lambda: admin.execute(sessions).fetchone()[0] > 0, timeout=10)
        assert proxy.partition() == 1
        reading.join(10)
        assert not reading.is_alive(), "the reading still waits on the silent connection"
