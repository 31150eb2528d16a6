"""The routing log's PostgreSQL behind PgBouncer in transaction pooling (real pgbouncer, real PostgreSQL).

psycopg prepares a statement on the server once it has run five times on a connection, and from then on sends
only its name. Behind a transaction pooler the next transaction runs on another server connection, where that
name means nothing ("prepared statement "_pg3_0" does not exist") or something else ("… already exists"):
PgBouncer before 1.21, or 1.21+ with ``max_prepared_statements = 0``, the most common complaint about psycopg 3
and asyncpg behind it.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_pg_forward import pg_ids, write
from tests.pg import Bouncer, scratch_database
from tests.unit.test_ledger import record

from modelyard.ledger import queries
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.pg import PgConnection


def test_two_hosts_forwarding_through_a_transaction_pooler_send_every_row_without_a_failure(tmp_path: Path) -> None:
    """Two hosts' forwarders (a team's usual shape) share the pooler's server connections, so each one's batches
    run on connections where the other one prepared its statements."""
    with scratch_database() as direct, Bouncer(direct) as bouncer:
        spools = [tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"]
        forwarders = [Forwarder(path, bouncer.url, batch=4) for path in spools]  # many small transactions
        try:
            for start in range(0, 96, 8):
                host = (start // 8) % 2
                write(spools[host], [record(i) for i in range(start, start + 8)])
                assert forwarders[host].flush(20), forwarders[host].health()
            assert pg_ids(direct) == [f"req{i:06d}" for i in range(96)]
            for forwarder in forwarders:
                health = forwarder.health()
                assert health.failures == 0 and not health.degraded, health.last_error
        finally:
            for forwarder in forwarders:
                forwarder.close()


def test_readers_behind_a_transaction_pooler_answer_the_same_query_many_times(tmp_path: Path) -> None:
    """``modelyard log``, ``report``, the dashboard: the same few queries again and again on one connection."""
    with scratch_database() as direct, Bouncer(direct) as bouncer:
        writer = PgConnection(bouncer.url)
        other = PgConnection(bouncer.url)  # another client: its statements live on the same server connections
        try:
            write(tmp_path / "log.sqlite3", [record(1)])
            forwarder = Forwarder(tmp_path / "log.sqlite3", bouncer.url)
            assert forwarder.flush(20), forwarder.health()
            forwarder.close()
            for _ in range(12):
                assert writer.execute("SELECT COUNT(*) FROM requests WHERE id = ?", ("req000001",)).fetchone()[0] == 1
                assert other.execute("SELECT id FROM requests WHERE id = ?", ("req000001",)).fetchone()[0] \
                    == "req000001"
                assert queries.rate(writer, "req000001", True) == "req000001"
        finally:
            writer.close()
            other.close()
