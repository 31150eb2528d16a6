"""The fourth fault hunt (helper-46): shared state under faults real deployments report. Each test runs against a
real ``redis-server`` (a private one where the test stops or reconfigures it)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import subprocess
import time
from pathlib import Path

import pytest
import redis

from modelyard.router import ModelPool
from modelyard.router.clock import ManualClock
from modelyard.router.shared import RedisState
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis, counts, free_port, short_lease
from tests.shared.test_redis_state import Pools, config, pools  # noqa: F401 - fixture

TIMEOUT = 1.0


async def _until(predicate, timeout: float = 5.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "not within the time bound"
        await asyncio.sleep(0.02)


async def test_max_queue_during_an_outage_counts_this_process_share(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """Redis down, two processes: each has 2 of the model's 4 slots. With both of its slots busy a request should
    move on at once under ``max_queue: 0``; it was compared with the full limit (2 busy < 4), so it queued for
    a slot the share did not have and waited out its queue bound."""
    server = PrivateRedis(tmp_path).start()
    try:
        a, b = (p["m"] for p in pools(2, limit=4, url=server.url, timeout=TIMEOUT, refresh=0.1))
        assert isinstance(a, RedisState)
        for state in (a, b):
            await state.acquire(3)
            await state.release()
        await _until(lambda: a.link.instances == 2)
    finally:
        server.kill()
    with pytest.raises(QueueTimeout):  # finds the store gone; for its first seconds it uses only what it held (none):
        await a.acquire(1)  # the other may have handed out what it last saw free
    assert not a.link.up
    await a.acquire(a.link.held_back_in() + 5)  # then this process's share
    await a.acquire(0.1)  # the share's second slot
    why = a.queue_full(0)
    assert "0 waiting for its 2 busy slots (max_queue 0)" in why, why
    assert "share is 2 of 4" in why
    assert a.queue_full(1) == ""  # room for one waiter
    await a.release()
    assert a.queue_full(0) == ""  # a slot of the share is free again
    await a.release()


async def test_a_clock_jump_of_the_store_hands_no_slot_out_twice(redis_url: str, prefix: str, caplog) -> None:
    """Redis's clock steps 60 s forward (its VM resumed, an NTP step) while a process holds the only slot: every
    lease runs out at once. The next process's ACQUIRE purged the holder and took the slot — two requests on a
    model with one — and the holder's heartbeat registered its slot again beside it, with nothing said. Now the
    store waits a grace in which live holders register again, says so, and hands the slot on only after.
    (The scripts take the time from the manual clock given to the link, exactly as they take Redis's TIME.)"""
    clock = ManualClock()
    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=TIMEOUT)
    a, b = (ModelPool(config(1), clock=clock, shared=settings) for _ in range(2))
    try:
        holder, other = a["m"], b["m"]
        assert isinstance(holder, RedisState) and isinstance(other, RedisState)
        await other.acquire(1)
        await other.release()
        await holder.acquire(1)
        await _until(lambda: all(s.link.view_at is not None for s in (holder, other)))  # a jump after the first look
        clock.advance(60)
        with caplog.at_level(logging.WARNING, logger="modelyard.state"):
            with pytest.raises(QueueTimeout):
                await other.acquire(0.5)  # the old code: granted, beside the live holder
            assert counts(prefix, "m", redis_url)[0] <= 1
            await _until(lambda: counts(prefix, "m", redis_url) == (1, 0))  # the holder registered itself again
            await _until(lambda: "clock jumped 60.0s forward" in caplog.text)
        assert "clock jumped" in holder.link.status().detail
        waiting = asyncio.ensure_future(other.acquire(10))
        await holder.release()
        await asyncio.sleep(0.3)
        assert not waiting.done(), "handed on within the grace"
        for _ in range(3):  # past the grace (2/3 lease + timeout = 3 s) in steps shorter than a window (2 s), each
            clock.advance(1.1)  # renewed before the next: time passing, not another jump
            await other.link.sync(other)
        await asyncio.wait_for(waiting, 5)
        assert counts(prefix, "m", redis_url)[0] == 1
        await other.release()
    finally:
        for pool in (a, b):
            await pool.aclose()


def _model_config(endpoint: str = "http://gpu-box:11434", price: float = 0):
    return make_config({"m": {"provider": "ollama", "endpoint": endpoint, "model": "qwen3:8b", "max_concurrent": 2,
                              "price": {"input": price, "output": price}}}, {"a": {"primary": "m"}})


async def _registered(pool: ModelPool) -> None:
    state = pool["m"]
    await state.acquire(3)
    await state.release()


async def test_hosts_on_other_databases_or_prefixes_limiting_one_backend_are_told(tmp_path: Path, caplog) -> None:
    """Host A on ``redis://…/0``, host B on ``/1`` (or on another ``prefix``), both limiting the same Ollama: each
    handed out its whole max_concurrent and saw only its own half, with nothing said. Now each process registers its
    namespace and backends under one fixed key in database 0, and one that finds the same backend in another
    namespace says so (warning, /healthz's detail, ``models``)."""
    with PrivateRedis(tmp_path) as server:
        url0, url1 = server.url, server.url[:-1] + "1"
        made = [ModelPool(_model_config(), shared=short_lease(url=u, prefix=p, lease=3, refresh=0.1, timeout=TIMEOUT))
                for u, p in ((url0, "modelyard"), (url1, "modelyard"), (url0, "team"), (url0, "modelyard"))]
        other = ModelPool(_model_config("http://other-box:11434"),  # another machine: nothing shared
                          shared=short_lease(url=url1, prefix="x", lease=3, refresh=0.1, timeout=TIMEOUT))
        cloud = [ModelPool(_model_config(price=1), shared=short_lease(url=u, prefix=p, lease=3, refresh=0.1,
                                                                       timeout=TIMEOUT))
                 for u, p in ((url0, "c1"), (url0, "c2"))]  # priced: its limit belongs to a key, not a machine
        try:
            with caplog.at_level(logging.WARNING, logger="modelyard.state"):
                for pool in [*made, other, *cloud]:
                    await _registered(pool)
                a, b, c, same = (p.link for p in made)
                assert a is not None and b is not None and c is not None and same is not None
                await _until(lambda: len(a.splits) == 2, timeout=15)  # its next registration sees the later ones
                assert "under db 0 prefix 'modelyard' and as m under db 1 prefix 'modelyard'" in "".join(a.splits)
                assert "db 0 prefix 'team'" in "".join(a.splits)
                assert a.splits == same.splits  # same namespace: not a split between those two
                assert b.splits and c.splits
                assert "counted apart" in a.status().detail and "http://gpu-box:11434 qwen3:8b" in a.status().detail
                assert "each hands out the whole max_concurrent" in caplog.text
            assert other.link is not None and other.link.splits == []
            assert all(p.link is not None and p.link.splits == [] for p in cloud)
        finally:
            for pool in [*made, other, *cloud]:
                await pool.aclose()
        with contextlib.closing(redis.Redis(port=server.port)) as admin:
            assert admin.zcard("modelyard-namespaces:alive") == 0, "every process left the registry on close"


async def test_a_process_on_another_database_closes_its_registry_connection(tmp_path: Path) -> None:
    """A process on database 1 registers its namespace in database 0's registry through a client of its own.
    Closing the pool left that client's connection open: redis-py's ``Redis(connection_pool=…)`` does not close a
    pool it was handed (redis/redis-py#2901; ``Redis.from_pool``, redis/redis-py#2913, does), so the socket stayed
    until the collector came — an unclosed-connection ResourceWarning in some later test. The collector is held
    off here: what is open after ``aclose`` is what it left."""
    with PrivateRedis(tmp_path) as server, contextlib.closing(redis.Redis(port=server.port)) as admin:
        me = str(admin.client_id())
        pool = ModelPool(_model_config(), shared=short_lease(url=server.url[:-1] + "1", lease=3, refresh=0.1,
                                                              timeout=TIMEOUT))
        gc.disable()
        try:
            await _registered(pool)
            await _until(lambda: any(c["db"] == "0" and c["id"] != me for c in admin.client_list()))
            await pool.aclose()
            with contextlib.suppress(AssertionError):
                await _until(lambda: all(c["id"] == me for c in admin.client_list()), timeout=2)
            left = [(c["db"], c["cmd"]) for c in admin.client_list() if c["id"] != me]
        finally:
            gc.enable()
        assert left == [], f"connections left open after aclose (db, last command): {left}"


async def test_an_acl_without_the_registry_key_changes_nothing_else(tmp_path: Path) -> None:
    """A user whose ACL allows only its own prefix (``~modelyard:*``) gets NOPERM for the registry: the check is
    dropped, quietly, and the link stays up (the registry is a courtesy, never the store's health)."""
    with PrivateRedis(tmp_path) as server:
        admin = redis.Redis(port=server.port)
        admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~modelyard:*", "&modelyard:*", "+@all")
        url = f"redis://app:pw@127.0.0.1:{server.port}/0"
        pool = ModelPool(_model_config(), shared=short_lease(url=url, lease=3, refresh=0.1, timeout=TIMEOUT))
        try:
            await _registered(pool)
            link = pool.link
            assert link is not None
            await _until(lambda: link._registry_off)
            errors = link.errors
            await _registered(pool)
            assert link.up and link.errors == errors and link.splits == []
        finally:
            await pool.aclose()


async def test_misconf_falls_back_says_what_it_is_and_recovers(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """MISCONF: the RDB snapshot cannot be written (a full disk; here the file's name is taken by a directory) and
    ``stop-writes-on-bgsave-error`` refuses every write. The reason read 'Command # 1 (EVALSHA 10c2… 2 p:instances
    …) of pipeline caused error: (…' — redis-py's wrapper, the script's arguments, then the server's words. Now the
    server's words and what they mean; this process's share meanwhile, and back once writes are taken."""
    with PrivateRedis(tmp_path, "--save", "3600 1") as server:
        (state,) = (p["m"] for p in pools(1, limit=2, url=server.url, timeout=TIMEOUT, refresh=0.1))
        await state.acquire(3)
        await state.release()
        await _until(lambda: state.link.instances > 0)
        admin = redis.Redis(port=server.port)
        (tmp_path / "dump.rdb").mkdir()
        admin.bgsave()
        await _until(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err")
        await _until(lambda: not state.link.up)
        reason = state.link.down_reason
        assert reason.startswith("ResponseError: MISCONF") and "Command #" not in reason, reason
        assert "stop-writes-on-bgsave-error" in reason and "see the Redis log" in reason
        await state.acquire(0.1)  # this process's share
        await state.release()
        admin.config_set("stop-writes-on-bgsave-error", "no")
        await _until(lambda: state.link.up)


async def test_an_acl_without_scripts_is_named_with_its_fix(tmp_path: Path) -> None:
    """NOPERM: a Redis user made for modelyard without EVAL/EVALSHA (an ACL copied from a cache's). Every request was
    refused as 'shared state unreachable … this process never reached it': nothing said it was reached and refused,
    or what to grant."""
    with PrivateRedis(tmp_path) as server:
        redis.Redis(port=server.port).execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all",
                                                      "-@scripting")
        url = f"redis://app:pw@127.0.0.1:{server.port}/0"
        pool = ModelPool(_model_config(), shared=short_lease(url=url, lease=3, refresh=0.1, timeout=TIMEOUT))
        try:
            state = pool["m"]
            with pytest.raises(QueueTimeout) as refused:
                await state.acquire(1)
            text = str(refused.value)
            assert "NoPermissionError" in text and "ACL SETUSER <user> +@scripting" in text, text
            assert "never counted the processes that share it" in text
        finally:
            await pool.aclose()


async def test_the_reason_follows_the_outage_from_refused_to_loading(tmp_path: Path) -> None:
    """Redis restarted with a large data set answers LOADING for as long as it reads it (10 s for 4 M keys here).
    /healthz kept the outage's first reason — 'Connection refused' — all that time, while the server was up and
    loading. The reason is now the latest one."""
    server = PrivateRedis(tmp_path, "--enable-debug-command", "yes").start()
    pool = ModelPool(_model_config(), shared=short_lease(url=server.url, lease=3, refresh=0.1, timeout=TIMEOUT))
    try:
        state = pool["m"]
        await state.acquire(3)
        await state.release()
        admin = redis.Redis(port=server.port, socket_timeout=120)  # POPULATE and SAVE take seconds on a loaded box
        admin.execute_command("DEBUG", "POPULATE", 1_500_000, "k", 64)
        admin.save()
        admin.close()
        server.kill()
        await _until(lambda: "Connect call failed" in state.link.down_reason or "111" in state.link.down_reason)
        starting = asyncio.ensure_future(asyncio.to_thread(server.start))  # returns once loaded
        # LOADING, or on a loaded machine a server too busy loading to answer within the bound: not 'refused' any more
        await _until(lambda: "111" not in state.link.down_reason or starting.done(), timeout=30)
        reason = state.link.down_reason
        assert "111" not in reason and not starting.done(), f"loaded before it was seen: {reason}"
        assert "BusyLoadingError" in reason or reason.startswith("no answer within"), reason
        if "BusyLoadingError" in reason:
            assert "loading its data set" in state.link.status().detail
        await starting
        await _until(lambda: state.link.up, timeout=10)
    finally:
        await pool.aclose()
        server.kill()


def _tls_server(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server speaking only TLS, its certificate signed by a CA of the test's own (made with openssl)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=modelyard-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "server.crt", "-days", "2", "-extfile", "ext.cnf")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(directory),
                             "--logfile", str(directory / "redis.log"),
                             "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
                             "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"], cwd=directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, ssl=True, ssl_ca_certs=str(directory / "ca.crt"), socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, port
        except redis.RedisError:
            assert time.monotonic() < deadline and proc.poll() is None, "the TLS redis-server did not start"
            time.sleep(0.05)


async def _refusal(url: str) -> str:
    pool = ModelPool(_model_config(), shared=short_lease(url=url, lease=3, refresh=0.1, timeout=TIMEOUT))
    try:
        with pytest.raises(QueueTimeout) as refused:
            await pool["m"].acquire(3 * TIMEOUT)
        return str(refused.value)
    finally:
        await pool.aclose()


async def test_tls_works_and_each_way_of_getting_it_wrong_says_what_to_write(tmp_path: Path) -> None:
    """``rediss://`` (a managed Redis, stunnel, Redis 6+ with TLS): with the server's CA named in the URL it works.
    A CA this host does not trust (self-signed, a private CA: the commonest first failure, e.g. Heroku's), plain text
    to the TLS port, TLS to a plain port: each refused every request with the bare socket error — an SSL trace,
    'Connection reset by peer', 'no answer within 1s' — and nothing said what to write."""
    proc, port = _tls_server(tmp_path)
    try:
        ca = tmp_path / "ca.crt"
        pool = ModelPool(_model_config(), shared=short_lease(url=f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}",
                                                             lease=3, refresh=0.1, timeout=TIMEOUT))
        try:
            await _registered(pool)
            assert pool.link is not None and pool.link.up
        finally:
            await pool.aclose()
        untrusted = await _refusal(f"rediss://127.0.0.1:{port}/0")
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted and "?ssl_ca_certs=/path/to/ca.pem" in untrusted, untrusted
        plain = await _refusal(f"redis://127.0.0.1:{port}/0")
        assert "if this server speaks TLS, the URL is rediss://" in plain, plain
    finally:
        proc.kill()
        proc.wait(10)
    (tmp_path / "plain").mkdir()
    with PrivateRedis(tmp_path / "plain") as server:
        tls_to_plain = await _refusal(f"rediss://127.0.0.1:{server.port}/0")
        assert "if this server does not speak TLS, the URL is redis://" in tls_to_plain, tls_to_plain


async def test_a_database_number_past_the_servers_says_what_bounds_it() -> None:
    """``redis://host:6379/77`` on a server with the default 16 databases: every request was refused with redis-py's
    bare "DB index is out of range" and nothing said which setting bounds it (found by the three-host walk)."""
    from tests.shared.redis_kit import REDIS_URL, require_redis

    require_redis()
    base = REDIS_URL.rsplit("/", 1)[0]
    refused = await _refusal(f"{base}/77")
    assert "DB index is out of range" in refused, refused
    assert "`databases` setting (16 by default: 0–15)" in refused, refused


def test_serve_with_a_user_that_may_not_run_scripts_stops_at_start(tmp_path: Path) -> None:
    """The password is right but the ACL has no EVAL/EVALSHA: ``serve`` started, gave no model a slot and answered
    every request 503 for as long as it ran. Now it stops at start (exit 2) naming the config line and the grant."""
    from tests.shared.test_state_credentials import _config, _run

    with PrivateRedis(tmp_path) as server:
        redis.Redis(port=server.port).execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all",
                                                      "-@scripting")
        config = _config(tmp_path, f"redis://app:pw@127.0.0.1:{server.port}/0")
        done = _run("--config", str(config), "serve", "--port", str(free_port()))
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "refused this user's scripts" in done.stderr and "ACL SETUSER <user> +@scripting" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Uvicorn running" not in done.stderr + done.stdout


def test_plain_text_to_a_tls_port_met_at_the_write_still_says_rediss() -> None:
    """The TLS server's alert and close can meet redis-py at its next write instead of its read: "Error UNKNOWN while
    writing to socket. Connection lost." — said bare (a clean-clone CI on a loaded machine, 2026-12-01), where a
    reset at the read said to write rediss://."""
    from modelyard.router.shared.link import RedisLink

    link = RedisLink(short_lease(url="redis://127.0.0.1:6390/0"))
    said = link._scheme_hint("ConnectionError: Error UNKNOWN while writing to socket. Connection lost.")
    assert "if this server speaks TLS, the URL is rediss://" in said, said
    tls = RedisLink(short_lease(url="rediss://127.0.0.1:6390/0"))
    assert "rediss://" not in tls._scheme_hint("ConnectionError: Connection lost.")  # the hint is for plain URLs
