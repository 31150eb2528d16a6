"""Real Redis for the shared-state tests: the machine's server (unique key prefix per test, keys
deleted afterwards, never FLUSHALL) and private ``redis-server`` processes that a test may stop,
freeze or restart without touching anyone else's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from modelyard.config.schema import BELOW_LEASE_RULE, StateConfig

#: the shared server the suite runs against (scripts/services.sh starts it)
REDIS_URL = os.environ.get("MODELYARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
#: its port on loopback (a fault proxy in front of it)
REDIS_PORT = redis.connection.parse_url(REDIS_URL).get("port", 6379)


def require_redis(url: str = REDIS_URL) -> None:
    """Fail (never skip) when Redis is absent: these tests are the proof that shared limits hold."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        raise AssertionError(f"Redis is not reachable at {url} ({exc}): start it with scripts/services.sh") from None


def new_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def delete_prefix(prefix: str, url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    finally:
        client.close()


def until(predicate: Any, timeout: float = 30.0, step: float = 0.1) -> Any:
    """Poll ``predicate`` (a blocking check: another thread or process does the work) until it holds; its value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(step)
    return value


def own_tag(prefix: str, model: str) -> str:
    """The keys' tag of a model whose slots are this host's (the embedded model, a server on a loopback endpoint: every
    host has its own); a model on a server on the network has ``{prefix}:{model}``."""
    return f"{prefix}:{{{model}@{socket.gethostname()}}}"


def counts(prefix: str, model: str, url: str = REDIS_URL) -> tuple[int, int]:
    """(holders, waiters) of ``model`` as Redis holds them right now."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        tag = f"{prefix}:{{{model}}}"
        return client.zcard(f"{tag}:holders"), client.zcard(f"{tag}:queue")
    finally:
        client.close()


def deadlines_of(client: redis.Redis, key: str, mark: str) -> tuple[float, list[float]]:
    """Redis's clock now and the lease deadlines (ms, Redis's clock: the scores of ``holders`` / ``leases``, see
    :mod:`modelyard.router.shared.lua`) of the entries in ``key`` whose token holds ``mark`` — read in one MULTI, so
    the two are of the same instant. A test of "its slots come back within the lease" asserts on these, not on how
    long a poll on a loaded machine took to see the entries go (5.65 s for a lease of 4.5 s once under load)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.time()
        pipe.zrange(key, 0, -1, withscores=True)
        (seconds, micros), entries = pipe.execute()
    return seconds * 1000 + micros / 1000, [score for token, score in entries if mark in token.decode()]


def store_calls(state: Any) -> list[str]:
    """The store calls (script names) ``state``'s link makes from now on, recorded as they start: a request that
    must not wait for the store is asserted to make none, not to be quick (a loaded loop is not quick)."""
    made: list[str] = []
    call = state.link.call

    async def counted(script: str, *args: Any, **kwargs: Any) -> Any:
        made.append(script)
        return await call(script, *args, **kwargs)

    state.link.call = counted
    return made


def short_lease(**settings: Any) -> StateConfig:
    """Shared-state settings whose lease may be below 9·(refresh + timeout), on purpose: a test that wants a crashed
    holder's slots back within a second or two, or calls with a bound of their own (a file, MODELYARD_STATE and the
    defaults are held to the rule: :meth:`StateConfig._lease_rule`)."""
    return StateConfig.model_validate(settings, context={BELOW_LEASE_RULE: True})


@contextlib.contextmanager
def at_maxmemory(port: int) -> Iterator[None]:
    """The server at ``port`` past its ``maxmemory`` (1 byte) with the default ``noeviction``: a plain write is
    refused with OOM (checked), until the block ends."""
    admin = redis.Redis(port=port)
    admin.config_set("maxmemory", 1)
    try:
        try:
            admin.set("plain", "write")
            raise AssertionError("maxmemory did not refuse a plain write")
        except redis.exceptions.OutOfMemoryError:
            pass
        yield
    finally:
        admin.config_set("maxmemory", 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: the server program of :class:`PrivateRedis`: ``MODELYARD_TEST_REDIS_SERVER=valkey-server`` (with
#: ``MODELYARD_TEST_REDIS`` at a Valkey of one's own) runs the whole shared-state suite against a Redis-compatible fork
REDIS_SERVER = os.environ.get("MODELYARD_TEST_REDIS_SERVER", "redis-server")


def server_program(name: str, missing: str) -> str:
    """The path of server program ``name``; fails (never skips) saying ``missing`` when it is not installed."""
    exe = shutil.which(name)
    assert exe, missing
    return exe


class PrivateRedis:
    """A ``redis-server`` of the test's own on an ephemeral loopback port, keeping nothing on disk (``program``: a
    Redis-compatible server that takes the same options — ``valkey-server``, ``redict-server``)."""

    #: the server program and what to say when it is not installed
    program = REDIS_SERVER
    missing = f"{REDIS_SERVER} is not installed: run scripts/services.sh"

    def __init__(self, directory: Path, *options: str, program: str | None = None, missing: str | None = None):
        self.directory = directory
        self.options = options
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.exe = server_program(program or self.program, missing or self.missing)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"), *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with contextlib.closing(redis.Redis(port=self.port, socket_connect_timeout=0.2, protocol=2)) as probe:
                    probe.ping()  # closed: left to the collector, its socket was a ResourceWarning in a later test
                return self
            except redis.AuthenticationError:  # started with --requirepass: it answers
                return self
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.02)

    def kill(self) -> None:
        """Stop it hard (its data is gone: it keeps nothing on disk)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung server)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.kill()


async def queued_at_least(states: list, n, timeout: float = 5) -> None:
    """Wait until the store itself holds ``n`` slots and waiters for model ``m`` (so the next request
    arrives after them: FIFO is the order in which requests reach the store)."""
    import asyncio

    from modelyard.router import LocalState

    deadline = time.monotonic() + timeout
    while True:
        target = n() if callable(n) else n
        state = states[0]
        if isinstance(state, LocalState):
            have = state.slots.in_flight + state.slots.waiting
        else:
            # the state's own keys (a model on a loopback endpoint has this host's, {m@host}, not {m}) on its own
            # server (a private one: tests/shared/test_valkey.py runs these scenarios on a Valkey)
            client = redis.Redis.from_url(state.link.settings.url, socket_timeout=5)
            try:
                have = client.zcard(state._slots[0]) + client.zcard(state._slots[1])
            finally:
                client.close()
        if have >= target:
            return
        assert time.monotonic() < deadline, f"only {have} of {target} requests reached the store"
        await asyncio.sleep(0.002)


async def served_in_order(states: list, n: int, hold: float) -> tuple[list[int], int]:
    """``n`` requests arriving strictly one after another — each once the store holds the one before —
    taken in turn by ``states`` (one per process), each holding its slot ``hold`` seconds.
    Returns (the order in which they got their slots, the most held at once)."""
    import asyncio

    order: list[int] = []
    busy = peak = served = 0
    gate = [asyncio.Event() for _ in range(n + 1)]
    gate[0].set()

    async def request(i: int) -> None:
        nonlocal busy, peak, served
        state = states[i % len(states)]
        await gate[i].wait()  # arrive in order: each after the one before reached the store
        waiting = asyncio.ensure_future(state.acquire(10))
        await queued_at_least([state], lambda: i + 1 - served)  # started minus finished
        gate[i + 1].set()
        await waiting
        busy += 1
        peak = max(peak, busy)
        order.append(i)
        await asyncio.sleep(hold)
        busy -= 1
        await state.release()
        served += 1  # after the store let go of it: the next arrival is gated on the store's own count

    await asyncio.gather(*(request(i) for i in range(n)))
    return order, peak


class SilentProxy:
    """A loopback TCP proxy in front of a Redis whose connections can go *silent*: they stay open, nothing passes
    any more in either direction, and no RST or FIN ever comes — what a NAT or stateful firewall that forgot an idle
    flow, or a server moved away without a word, looks like to the client. A read on such a connection never fails;
    only a bound on waiting for an answer finds it. Connections made after :meth:`silence` pass normally."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = 0
        self._server: Any = None
        #: [silent, subscriber, client writer, upstream writer] per connection carried
        self._pipes: list[list[Any]] = []

    async def start(self) -> SilentProxy:
        import asyncio

        self._server = await asyncio.start_server(self._carry, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def _carry(self, reader: Any, writer: Any) -> None:
        import asyncio

        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        pipe = [False, False, writer, up_writer]
        self._pipes.append(pipe)

        async def pump(src: Any, dst: Any, from_client: bool) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    if from_client and b"SUBSCRIBE" in data.upper():
                        pipe[1] = True
                    if pipe[0]:
                        continue  # swallowed: the sender sees its bytes leave, nothing ever arrives
                    dst.write(data)
                    await dst.drain()
            if not pipe[0]:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def silence(self, *, subscribers_only: bool = False) -> int:
        """Silence the connections open now (only the pub/sub ones with ``subscribers_only``); how many."""
        chosen = [p for p in self._pipes if not p[0] and (p[1] or not subscribers_only)]
        for pipe in chosen:
            pipe[0] = True
        return len(chosen)

    async def aclose(self) -> None:
        for _, _, writer, up_writer in self._pipes:
            writer.close()
            up_writer.close()
        self._server.close()
