"""Wiring: a config becomes a pool of models, a router over it, and a routing log.

Front-ends (CLI, gateway, Telegram) all start from :func:`open_runtime`, so the log,
its location and the text-storage switch behave the same everywhere. The runtime owns the
pool: every router made from it (the gateway's direct ``model:NAME`` router too) shares it.
What upper layers derive from the config once (the orchestrator and its trained fast path) lives
on the runtime too (:meth:`Runtime.derived`): built on first use, gone with the runtime, never
kept in module state keyed by ``id(config)``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

from modelyard.config import Config, load_config
from modelyard.errors import ConfigError
from modelyard.ledger import LogWriter, presence
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.probes import backend_of, teach
from modelyard.ledger.queries import spend_since
from modelyard.ledger.store import LogStore, log_path
from modelyard.paths import resolve_config_path
from modelyard.providers.http import load_http_client
from modelyard.router import ModelPool, Router

T = TypeVar("T")


@dataclass
class Runtime:
    config: Config
    config_path: Path
    pool: ModelPool
    router: Router
    log: LogWriter
    #: with ``log.url``: copies the local log (the spool) to PostgreSQL
    forwarder: Forwarder | None = None
    _derived: dict[type, object] = field(default_factory=dict, repr=False)
    _derive_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def derived(self, kind: type[T], build: Callable[[Runtime], T]) -> T:
        """The runtime's one ``kind`` object, built by ``build(self)`` on first use (thread-safe: a
        second caller waits for the first build instead of training a second copy)."""
        with self._derive_lock:
            if kind not in self._derived:
                self._derived[kind] = build(self)
            return cast(T, self._derived[kind])

    def replace_derived(self, kind: type[T], value: T) -> None:
        """Put a newer ``kind`` object in place (e.g. a fast path retrained on newly learned labels)."""
        with self._derive_lock:
            self._derived[kind] = value

    def derived_if_built(self, kind: type[T]) -> T | None:
        """The ``kind`` object if it was built already (no waiting, no building)."""
        return cast("T | None", self._derived.get(kind))

    @property
    def log_path(self) -> Path:
        return self.log.path

    @property
    def log_store(self) -> LogStore:
        """Where readers look: the SQLite file, or PostgreSQL with ``log.url``."""
        return LogStore.of(self.config)

    async def aclose(self) -> None:
        await self.router.aclose()
        await self.pool.aclose()
        self.log.close()
        if self.forwarder is not None:  # a short wait: what is not sent stays in the spool for the next process
            self.forwarder.close(timeout=2.0)


def log_path_for(config: Config) -> Path:
    return log_path(config.log)


def load(config_path: str | Path | None = None) -> tuple[Config, Path]:
    path = resolve_config_path(config_path)
    try:
        return load_config(path), path
    except ConfigError as exc:
        if config_path or not os.environ.get("MODELYARD_CONFIG") or exc.line is not None:
            raise
        # a file that cannot be read at all, named by a variable set long ago: say where the name came from
        raise ConfigError(f"{exc.detail} (the file $MODELYARD_CONFIG names)", path=exc.path) from None


def open_runtime(config_path: str | Path | None = None, *, config: Config | None = None, borrow: bool = False,
                 notice: Callable[[str], None] | None = None, one_shot: bool = False) -> Runtime:
    """``borrow``: a front-end (ask, chat, telegram) takes slots and breakers from the running ``serve``
    of the same config when there is one (``notice`` hears when it cannot and uses its own); ``one_shot``: it sends
    one request at a time (ask, chat) — while Redis is out of reach it takes at least one slot of a model, and the
    routing log's other hosts list it, without turning degraded, when it limits apart from them."""
    if config is None:
        config, path = load(config_path)
    else:
        path = Path(config_path or "<memory>")
    local = [name for name, m in config.models.items() if m.is_local]
    pool = ModelPool(config, borrow_from=path if borrow and path.exists() else None, notice=notice)
    # each attempt is logged with its server: another config sharing the log may have a model of the same name
    backends = {name: backend_of(provider) for name, provider in pool.providers.items()}
    log = LogWriter(log_path_for(config), local_models=local, max_queue=config.log.max_queue,
                    keep_days=config.log.keep_days, max_text=config.log.max_text_chars, url=config.log.url,
                    backends=backends)
    forwarder = Forwarder(log.path, config.log.url) if config.log.url else None
    if forwarder is not None:
        log.on_commit(forwarder.wake)
    if one_shot and pool.link is not None:
        pool.link.one_shot = True
    if forwarder is not None and pool.serve is None:  # a borrower's limits are serve's, which says its own
        forwarder.presence_kind = presence.ONE_AT_A_TIME if one_shot else ""
        state = pool.link.settings if pool.link is not None else None
        forwarder.presence = presence.fingerprint(state.url if state else None, state.prefix if state else "",
                                                  socket.gethostname())
        if pool.link is not None:
            link, forwarding = pool.link, forwarder
            forwarder.presence_servers = lambda: link.servers
            link.log_identity = lambda: forwarding.log_identity
            link.log_mark = lambda: forwarding.log_mark
            link.log_holds = forwarding.holds
    teach(pool.providers, log.path)  # what `probe` measured (e.g. thinking) shapes each model's profile
    if any(m.provider != "llamacpp" for m in config.models.values()):
        # ask, chat, telegram, route: aiohttp imported here, not inside the first request's first-token bound (as
        # serve does): left there it was most of the TTFT `ask` showed (0.4–0.8 s of 'TTFT' against a server that
        # answered in milliseconds, load ~7) and failed a healthy model over under a 1 s bound
        load_http_client()
    router = Router(config, pool=pool, sink=log.submit)
    if pool.spend is not None:  # spend caps count what the log says each capped model cost (router/spend.py)
        store = LogStore.of(config)
        pool.spend.reader = spend_reader(store)
        if store.url:  # while PostgreSQL cannot be read, this host's file may add what other processes here spent
            pool.spend.local_reader = spend_reader(LogStore(store.path))
        else:  # what this host spent that never reached the shared counter is restored from it (SpendCaps.unsent_here)
            pool.spend.reads_host_file = True
        # this host's file now (every process here writes to it); with log.url, every host's on the first check
        pool.spend.read_now(pool.spend.local_reader)
    return Runtime(config, path, pool, router, log, forwarder)


#: seconds one reading of the spend may wait on PostgreSQL before its connection is cut: a connection gone silent
#: mid-query (a firewall dropping packets, a frozen server) answers nothing and raises nothing, and a reading left
#: waiting kept every later one from starting
SPEND_READ_BOUND = 30.0


def spend_reader(store: LogStore) -> Callable[[Mapping[str, float]], Mapping[str, float]]:
    """Spend since each window's start, from where readers look (PostgreSQL: every host). Raises when it cannot be
    read, or not within :data:`SPEND_READ_BOUND`: the caps then keep their last reading
    (:meth:`~modelyard.router.spend.SpendCaps.read_now`)."""
    def read(starts: Mapping[str, float]) -> Mapping[str, float]:
        conn = store.connect(readonly=True)
        from modelyard.ledger.pg import PgConnection  # psycopg itself only when PostgreSQL is configured

        if isinstance(conn, PgConnection):  # PostgreSQL's readers' bound, tighter here (the SQLite file never waits)
            conn.read_bound = SPEND_READ_BOUND
            conn.read_ceiling = SPEND_READ_BOUND  # no slow read here: the caps keep their last reading
        try:
            return spend_since(conn, starts)
        finally:
            conn.close()

    return read
