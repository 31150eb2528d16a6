"""How many requests of one model an Ollama server runs at once (``OLLAMA_NUM_PARALLEL``), where that can be told.

Ollama's API does not say it (ollama/ollama#17556: "not visible in ollama ps or any API"), and the config's
``max_concurrent`` counts a request waiting in Ollama's own queue as running (ollama_queue.py). What does tell it,
read in Ollama's source (server/sched.go ``load``, envconfig/config.go):

- the model's architecture: Ollama loads some with one slot whatever the variable says — :data:`ONE_AT_A_TIME`,
  ``/api/show``'s ``details.family`` — and an embedding model always with one;
- the server's environment, on this machine only: the process listening on the endpoint's port (readable for a
  server of this user: ``ollama serve`` in a terminal, the desktop app), else the systemd unit Ollama's Linux
  installer writes (``systemctl show ollama.service``: its ``Environment=``, drop-ins included — the FAQ's way to set
  it), else ``launchctl getenv`` on a Mac (the FAQ's way for the app);
- a readable environment without the variable: Ollama's default, 1 since 0.9.7 (#11330; before, 4 or 1 by free
  memory). ``0`` or a value that is no number is read as 1, as Ollama reads it.

A server elsewhere, in a container, or of another user with no systemd unit: unknown, and said so.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.providers.this_machine import on_this_machine

VARIABLE = "OLLAMA_NUM_PARALLEL"
#: architectures Ollama loads with one slot whatever OLLAMA_NUM_PARALLEL says ("model architecture does not currently
#: support parallel requests", server/sched.go, ollama/ollama#4165; qwen35 since 0.17, February 2026)
ONE_AT_A_TIME = frozenset({"mllama", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3next", "lfm2", "lfm2moe",
                           "nemotron_h", "nemotron_h_moe", "nemotron_h_omni"})
#: the first Ollama whose default is 1 (ollama/ollama#11330); an older one picked 4 or 1 by free memory
DEFAULT_ONE_SINCE = (0, 9, 7)
_ASK_TIMEOUT = 2.0  # seconds for systemctl or launchctl to answer


@dataclass(frozen=True)
class ServerParallel:
    """``value``: requests of the model the server runs at once (None: unknown); ``how``: how that is known, or why
    not, in a few words for a person; ``fixed``: the model's kind fixes it, whatever the variable says."""

    value: int | None
    how: str
    fixed: bool = False
    #: the server that runs them: "Ollama", or "llama-server" (its ``total_slots``, providers/openai.py)
    server: str = "Ollama"


def read_value(text: str | None) -> int:
    """The variable's value as Ollama reads it (envconfig ``Uint``, then ``max(…, 1)``): unset, 0 or no number is 1."""
    try:
        return max(int((text or "").strip()), 1)
    except ValueError:
        return 1


def version_tuple(version: str | None) -> tuple[int, ...] | None:
    """``0.12.6`` → (0, 12, 6); None for no version, one that is not numbers, or 0.0.0."""
    parts = []
    for part in (version or "").split("-")[0].split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts) if any(parts) else None  # 0.0.0: a build from source, which says no release


def server_parallel(family: str, embedding: bool, version: str | None, host: str, port: int, *, answered: bool = True,
                    environment: Callable[[int], tuple[Mapping[str, str], str] | None] | None = None
                    ) -> ServerParallel:
    """What the server at ``host:port`` runs of a model of ``family`` at once (``embedding``: an embedding model;
    ``answered``: the server answered /api/show or /api/version); ``environment`` reads the environment of the
    server listening on a port of this machine (tests give theirs)."""
    if embedding:
        return ServerParallel(1, "Ollama runs an embedding model one request at a time", fixed=True)
    if family in ONE_AT_A_TIME:
        return ServerParallel(1, f"Ollama runs {family} models one request at a time, whatever {VARIABLE} says",
                              fixed=True)
    if not on_this_machine(host):
        return ServerParallel(None, f"its server is on {host}: {VARIABLE} is read only on this machine, and "
                                    "Ollama's API does not say it")
    found = (environment or server_environment)(port)
    if found is None:
        return ServerParallel(None, f"the environment of the server on port {port} could not be read (another "
                                    "user's process, a container), and Ollama's API does not say it" if answered
                              else f"no Ollama answered on port {port} to be asked")
    env, where = found
    if VARIABLE in env:
        return ServerParallel(read_value(env[VARIABLE]), f"{VARIABLE}={env[VARIABLE].strip()} in {where}")
    release = version_tuple(version)
    if release is not None and release < DEFAULT_ONE_SINCE:
        return ServerParallel(None, f"{VARIABLE} is not set in {where}, and Ollama {version} picks 4 or 1 by free "
                                    "memory")
    return ServerParallel(1, f"{VARIABLE} is not set in {where}: Ollama's default, 1")


def server_environment(port: int) -> tuple[dict[str, str], str] | None:
    """The environment of the server listening on ``port`` on this machine and where it was read, or None."""
    pid = _listener(port)
    if pid is not None:
        import psutil

        with contextlib.suppress(psutil.Error, OSError):
            return dict(psutil.Process(pid).environ()), f"the environment of its server (pid {pid})"
    if (unit := _systemd_unit(port)) is not None:
        return unit
    return _launchd() if sys.platform == "darwin" else None


def _listener(port: int) -> int | None:
    """The process of this user's that listens on TCP ``port`` (None: none, or another user's)."""
    import psutil

    def listens(conn: Any) -> bool:
        return bool(conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port)

    try:
        return next((c.pid for c in psutil.net_connections(kind="tcp") if listens(c) and c.pid), None)
    except (psutil.Error, OSError):  # macOS lists other processes' sockets to root only: look at Ollama's own
        pass
    for process in psutil.process_iter(["name"]):
        if "ollama" in (process.info.get("name") or "").lower():
            with contextlib.suppress(psutil.Error, OSError):
                if any(listens(c) for c in process.net_connections(kind="tcp")):
                    return int(process.pid)
    return None


def _systemd_unit(port: int) -> tuple[dict[str, str], str] | None:
    """``ollama.service``'s environment, when the unit runs and listens on ``port`` (its OLLAMA_HOST's, else
    11434): readable by any user, where the process of the ``ollama`` user is not."""
    if shutil.which("systemctl") is None:
        return None
    said = _run(["systemctl", "show", "ollama.service", "--property=ActiveState,Environment"])
    if said is None:
        return None
    fields = dict(line.partition("=")[::2] for line in said.splitlines() if "=" in line)
    if fields.get("ActiveState") != "active":
        return None
    try:
        words = shlex.split(fields.get("Environment", ""))
    except ValueError:
        return None
    env = dict(word.partition("=")[::2] for word in words if "=" in word)
    host = env.get("OLLAMA_HOST", "")
    listens = host.rpartition(":")[2] if ":" in host.split("//")[-1] else "11434"
    return (env, "the systemd unit ollama.service") if listens == str(port) else None


def _launchd() -> tuple[dict[str, str], str] | None:
    """The variable as ``launchctl setenv`` left it for the Mac app (Ollama's FAQ); unset reads as ''."""
    said = _run(["launchctl", "getenv", VARIABLE])
    if said is None:
        return None
    value = said.strip()
    return ({VARIABLE: value} if value else {}), "launchctl's environment (the Ollama app's)"


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_ASK_TIMEOUT, check=False,
                              env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def against_slots(name: str, max_concurrent: int, server: ServerParallel) -> str:
    """What a person should know of ``server``'s parallel requests beside ``models.NAME.max_concurrent`` ("" when
    nothing): more slots than the server runs (the rest wait inside Ollama, where their wait counts against the
    first-token timeout and looks like a sick model), or slots past one whose backing is unknown."""
    if server.value is not None and max_concurrent > server.value:
        more = ("" if server.fixed else f", or start Ollama with {VARIABLE}={max_concurrent}"
                if server.server == "Ollama" else f", or start {server.server} with --parallel {max_concurrent}")
        return (f"max_concurrent {max_concurrent}, but its {server.server} runs {server.value} of its requests at "
                f"once ({server.how}): requests past {server.value} wait inside {server.server}, and that wait counts "
                f"against the first-token timeout — set models.{name}.max_concurrent: {server.value}{more}")
    if server.value is None and max_concurrent > 1:
        return (f"max_concurrent {max_concurrent}: whether its Ollama runs {max_concurrent} at once is unknown "
                f"({server.how}) — it runs {VARIABLE} (default 1): start it with {VARIABLE}={max_concurrent}, or "
                f"set models.{name}.max_concurrent: 1")
    return ""
