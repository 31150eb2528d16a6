"""Where a running ``modelyard serve`` announces itself, so front-ends on the same machine find it.

One small JSON file per config (``<data dir>/serve/<key>.json``, the key a hash of the config's
resolved path) says which process serves that config, where its slot socket is and whether it hosts
the Telegram bot. ``serve`` writes it at start and removes it at a clean exit; a file left by a
killed serve names a dead pid, which readers treat as *down* (and say so) rather than trusting it.

The directory is private (mode 700): the socket in it is the only authentication the slot protocol
needs — only this user can connect.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from modelyard.paths import data_dir

#: unix socket paths are limited to 104 (macOS) / 108 (Linux) bytes including the terminator
MAX_SOCKET_PATH = 100


@dataclass(slots=True, frozen=True)
class ServeEntry:
    """What a running serve tells the front-ends of its config."""

    pid: int
    config: str
    #: the unix socket that lends this serve's slots and breakers (empty: it lends nothing)
    socket: str
    url: str
    telegram: bool = False


@dataclass(slots=True, frozen=True)
class Discovery:
    """What a front-end found: a live serve (``entry``), or why it uses this process's state (``why``).

    ``why`` is empty when no serve was ever announced for the config (nothing to say), and a sentence
    when one was but is gone (the front-end should say it is on its own)."""

    entry: ServeEntry | None
    why: str = ""


def config_key(config_path: str | os.PathLike[str]) -> str:
    """The same config reached by any relative path or symlink gives the same key."""
    resolved = Path(config_path).expanduser().resolve()
    return hashlib.sha256(str(resolved).encode()).hexdigest()[:16]


def serve_dir() -> Path:
    return data_dir() / "serve"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.lstat()
    if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a directory owned by this user")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def entry_path(config_path: str | os.PathLike[str]) -> Path:
    return serve_dir() / f"{config_key(config_path)}.json"


def socket_path(config_path: str | os.PathLike[str]) -> Path:
    """Next to the entry file; in a private directory under the temp dir when that path is too long
    for a unix socket (deep data dirs, e.g. a test's tmp dir)."""
    key = config_key(config_path)
    path = _private_dir(serve_dir()) / f"{key}.sock"
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    return _private_dir(Path(tempfile.gettempdir()) / f"modelyard-{os.getuid()}") / f"{key}.sock"


def announce(config_path: str | os.PathLike[str], entry: ServeEntry) -> Path:
    """Write the entry atomically (readers never see half a file)."""
    target = _private_dir(serve_dir()) / f"{config_key(config_path)}.json"
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(entry)))
    tmp.chmod(0o600)
    tmp.replace(target)
    return target


def withdraw(config_path: str | os.PathLike[str], pid: int) -> None:
    """Remove the entry if it is still ``pid``'s (a newer serve may have taken it over)."""
    path = entry_path(config_path)
    entry = read(path)
    if entry is not None and entry.pid == pid:
        with contextlib.suppress(OSError):
            path.unlink()


def read(path: Path) -> ServeEntry | None:
    try:
        data = json.loads(path.read_text())
        return ServeEntry(pid=int(data["pid"]), config=str(data["config"]), socket=str(data.get("socket") or ""),
                          url=str(data.get("url") or ""), telegram=bool(data.get("telegram")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds that pid: not our serve
        return False
    return True


def discover(config_path: str | os.PathLike[str] | None) -> Discovery:
    """The live serve of this config, if any. Never raises: a front-end must start without one."""
    if config_path is None or str(config_path).startswith("<"):
        return Discovery(None)
    try:
        path = entry_path(config_path)
        if not path.exists():
            return Discovery(None)
    except OSError:  # an unreadable data dir: no serve to be found there
        return Discovery(None)
    entry = read(path)
    if entry is None:
        return Discovery(None, f"{path} is unreadable")
    if not alive(entry.pid):
        return Discovery(None, f"`modelyard serve` (pid {entry.pid}) is not running")
    return Discovery(entry)
