"""Servers that speak Redis's protocol but are not Redis, and what stands between: each class from the server's own
documentation or source, run where the server installs here, read where it does not.

Dragonfly (not installable here: no Debian or PyPI package; read, not run) runs scripts in Lua 5.4 and refuses any key a
script was not given: "Dragonfly forbids accessing undeclared keys from scripts and returns the following error: script
tried accessing undeclared key" (dragonflydb.io/docs/managing-dragonfly/scripting; dragonflydb/dragonfly#3212), and
its interpreter makes a missing global an error ("Script attempted to access nonexistent global variable",
src/core/interpreter.cc, which opens only the base, table, string and math libraries of Lua 5.4 — where ``unpack`` is
``table.unpack``). The first check here holds every script of modelyard to that rule on a real Redis: ``MONITOR`` shows
each command a script runs, and Redis itself (``COMMAND GETKEYS``) says which of its arguments are keys.

twemproxy (nutcracker, Debian's package: run, see the report in RELIABILITY.md) passes only commands with a key.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import redis

from modelyard.config.schema import Cooldown, SpendCap
from modelyard.errors import Reason
from modelyard.router.shared import log_places, lua, namespaces
from modelyard.router.shared import spend as shared_spend
from modelyard.router.shared.link import RedisLink, StoreFault, read_server_id, refused, scripts_refused
from modelyard.router.shared.state import RedisState
from modelyard.router.spend import SpendCaps
from tests.shared.redis_kit import PrivateRedis, free_port, short_lease, until

#: the keys under a model's tag (``RedisState``'s)
_TAG_KEYS = ("holders", "queue", "leases", "meta", "released", "breaker")
_LINE = re.compile(r"^\d+\.\d+ \[\d+ (?P<who>[^\]]+)\] (?P<command>.*)$")


def _monitor(url: str, lines: list[str], stop: threading.Event) -> threading.Thread:
    def run() -> None:
        client = redis.Redis.from_url(url, socket_timeout=0.2)
        with client.monitor() as monitor:
            lines.append("started")
            while not stop.is_set():
                try:
                    lines.append(_raw(monitor))
                except redis.TimeoutError:
                    continue
        client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _raw(monitor: redis.client.Monitor) -> str:
    response = monitor.connection.read_response()
    return response.decode() if isinstance(response, bytes) else str(response)


def _undeclared(url: str, lines: list[str]) -> list[str]:
    """Each command a script ran on a key its EVAL / EVALSHA did not name, as MONITOR printed it."""
    admin = redis.Redis.from_url(url)
    declared: set[str] | None = None
    found = []
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue
        words = shlex.split(m["command"])
        if m["who"] != "lua":
            declared = ({*words[3:3 + int(words[2])]} if words[0].upper() in ("EVAL", "EVALSHA") else None)
            continue
        try:
            keys = {k if isinstance(k, str) else k.decode() for k in admin.command_getkeys(*words)}
        except redis.ResponseError:  # no key at all (TIME, INFO, PUBLISH)
            continue
        if declared is None or not keys <= declared:
            found.append(f"{line}  (given: {sorted(declared or ())})")
    admin.close()
    return found


async def _every_script(url: str) -> None:
    link = RedisLink(short_lease(url=url, prefix="kinds", lease=1.5, refresh=0.2, timeout=0.5))
    cloud = RedisState("cloud", 1, Cooldown(failures=1), link)
    RedisState("embedded", 1, Cooldown(), link, per_host=True)
    link.spend = SpendCaps({"cloud": SpendCap(usd=5)})
    await cloud.acquire(2)  # ACQUIRE, and RESTARTED as each connection opens
    waiter = asyncio.create_task(cloud.acquire(5))
    await asyncio.sleep(0.3)  # queued: the beats renew a waiter too
    link.spend.add("cloud", 0.25)
    await link._beat(force=True)  # INSTANCES (and FORGET for the gone host's tag), RENEW, VIEW, SPEND
    assert link.keeper is not None
    await asyncio.to_thread(link.keeper.keep)  # KEEP
    await cloud.release()  # RELEASE: hands the slot to the waiter
    await waiter
    ticket = await cloud.admit()  # the breaker's view is fresh: admitted without a call; ask the store
    assert ticket is not None
    await cloud.failed(ticket, Reason.SERVER_ERROR)  # VERDICT: opens it
    await link.call("ADMIT", [cloud._breaker], [link.now_arg(), link.window_ms, "t"])
    await link.call("REOPEN", [cloud._breaker], [link.now_arg(), 1000, 1, "server_error", 1])
    await link.call("ABANDON", [cloud._breaker], ["t"])
    await cloud.release()
    client = link._client
    assert client is not None
    await client.eval(namespaces.REGISTER, 2, namespaces.REGISTRY, namespaces.ALIVE, link.instance, 60_000, "{}",
                      60_000)
    await log_places.record(client, "kinds", link.host, "", "", 1.0)
    await link.aclose()


def test_every_key_a_script_touches_is_one_it_was_given(tmp_path: Path) -> None:
    """Before, the instance list's script deleted the keys of a host gone for good by names it built itself
    (``PREFIX:{model@host}:holders`` …): on Dragonfly that script — the first call of every heartbeat — failed once
    such a host was gone, and every process's shared limits went to their outage share for good. Now the script names
    the tags and another, given those keys, deletes them."""
    with PrivateRedis(tmp_path) as server:
        admin = redis.Redis.from_url(server.url)
        gone = "kinds:{embedded@gone-host}"
        admin.zadd("kinds:host-keys", {gone: 1})  # its deadline long past, and no process of that host alive
        for key in _TAG_KEYS:
            admin.hset(f"{gone}:{key}", "x", 1)
        lines: list[str] = []
        stop = threading.Event()
        thread = _monitor(server.url, lines, stop)
        until(lambda: lines)
        try:
            asyncio.run(_every_script(server.url))
        finally:
            stop.set()
            thread.join(5)
        assert not admin.exists(*(f"{gone}:{key}" for key in _TAG_KEYS)), "the gone host's keys were kept"
        ran = {shlex.split(_LINE.match(line)["command"])[0].upper() for line in lines if _LINE.match(line)}
        assert {"EVAL", "EVALSHA"} & ran, lines[:5]
        scripted = [line for line in lines if "[0 lua]" in line]
        assert len(scripted) > 50, lines  # the scripts ran, and MONITOR saw their commands
        assert _undeclared(server.url, lines) == []
        admin.close()


def test_no_script_reads_a_global_that_lua_5_4_lacks() -> None:
    """``unpack`` is a global of Lua 5.1 (Redis, Valkey, KeyDB) only; Lua 5.4 (Dragonfly) has ``table.unpack``, and
    Dragonfly's strict globals make the bare name an error: the instance list's script, the first call of every
    heartbeat, called it whenever a process's entry had run out (one killed), and that heartbeat failed — the link
    down, every model to its outage share, until the next tick; a slot script purging a waiter whose lease ran out
    failed the same way."""
    scripts = {name: getattr(lua, name) for name in dir(lua) if name.isupper() and isinstance(getattr(lua, name), str)}
    scripts |= {"SPEND": shared_spend.SPEND, "REGISTER": namespaces.REGISTER, "RECORD": log_places.RECORD}
    bare = sorted(name for name, text in scripts.items()
                  if re.search(r"(?<![.\w])unpack\(", text) and "local unpack = table.unpack or unpack" not in text)
    assert bare == []


async def _hand_over(url: str, prefix: str = "modelyard") -> tuple[int, str, bool]:
    """A slot taken, a waiter queued, the slot handed over to it (RELEASE publishes the grant on the channel this
    process listens to), the lease keeper's renewal: how many calls failed, the link's detail, whether the keeper
    renewed something."""
    settings = short_lease(url=url, prefix=prefix, lease=1.5, refresh=0.2, timeout=0.5)
    assert await refused(settings) is None and await scripts_refused(settings) is None
    link = RedisLink(settings)
    state = RedisState("cloud", 1, Cooldown(), link)
    await state.acquire(2)
    waiter = asyncio.create_task(state.acquire(5))
    await asyncio.sleep(0.3)
    await state.release()
    await waiter
    assert link.keeper is not None
    kept = await asyncio.to_thread(link.keeper.keep)
    await state.release()
    await asyncio.sleep(0.5)  # a few heartbeats and views
    errors, detail = link.errors, link.status().detail
    await link.aclose()
    return errors, detail, kept


async def _through_a_server_without_hello(url: str) -> list[str]:
    _, detail, kept = await _hand_over(url, "old")
    assert kept
    settings = short_lease(url=url, prefix="old", lease=1.5, refresh=0.2, timeout=0.5)
    return [detail, str(await read_server_id(settings)), str(await log_places.read(settings))]


def test_a_server_without_hello_holds_the_limits(tmp_path: Path) -> None:
    """Redis before 6.0 has no ``HELLO``, nor has twemproxy or a managed proxy that never implemented it; redis-py 8
    opens every connection with ``HELLO 3`` (redis/redis-py#4031) and gives up when it is refused
    (redis/redis-py#4089: "unknown command HELLO, with args beginning with: 3", neodb-social/neodb#1585). Made here by
    a real Redis with ``HELLO`` renamed away, which answers it just as Redis 5 does. Before, every connection failed:
    the link never came up, every model had no slot ("this process never counted the processes that share it"), and
    the reason read as an outage. Now each connection speaks RESP2: slots, grants, the keeper, the places and the
    server's identity all work."""
    with PrivateRedis(tmp_path, "--rename-command", "HELLO", "") as server:
        with redis.Redis.from_url(server.url, protocol=2) as admin:
            try:
                admin.execute_command("HELLO", "3")
            except redis.ResponseError as exc:
                assert "unknown command" in str(exc)
            else:
                raise AssertionError("HELLO was answered")
        detail, server_id, places = asyncio.run(_through_a_server_without_hello(server.url))
        assert detail.startswith("reachable"), detail
        assert server_id != "None" and places != "None", (server_id, places)


class Twemproxy:
    """twemproxy (Debian: nutcracker; scripts/bootstrap.sh installs it as root) on an ephemeral loopback port in front
    of ``upstream``. Its README lists what it passes: commands with a key, EVAL/EVALSHA only with one (routed by the
    first); it closes the connection on the rest — "parsed unsupported command 'CLIENT'" in its log for redis-py's
    CLIENT SETINFO, likewise SCRIPT, SUBSCRIBE, INFO, TIME, HELLO (nc_redis.c)."""

    def __init__(self, directory: Path, upstream: int):
        exe = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
        if not Path(exe).exists():
            pytest.skip("nutcracker is not installed (Debian: nutcracker; scripts/bootstrap.sh installs it as root)")
        self.port = free_port()
        config = directory / "nutcracker.yml"
        config.write_text(f"alpha:\n  listen: 127.0.0.1:{self.port}\n  hash: fnv1a_64\n  distribution: ketama\n"
                          f"  redis: true\n  auto_eject_hosts: false\n  servers:\n   - 127.0.0.1:{upstream}:1\n")
        # its statistics port too (22222 on every address by default: a second one would not start)
        self.proc = subprocess.Popen([exe, "-c", str(config), "-o", str(directory / "nutcracker.log"),
                                      "-a", "127.0.0.1", "-s", str(free_port())],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            until(self._answers, timeout=10, step=0.05)
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        """A bare PING on a socket of its own (a client library's handshake is what it closes on)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def test_serve_behind_twemproxy_stops_at_start_saying_so(tmp_path: Path) -> None:
    """Before, ``serve`` started behind twemproxy and gave no model a slot for as long as it ran (every connection
    closed at its first command: "this process never counted the processes that share it"), and the one reason given
    was "Connection closed by server — if this server speaks TLS, the URL is rediss://", which it does not. Now it stops
    at start (exit 2) naming the proxy and what to point state.url at; the TLS hint, where it still shows, says both."""
    from tests.shared.test_state_credentials import _config, _run

    with PrivateRedis(tmp_path) as server:
        proxy = Twemproxy(tmp_path, server.port)
        try:
            config = _config(tmp_path, f"redis://127.0.0.1:{proxy.port}/0")
            done = _run("--config", str(config), "serve", "--port", str(free_port()))
        finally:
            proxy.stop()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "answers PING but closes the connection" in done.stderr and "twemproxy" in done.stderr, done.stderr
    assert "point state.url at the Redis server itself" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Uvicorn running" not in done.stderr + done.stdout


def test_an_acl_user_made_as_the_refusal_says_holds_the_limits(tmp_path: Path) -> None:
    """The refusal's own example, run as written on a new ACL user (redis.io, docs/management/security/acl: a new user
    has no command, no key and — ``acl-pubsub-default resetchannels``, Redis 7's default — no channel). Before, it
    read ``ACL SETUSER <user> +@scripting ~modelyard:*``: such a user could not PING (``serve`` then said Redis
    "refused the credentials", though the password was right), its scripts could not run the commands inside them, and
    with ``+@all`` added every hand-over of a slot failed at its PUBLISH — the link down each time."""
    rules = StoreFault.NOPERM.value.split("ACL SETUSER <user> ", 1)[1].split()
    with PrivateRedis(tmp_path) as server:
        with redis.Redis(port=server.port, protocol=2) as admin:
            admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", *rules)
        errors, detail, _ = asyncio.run(_hand_over(f"redis://app:pw@127.0.0.1:{server.port}/0"))
    assert errors == 0 and detail.startswith("reachable"), detail


def test_serve_with_a_user_without_the_grant_channel_stops_at_start(tmp_path: Path) -> None:
    """Every command and key granted, no channel (what Redis 7 gives a user unless ``&`` says otherwise): before,
    ``serve`` started, and every hand-over of a slot to a waiter failed midway at its PUBLISH ("The user executing the
    script can't publish to the channel mentioned in the command") — the link down, every model to its outage share,
    the waiter woken by the next heartbeat only, and no word of which grant was missing. Now it stops at start (exit
    2) naming the channel's rule."""
    from tests.shared.test_state_credentials import _config, _run

    with PrivateRedis(tmp_path) as server:
        with redis.Redis(port=server.port, protocol=2) as admin:
            admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all")
        config = _config(tmp_path, f"redis://app:pw@127.0.0.1:{server.port}/0")
        done = _run("--config", str(config), "serve", "--port", str(free_port()))
    assert done.returncode == 2, (done.returncode, done.stderr)
    # the server's words: Redis's "can't publish to the channel", Valkey 8's "No permissions to access a channel"
    assert any(words in done.stderr for words in ("can't publish to the channel", "permissions to access a channel"))
    assert "&modelyard:*" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Uvicorn running" not in done.stderr + done.stdout


def test_a_redis_without_eval_is_not_called_a_sentinel(tmp_path: Path) -> None:
    """``rename-command EVAL ""`` (and EVALSHA): a hardening step some guides give for a Redis whose clients need no
    scripts. Such a Redis answers "unknown command 'EVAL'" as a Sentinel's port does, and ``serve`` stopped saying it
    was one — "point state.url at the Redis primary the Sentinel names" — to an admin whose URL named the primary. Now
    the server's own ``redis_mode`` (``INFO server``: standalone) tells the two apart."""
    from tests.shared.test_state_credentials import _config, _run

    with PrivateRedis(tmp_path, "--rename-command", "EVAL", "", "--rename-command", "EVALSHA", "") as server:
        done = _run("--config", str(_config(tmp_path, server.url)), "serve", "--port", str(free_port()))
    assert done.returncode == 2, (done.returncode, done.stderr)
    # the server as it names itself (tests/shared/test_forks.py runs this on Valkey and Redict)
    named = {"valkey-server": "Valkey", "redict-server": "Redict"}.get(Path(server.exe).name, "Redis")
    assert f"this {named} runs no scripts — EVAL renamed or removed" in done.stderr, done.stderr
    assert "Sentinel" not in done.stderr and "Traceback" not in done.stderr, done.stderr


async def test_a_redis_at_maxclients_is_an_outage_not_a_proxy(tmp_path):
    """Redis at ``maxclients`` answers a new connection "-ERR max number of clients reached" and closes it (redis.io/
    docs/latest/develop/reference/clients: "the new connection is closed with an error"), which redis-py raises as a
    ConnectionError (its parser's EXCEPTION_CLASSES) — as it raises twemproxy's close. The probe then found the
    address speaking RESP (a '-' reply to its PING) and serve stopped at start naming a proxy that passes only keyed
    commands, for a Redis that takes connections again as soon as one closes: an outage, ridden out (on_outage)."""
    with PrivateRedis(tmp_path, "--maxclients", "1") as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as held:
        held.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert held.recv(64).startswith(b"+PONG")  # the one client it takes
        assert await scripts_refused(short_lease(url=server.url, timeout=0.5)) is None
