"""Wiring: a config becomes a pool of models, a router over it, and a routing log.

Front-ends (CLI, gateway, Telegram) all start from :func:`open_runtime`, so the log,
its location and the text-storage switch behave the same everywhere. The runtime owns the
pool: every router made from it (the gateway's direct ``model:NAME`` router too) shares it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelyard.config import Config, load_config
from modelyard.ledger import LogWriter
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.probes import teach
from modelyard.ledger.store import LogStore, log_path
from modelyard.paths import resolve_config_path
from modelyard.router import ModelPool, Router


@dataclass
class Runtime:
    config: Config
    config_path: Path
    pool: ModelPool
    router: Router
    log: LogWriter
    #: with ``log.url``: copies the local log (the spool) to PostgreSQL
    forwarder: Forwarder | None = None

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
    return load_config(path), path


def open_runtime(config_path: str | Path | None = None, *, config: Config | None = None, borrow: bool = False,
                 notice: Callable[[str], None] | None = None) -> Runtime:
    """``borrow``: a front-end (ask, chat, telegram) takes slots and breakers from the running ``serve``
    of the same config when there is one (``notice`` hears when it cannot and uses its own)."""
    if config is None:
        config, path = load(config_path)
    else:
        path = Path(config_path or "<memory>")
    local = [name for name, m in config.models.items() if m.is_local]
    log = LogWriter(log_path_for(config), local_models=local, max_queue=config.log.max_queue)
    forwarder = Forwarder(log.path, config.log.url) if config.log.url else None
    if forwarder is not None:
        log.on_commit(forwarder.wake)
    pool = ModelPool(config, borrow_from=path if borrow and path.exists() else None, notice=notice)
    teach(pool.providers, log.path)  # what `probe` measured (e.g. thinking) shapes each model's profile
    router = Router(config, pool=pool, sink=log.submit)
    return Runtime(config, path, pool, router, log, forwarder)
