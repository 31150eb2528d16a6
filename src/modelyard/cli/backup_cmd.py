"""``backup``: a consistent copy of this host's routing log while modelyard runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli.common import ConfigOption, console, err, fail, load_or_exit


def backup(
    dest: Annotated[str, typer.Argument(help=(
        "the new file to write (never overwritten), or a folder: the copy goes into it as "
        "routing-YYYYMMDDTHHMMSSZ.sqlite3"))],
    config: ConfigOption = None,
) -> None:
    """Copy this host's routing log (the SQLite file) to DEST, whole while modelyard writes it.

    `cp` of a running log misses the rows in its -wal and tears when a checkpoint runs meanwhile. With log.url, back
    PostgreSQL up with its own tools (pg_dump); this copies the host's file (its spool)."""
    from modelyard.config import dburl
    from modelyard.ledger.backup import BackupError
    from modelyard.ledger.backup import backup as copy_log
    from modelyard.ledger.store import LogStore

    cfg, _ = load_or_exit(config)
    target = Path(dest).expanduser()
    if dest.endswith(("/", os.sep)) and not target.is_dir():
        # Path() drops the slash: `backup nightly/` wrote a *file* named nightly where `cp log nightly/` refuses
        raise fail(f"{dest}: no such folder — create it first (mkdir -p {dest}), or name a file", code=1)
    source = LogStore.of(cfg).path
    try:
        made = copy_log(source, target)
    except BackupError as exc:
        raise fail(str(exc), code=1) from None
    # the restore names the file itself: 'copy this file to log.path' sent a reader of the default config (no log.path)
    # looking for a setting it never wrote
    console.print(f"routing log copied to {made.path}: {made.requests} requests, {made.size / 1e6:.1f} MB "
                  f"(to restore: stop every modelyard process using the log, delete its -wal and -shm, then copy this "
                  f"file to {source})", highlight=False, markup=False)
    if cfg.log.url:  # the copy is this host's spool, not the team's log: said, not left to be found at a restore
        err.print(f"note: with log.url the requests are in PostgreSQL ({dburl.redact(cfg.log.url)}): this copy is this "
                  "host's spool only — back the shared log up with pg_dump", style="yellow", highlight=False,
                  markup=False)
