"""Shared limits on Valkey — the Linux Foundation's fork of Redis 7.2 that small teams increasingly run since Redis's
licence change — run here, not read: Debian's ``valkey-server`` (8.0; bookworm-backports on Debian 12, main from 13;
scripts/bootstrap.sh installs it as root). Absent, every test here fails saying so (never skipped), as for Redis.

The scenarios are the suite's own, borrowed whole from their modules, with every server they talk to a Valkey: the
"machine's Redis" (``redis_url``, ``shared_redis``) is a Valkey of this module's own on a free port, and every private
server a scenario starts, stops or restarts (:class:`~tests.shared.redis_kit.PrivateRedis`) is a ``valkey-server``.

Valkey 8 is not Redis word for word (valkey-io/valkey#306, "Add 'extended-redis-compatibility' config", default no):
its ``BUSY``, ``LOADING`` and ``MISCONF`` replies name "Valkey" where Redis says "Redis", its ``INFO server`` says the
mode as ``server_mode`` (no ``redis_mode``), ``HELLO`` answers ``server: valkey``. Two of modelyard's readings broke on
that, each failing here on the code before: a neighbour's long script (``BUSY Valkey is busy running a script…``) was
an outage with Valkey's bare words, not what BUSY means and what ends it; a Valkey whose ``EVAL`` is renamed away was
called a Sentinel's port (no ``redis_mode`` read as "cannot tell"). The rest passed on the old code too: guards that
the limits, restarts, cooldowns and spend hold on Valkey as on Redis.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from modelyard.router.shared.link import StoreFault, scripts_refused
from tests.shared import test_cooldown_restart as cooldowns
from tests.shared import test_eviction_policy as eviction
from tests.shared import test_gateways as gateways
from tests.shared import test_limits_across_hosts as across_hosts
from tests.shared import test_redis_busy as busy
from tests.shared import test_redis_state as slots
from tests.shared import test_sentinel as sentinel
from tests.shared import test_store_kinds as kinds
from tests.shared.redis_kit import PrivateRedis, server_program, short_lease
from tests.shared.test_redis_state import pools  # noqa: F401 - the borrowed scenarios' fixture

VALKEY = "valkey-server"
MISSING = ("valkey-server is not installed: Debian's valkey-server (Debian 12: from bookworm-backports; Debian 13 on: "
           "main) — scripts/bootstrap.sh installs it as root")


class PrivateValkey(PrivateRedis):
    """A ``valkey-server`` of the test's own: it takes ``redis-server``'s options."""

    program = VALKEY
    missing = MISSING


@pytest.fixture(autouse=True)
def private_servers_are_valkey(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every private server a borrowed scenario starts is a Valkey; fails (never skips) when it is not installed."""
    server_program(VALKEY, MISSING)
    monkeypatch.setattr(PrivateRedis, "program", VALKEY)
    monkeypatch.setattr(PrivateRedis, "missing", MISSING)


@pytest.fixture(scope="module")
def valkey() -> Iterator[PrivateValkey]:
    """This module's Valkey, in place of the machine's Redis (each test's keys under a prefix of its own)."""
    directory = Path(tempfile.mkdtemp(prefix="modelyard-valkey-"))
    try:
        with PrivateValkey(directory) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url(valkey: PrivateValkey) -> str:
    return valkey.url


@pytest.fixture(scope="module")
def shared_redis(valkey: PrivateValkey) -> str:
    return valkey.url


def test_the_server_these_scenarios_meet_is_valkey(valkey: PrivateValkey, tmp_path: Path) -> None:
    """Guard: the module's server and a private one are Valkey (``server_name``), not a Redis by another name."""
    with PrivateRedis(tmp_path) as private:
        for port in (valkey.port, private.port):
            with redis.Redis(port=port, protocol=2) as client:
                info = client.info("server")
            assert info.get("server_name") == "valkey" and info.get("valkey_version"), info


# Found on Valkey (each failed on the code before it)
test_a_neighbours_long_script_is_an_outage_named_as_such = busy.test_a_neighbours_long_script_is_an_outage_named_as_such
test_a_redis_without_eval_is_not_called_a_sentinel = kinds.test_a_redis_without_eval_is_not_called_a_sentinel


def test_a_valkey_sentinels_port_is_named_at_start(tmp_path: Path) -> None:
    """Guard: a Valkey Sentinel's port (``valkey-server --sentinel``: "unknown command 'eval'", ``server_mode:
    sentinel``) is still named as a Sentinel's, now that the mode is read under Valkey's name too."""
    with sentinel.running_sentinel(tmp_path, VALKEY) as port:
        found = asyncio.run(scripts_refused(short_lease(url=f"redis://127.0.0.1:{port}/0", timeout=1)))
    assert found is not None and found[0] is StoreFault.SENTINEL, found


# Guards: the limits across processes (pools with a connection, an instance id and a heartbeat each; gateway processes)
test_the_limit_holds_across_processes_and_the_queue_is_fifo = \
    slots.test_the_limit_holds_across_processes_and_the_queue_is_fifo
test_exactly_one_probe_across_processes = slots.test_exactly_one_probe_across_processes
test_a_breaker_opened_by_one_process_is_seen_by_the_others = \
    slots.test_a_breaker_opened_by_one_process_is_seen_by_the_others
test_a_crashed_process_gives_its_slots_back_within_the_lease = \
    slots.test_a_crashed_process_gives_its_slots_back_within_the_lease
test_a_crashed_waiter_does_not_block_the_queue = slots.test_a_crashed_waiter_does_not_block_the_queue
test_three_gateways_never_exceed_the_limit_at_the_backend = \
    gateways.test_three_gateways_never_exceed_the_limit_at_the_backend

# Guards: a restart that loses the data (a new epoch), an outage
test_after_redis_loses_its_data_live_holders_register_again_before_anyone_gets_a_slot = \
    slots.test_after_redis_loses_its_data_live_holders_register_again_before_anyone_gets_a_slot
test_redis_down_moves_requests_on_in_bounded_time_and_never_multiplies_the_limit = \
    slots.test_redis_down_moves_requests_on_in_bounded_time_and_never_multiplies_the_limit
test_a_cooldown_outlives_a_redis_restarted_empty = cooldowns.test_a_cooldown_outlives_a_redis_restarted_empty

# Guards: spend counted in one window across hosts, and through a restart
test_hosts_with_clocks_either_side_of_midnight_count_into_one_window = \
    across_hosts.test_hosts_with_clocks_either_side_of_midnight_count_into_one_window
test_a_tick_lost_with_the_restart_is_counted_again = across_hosts.test_a_tick_lost_with_the_restart_is_counted_again

# Guards: what a team's Valkey may be configured with — an ACL user, no HELLO, an eviction policy
test_an_acl_user_made_as_the_refusal_says_holds_the_limits = \
    kinds.test_an_acl_user_made_as_the_refusal_says_holds_the_limits
test_a_server_without_hello_holds_the_limits = kinds.test_a_server_without_hello_holds_the_limits
test_a_policy_that_may_evict_our_keys_is_said_with_what_to_set = \
    eviction.test_a_policy_that_may_evict_our_keys_is_said_with_what_to_set
