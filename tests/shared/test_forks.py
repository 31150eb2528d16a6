"""Shared limits on the Redis forks a team may run instead of Redis — run here, not read. Valkey, the Linux Foundation's
fork of Redis 7.2 that small teams increasingly run since Redis's licence change, and Redict, the other (LGPL) fork of
7.2.4: Debian's ``valkey-server`` (8.0) and ``redict-server`` (7.3), from bookworm-backports on Debian 12 (scripts/
bootstrap.sh installs them as root). Absent, every test here fails saying so (never skipped), as for Redis.

The scenarios are the suite's own, borrowed whole from their modules, with every server they talk to the fork: the
"machine's Redis" (``redis_url``, ``shared_redis``) is a server of this module's own on a free port, and every private
server a scenario starts, stops or restarts (:class:`~tests.shared.redis_kit.PrivateRedis`) is the fork's.

Neither is Redis word for word (valkey-io/valkey#306, "Add 'extended-redis-compatibility' config", default no): their
``BUSY``, ``LOADING`` and ``MISCONF`` replies name "Valkey" or "Redict" where Redis says "Redis", and ``INFO server``
says the mode as ``server_mode`` (Valkey) or ``redict_mode`` (Redict), with no ``redis_mode``. Two of modelyard's
readings broke on that, each failing here on the code before: a neighbour's long script (``BUSY Valkey is busy running
a script…``) was an outage in the server's bare words, not what BUSY means and what ends it; a server whose ``EVAL`` is
renamed away was called a Sentinel's port (no ``redis_mode`` read as "cannot tell"). The rest passed on the old code
too: guards that the limits, restarts, cooldowns and spend hold on each fork as on Redis.
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

#: each fork's server program and the ``INFO server`` field that only it has
FORKS = {"valkey-server": "valkey_version", "redict-server": "redict_version"}


def _missing(program: str) -> str:
    return (f"{program} is not installed: Debian's {program} (Debian 12: from bookworm-backports) — "
            "scripts/bootstrap.sh installs it as root")


@pytest.fixture(scope="module", params=sorted(FORKS))
def fork(request: pytest.FixtureRequest) -> str:
    """The fork's server program; fails (never skips) when it is not installed."""
    program: str = request.param
    server_program(program, _missing(program))
    return program


@pytest.fixture(autouse=True)
def private_servers_are_the_fork(fork: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every private server a borrowed scenario starts is the fork's."""
    monkeypatch.setattr(PrivateRedis, "program", fork)
    monkeypatch.setattr(PrivateRedis, "missing", _missing(fork))


@pytest.fixture(scope="module")
def fork_server(fork: str) -> Iterator[PrivateRedis]:
    """This module's server of the fork, in place of the machine's Redis (each test's keys under a prefix of its
    own)."""
    directory = Path(tempfile.mkdtemp(prefix="modelyard-fork-"))
    try:
        with PrivateRedis(directory, program=fork, missing=_missing(fork)) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url(fork_server: PrivateRedis) -> str:
    return fork_server.url


@pytest.fixture(scope="module")
def shared_redis(fork_server: PrivateRedis) -> str:
    return fork_server.url


def test_the_server_these_scenarios_meet_is_the_fork(fork: str, fork_server: PrivateRedis, tmp_path: Path) -> None:
    """Guard: the module's server and a private one are the fork (its own version field), not a Redis."""
    with PrivateRedis(tmp_path) as private:
        for port in (fork_server.port, private.port):
            with redis.Redis(port=port, protocol=2) as client:
                info = client.info("server")
            assert info.get(FORKS[fork]), info


# Found on the forks (each failed on the code before it)
test_a_neighbours_long_script_is_an_outage_named_as_such = busy.test_a_neighbours_long_script_is_an_outage_named_as_such
test_a_redis_without_eval_is_not_called_a_sentinel = kinds.test_a_redis_without_eval_is_not_called_a_sentinel


def test_a_forks_sentinel_port_is_named_at_start(fork: str, tmp_path: Path) -> None:
    """Guard: the fork's Sentinel (``--sentinel``: "unknown command 'eval'", ``server_mode`` / ``redict_mode``
    sentinel) is still named as a Sentinel's port, now that the mode is read under the fork's name too."""
    with sentinel.running_sentinel(tmp_path, fork) as port:
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

# Guards: what a team's server may be configured with — an ACL user, no HELLO, an eviction policy
test_an_acl_user_made_as_the_refusal_says_holds_the_limits = \
    kinds.test_an_acl_user_made_as_the_refusal_says_holds_the_limits
test_serve_with_a_user_without_the_grant_channel_stops_at_start = \
    kinds.test_serve_with_a_user_without_the_grant_channel_stops_at_start
test_a_server_without_hello_holds_the_limits = kinds.test_a_server_without_hello_holds_the_limits
test_a_policy_that_may_evict_our_keys_is_said_with_what_to_set = \
    eviction.test_a_policy_that_may_evict_our_keys_is_said_with_what_to_set
