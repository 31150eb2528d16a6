"""Run ``modelyard serve`` at login/boot: a systemd user unit (Linux) or a launchd agent (macOS).

Both warm the local models first (``modelyard warmup``) so the first request of the day does
not pay the cold start, then start the gateway, and restart it if it dies. It is the one service
a machine needs: serve runs the Telegram bot when the config has a ``telegram:`` section, and
``ask``/``chat`` borrow its limits (:mod:`modelyard.gateway.hosting`). No secret is ever
written into the service file: API keys go in an environment file the service reads
(``env`` beside the user config — ``$XDG_CONFIG_HOME/modelyard/env``, by default
``~/.config/modelyard/env`` — ``KEY=value`` lines), which the user creates with mode 600.

A service starts with almost no environment, so the variables that decide which config, log,
model cache and shared state modelyard uses (:data:`KEPT`) are written into the service file as
they are when it is installed: otherwise the service would quietly use another config and
another log than the shell that installed it.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from modelyard.config import Config
from modelyard.paths import key_only_in_service_env, service_env_file

UNIT_NAME = "modelyard.service"
LAUNCHD_LABEL = "dev.modelyard.serve"


@dataclass
class ServiceFile:
    platform: str
    path: Path
    content: str
    enable: list[str]
    #: what makes a service already running take a rewritten file: ``enable --now`` of an active unit starts nothing,
    #: and ``launchctl load`` of a loaded agent keeps the old one (systemd/systemd#31541)
    reload: list[str] = field(default_factory=list)


def current_platform() -> str:
    return "macos" if sys.platform == "darwin" else "linux"


def modelyard_command() -> list[str]:
    """The absolute command that runs this modelyard (services have no useful PATH)."""
    script = Path(sys.executable).with_name("modelyard")
    if script.is_file():
        return [str(script)]
    found = shutil.which("modelyard")
    return [found] if found else [sys.executable, "-m", "modelyard"]


#: variables that move modelyard's config, log, cache or shared state (paths among them made absolute)
KEPT = ("MODELYARD_CONFIG", "MODELYARD_DATA_DIR", "MODELYARD_CACHE_DIR", "MODELYARD_STATE",
        "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")
_URLS = ("MODELYARD_STATE",)


def env_file() -> Path:
    """Where the service reads API keys from: beside the user config (so ``XDG_CONFIG_HOME`` moves it too)."""
    return service_env_file()


def shell_only_keys(config: Config, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The credential variables ``config`` names (a model's key, the bot's token, the gateway's keys) that are set in
    this shell but not in :func:`env_file`, each with what goes without it there. A service does not read the shell
    that installed it: the key worked for `ask` and the service's serve skipped its model as `missing_credentials`
    (mumbledj#75, dcramer/ash#4: "Service processes don't inherit shell environment variables")."""
    environ = os.environ if environ is None else environ
    wanted: dict[str, list[str]] = {}
    for name, model in config.models.items():
        if model.api_key_env:
            wanted.setdefault(model.api_key_env, []).append(f"model {name}")
    if "telegram" in config.model_fields_set:
        wanted.setdefault(config.telegram.token_env, []).append("the Telegram bot")
    if config.gateway.api_keys_env:
        wanted.setdefault(config.gateway.api_keys_env, []).append("the gateway's keys")
    return {key: ", ".join(users) for key, users in wanted.items()
            if environ.get(key) and key_only_in_service_env(key) is None}


def _has_password(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.password) or any(k == "password" for k, _ in parse_qsl(parts.query))
    except ValueError:
        return True  # cannot tell: keep it out of the service file


def withheld(environ: Mapping[str, str] | None = None) -> list[str]:
    """The :data:`KEPT` URL variables set now that carry a password (``redis://:secret@host``, as the README's
    several-hosts example sets ``MODELYARD_STATE``): never written into the service file — they belong in
    :func:`env_file`, like API keys."""
    environ = os.environ if environ is None else environ
    return [name for name in _URLS if environ.get(name) and _has_password(environ[name])]


def kept_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The :data:`KEPT` variables set now, as the service must see them (paths absolute: a service's
    working directory is not the shell's); a URL with a password is left out (:func:`withheld`)."""
    environ = os.environ if environ is None else environ
    secret = set(withheld(environ))
    out = {}
    for name in KEPT:
        value = environ.get(name)
        if value and name not in secret:
            out[name] = value if name in _URLS else str(Path(value).expanduser().resolve())
    return out


def _systemd_assignment(name: str, value: str) -> str:
    """``Environment="NAME=value"``, quoted for systemd (``%`` is a specifier there, so doubled)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'Environment="{name}={escaped}"'


def render_systemd(command: list[str], config: Path | None, env_path: Path,
                   environment: Mapping[str, str] | None = None) -> str:
    cfg = ["--config", str(config)] if config else []
    pre = shlex.join([*command, "warmup", *cfg])
    start = shlex.join([*command, "serve", *cfg])
    return "\n".join([
        "[Unit]",
        "Description=modelyard: agent router, OpenAI-compatible gateway and Telegram bot (when configured)",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        *(_systemd_assignment(k, v) for k, v in (environment or {}).items()),
        f"EnvironmentFile=-{env_path}",
        "# warm up local models first; a failed warm-up ('-') must not keep the gateway down",
        f"ExecStartPre=-{pre}",
        f"ExecStart={start}",
        "TimeoutStartSec=600",
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])


def render_launchd(command: list[str], config: Path | None, env_path: Path, log_dir: Path,
                   environment: Mapping[str, str] | None = None) -> str:
    cfg = ["--config", str(config)] if config else []
    # launchd has no pre-start hook and no env files: a tiny sh script does both, then execs serve
    script = (f"[ -f {shlex.quote(str(env_path))} ] && set -a && . {shlex.quote(str(env_path))}; set +a; "
              f"{shlex.join([*command, 'warmup', *cfg])}; exec {shlex.join([*command, 'serve', *cfg])}")
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": ["/bin/sh", "-c", script],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "StandardOutPath": str(log_dir / "modelyard.log"),
        "StandardErrorPath": str(log_dir / "modelyard.err.log"),
        "EnvironmentVariables": {"PATH": "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin", **(environment or {})},
    }
    return plistlib.dumps(plist, sort_keys=False).decode()


def service_file(platform: str, *, config: Path | None = None, directory: Path | None = None,
                 command: list[str] | None = None, environ: Mapping[str, str] | None = None) -> ServiceFile:
    """What to write where for ``platform`` ("linux" or "macos"); ``environ``: the environment whose
    :data:`KEPT` variables the service keeps (default: this process's)."""
    command = command or modelyard_command()
    config = config.expanduser().resolve() if config else None
    environment = kept_environment(environ)
    if platform == "linux":
        # systemd's user units live under XDG_CONFIG_HOME too, when it is set
        units = Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser() / "systemd" / "user"
        target = (directory or units) / UNIT_NAME
        return ServiceFile(platform, target, render_systemd(command, config, env_file(), environment), [
            "systemctl --user daemon-reload",
            f"systemctl --user enable --now {UNIT_NAME}",
            "loginctl enable-linger $USER   # start at boot, not only at login",
        ], ["systemctl --user daemon-reload", f"systemctl --user restart {UNIT_NAME}"])
    if platform == "macos":
        target = (directory or Path("~/Library/LaunchAgents").expanduser()) / f"{LAUNCHD_LABEL}.plist"
        logs = Path("~/Library/Logs").expanduser()
        return ServiceFile(platform, target, render_launchd(command, config, env_file(), logs, environment), [
            f"launchctl load -w {target}",
        ], [f"launchctl unload {target}", f"launchctl load -w {target}"])
    raise ValueError(f"unknown platform {platform!r}: use linux or macos")


def install(service: ServiceFile) -> Path:
    service.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = service.path.with_suffix(service.path.suffix + ".tmp")
    tmp.write_text(service.content)
    tmp.replace(service.path)
    return service.path
