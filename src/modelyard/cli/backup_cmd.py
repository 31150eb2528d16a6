"""``backup``: a consistent copy of this host's routing log while modelyard runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli.common import ConfigOption, console, fail, load_or_exit


def backup(
    dest: Annotated[Path, typer.Argument(help="the new file to write (never overwritten)")],
    config: ConfigOption = None,
) -> None:
    """Copy this host's routing log (the SQLite file) to DEST, whole while modelyard writes it.

    `cp` of a running log misses the rows in its -wal and tears when a checkpoint runs meanwhile. With log.url, back
    PostgreSQL up with its own tools (pg_dump); this copies the host's file (its spool)."""
    from modelyard.ledger.backup import BackupError
    from modelyard.ledger.backup import backup as copy_log
    from modelyard.ledger.store import LogStore

    cfg, _ = load_or_exit(config)
    try:
        made = copy_log(LogStore.of(cfg).path, dest)
    except BackupError as exc:
        raise fail(str(exc), code=1) from None
    console.print(f"routing log copied to {made.path}: {made.requests} requests, {made.size / 1e6:.1f} MB "
                  "(to restore: stop every modelyard process using the log, delete its -wal and -shm, then copy this "
                  "file to log.path)", highlight=False, markup=False)
