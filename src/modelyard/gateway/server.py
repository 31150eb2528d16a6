"""Run the gateway under uvicorn: resolve host/port, enforce keys beyond loopback, own the runtime."""

from __future__ import annotations

import errno
import gc
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from modelyard.config import Config
from modelyard.gateway.app import GatewayApp, create_app
from modelyard.gateway.auth import check_bind, load_keys, who_may_call
from modelyard.gateway.drain import Drain
from modelyard.gateway.forwarded import forwarded
from modelyard.gateway.hosting import Hosting
from modelyard.gateway.transport import OneWriteProtocol
from modelyard.router.lending import discover
from modelyard.router.lending.registry import ServeEntry
from modelyard.runtime import open_runtime


def serve(config: Config, config_path: Path, *, host: str | None = None, port: int | None = None,
          access_log: bool = True, log_level: str = "info", keep_warm: bool = True,
          announce: Callable[[str], None] = print,
          telegram_token: str | None = None) -> None:
    """Serve until interrupted. Raises :class:`~modelyard.gateway.auth.InsecureBind` before binding
    anything when ``host`` is beyond loopback and no API keys are set. Front-ends of the same config
    on this machine borrow this process's limits; with ``telegram_token`` it runs the bot too."""
    host = host or config.gateway.host
    port = config.gateway.port if port is None else port
    keys = load_keys(config.gateway)
    check_bind(host, config.gateway, keys, config_path)
    # a second gateway for a config that a running serve already serves borrows that serve's limits too
    first = discover(config_path).entry
    check_port(host, port, first)
    # --port 0: a free port, taken here so that the URL said below (and registered for ask/chat) is the one served;
    # a script or test reads it from that line instead of picking a port, closing it and racing others to it
    listener = any_port(host) if port == 0 else None
    if listener is not None:
        port = listener.getsockname()[1]
    if first is not None and first.telegram and telegram_token is not None:
        announce(f"telegram: the bot already runs in `modelyard serve` pid {first.pid}; not starting a second one")
        telegram_token = None
    runtime = open_runtime(config_path, config=config, borrow=first is not None, notice=announce)
    shown = f"[{host}]" if ":" in host else host
    hosting = Hosting(runtime, f"http://{shown}:{port}", telegram_token=telegram_token, announce_line=announce)
    app = create_app(runtime, api_keys=keys, close_runtime=True, keep_warm=keep_warm, hosting=hosting)
    # the three APIs, so a newcomer pointing Claude Code or an Ollama app here sees where (it named only OpenAI's)
    announce(f"modelyard gateway on http://{shown}:{port}  (OpenAI API at /v1, Anthropic's at /v1/messages, "
             "Ollama's at /api; dashboard at /, metrics at /metrics)")
    store = runtime.log_store
    announce(f"API keys: {who_may_call(keys, config.gateway)}; "
             f"routing log: {store.where}" + (f" (this host's spool: {runtime.log_path})" if store.url else ""))
    if runtime.pool.link is not None:  # state: redis://… — whose limits these are is the first thing a team asks
        announce(f"limits: {runtime.pool.describe_state()}")
    for line in unserved(config, {name: p.unavailable_reason() for name, p in runtime.pool.providers.items()}):
        announce(line)
    tune_gc()
    raise_open_files()
    # asyncio's selector loop (less bookkeeping per request: gateway/loop.py), not uvloop: against an instant backend
    # uvloop (with this loop's savings kept) cost 1-3% less CPU per request at 50 clients and no req/s measurable
    # (2026-12-01; benchmarks/tried/hot30-uvloop.patch). The ~8x slower llama.cpp streaming under uvloop measured on
    # 2026-11-25 was not reproduced then (uvloop 0.23, llama-cpp-python 0.3.36) (benchmarks/README.md, issue #15).
    # httptools, not h11: 15% less CPU per request; OneWriteProtocol (gateway/transport.py) sends a
    # response's head with its body in one write (issue #15).
    # Keep-alive longer than clients keep idle connections (aiohttp 15 s, httpx 5 s): with uvicorn's 5 s,
    # a client reusing a connection just as the server closed it got "Cannot write to closing transport"
    # or a dropped request (aiohttp does not retry a POST). The side that closes first should be the client:
    # between requests serve waits 120 s (IDLE_BOUNDS, gateway/transport.py), past Go's and hyper's 90 s pools.
    server = _Server(uvicorn_config(app, host, port, access_log=access_log, log_level=log_level),
                     app.state.gateway.drain)
    server.run(sockets=[listener] if listener is not None else None)


def any_port(host: str) -> socket.socket:
    """A listening socket on a free port of ``host`` (``serve --port 0``)."""
    bare = host.strip("[]")
    return socket.create_server((bare, 0), family=socket.AF_INET6 if ":" in bare else socket.AF_INET)


def unserved(config: Config, unavailable: dict[str, str | None]) -> list[str]:
    """What serve cannot answer with, said as it starts: with a key unset (the README's `export ANTHROPIC_API_KEY`
    skipped) or the GGUF missing, it said nothing and every request to such an agent came back 424."""
    lines = [f"{name}: unavailable: {why}" for name, why in unavailable.items() if why]
    stranded = [agent for agent, a in config.agents.items() if a.chain and all(unavailable.get(m) for m in a.chain)]
    if stranded:
        lines.append(f"no model can answer for {', '.join(stranded)}: requests to "
                     f"{'it' if len(stranded) == 1 else 'them'} fail (424) until that is fixed; "
                     "`modelyard models` shows each model's state")
    return lines


def uvicorn_config(app: GatewayApp, host: str, port: int, *, access_log: bool = True,
                   log_level: str = "info") -> uvicorn.Config:
    """How ``serve`` runs uvicorn (the reasons in :func:`serve`). Its proxy-header middleware is off: the app applies
    the same to the requests that carry such a header (gateway/forwarded.py), trusting the same hosts."""
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level=log_level,
                            loop=SERVE_LOOP, http=OneWriteProtocol, timeout_graceful_shutdown=5,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS, server_header=False, proxy_headers=False)
    app.forwarded = forwarded(config.forwarded_allow_ips)
    return config


class NotOurAddress(Exception):
    """The address to serve on is not this machine's: bad input (``--host`` or ``gateway.host``), exit 2. Said
    before anything starts (a model load, a bot, the line announcing the URL)."""


class PortTaken(Exception):
    """The address to serve on is in use: the machine's state, not the config's, so ``serve`` was not done (exit 1)
    and a service manager may try again once the other program is gone. Said before anything starts."""


def check_port(host: str, port: int, running: ServeEntry | None) -> None:
    """Raise :class:`PortTaken`, naming who holds it when it is a serve of this config, if ``host:port`` is in use,
    :class:`NotOurAddress` if ``host`` is not this machine's (uvicorn would find out only after the start-up, and
    say it less plainly)."""
    bare = host.strip("[]")
    try:
        with socket.create_server((bare, port), family=socket.AF_INET6 if ":" in bare else socket.AF_INET):
            return
    except OSError as exc:
        # not this machine's address, or a name that does not resolve (getaddrinfo's errors are negative)
        if exc.errno == errno.EADDRNOTAVAIL or (exc.errno or 0) < 0:  # uvicorn: after announcing the URL, exit 3
            raise NotOurAddress(f"cannot serve on {host}:{port}: {exc.strerror or exc}; --host (or gateway.host) must "
                            "be an address of this machine: 127.0.0.1 (this machine only), 0.0.0.0 (every "
                            "interface) or one of its own") from None
        if exc.errno != errno.EADDRINUSE:
            return  # not ours to judge here (a privileged port…): uvicorn reports it
    who = (f"by `modelyard serve` pid {running.pid} of this config, at {running.url}" if running is not None
           and running.url.endswith(f":{port}") else "by another program (a `modelyard serve` of another config "
           f"or user, or anything else: `lsof -iTCP:{port} -sTCP:LISTEN` names it)")
    raise PortTaken(f"{host}:{port} is already in use {who}; stop it, or serve on another port "
                    "(--port N, or gateway.port in the config)")


#: the open files ``serve`` raises its soft limit to, within the hard limit (a connection, idle or not, is one)
OPEN_FILES = 65536


def raise_open_files() -> None:
    """Raise the soft limit on open files towards the hard one, as Go does for every program (golang/go#46279).

    launchd starts a process with a soft limit of 256 and systemd with 1024 (a hard limit of 512K stays free to
    take), for programs that use ``select``; the gateway's loop uses epoll or kqueue. At 256, 250 idle keep-alive
    connections — what a few agents' HTTP pools hold between calls — left ``accept`` failing (``EMFILE``: asyncio
    tries again a second later, for as long as they stay) and every other client waiting (a connection to a model
    needs a file too). Never lowered."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    for limit in (want, 10240):  # macOS refuses more than kern.maxfilesperproc (10240 by default, OPEN_MAX)
        if limit <= soft:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
            return
        except (OSError, ValueError):
            continue


#: uvicorn's loop factory: asyncio's selector loop without its per-request bookkeeping (gateway/loop.py)
SERVE_LOOP = "modelyard.gateway.loop:ServeLoop"

#: the bound on every wait on a client inside a request (nginx's keep-alive default; uvicorn's own is 5 s); a
#: connection idle between requests stays open IDLE_BOUNDS times as long (120 s, gateway/transport.py)
KEEP_ALIVE_SECONDS = 75

#: net new container objects between two young-generation collections (Python's default is 700)
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Keep the garbage collector off the request path (issue #15).

    With Python's defaults, the ~100,000 objects of a started gateway (its modules, config, pools)
    are scanned again by every full collection, and 50 requests in flight keep more than 700 young
    objects alive, so a young collection ran every few requests and promoted their live objects to
    be scanned again later: ~18% of the process's time at 50 concurrent clients, full collections of
    ~0.1–0.2 s each (measured, benchmarks/README.md). Freezing what exists at start moves it out of
    every future collection; a young threshold above what the requests in flight hold lets them
    finish (and be freed by reference counting) before a collection looks at them. Cyclic garbage
    is still collected, every 10,000 net new objects instead of every 700.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class _Server(uvicorn.Server):
    """uvicorn, telling the gateway the moment a shutdown signal arrives (not after its graceful wait),
    so answers in flight end with an error event instead of being cancelled under a traceback."""

    def __init__(self, config: uvicorn.Config, drain: Drain):
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.drain.start()
