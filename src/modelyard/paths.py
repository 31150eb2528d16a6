"""Where modelyard keeps things: config, routing log, model cache.

Each can be moved with an environment variable (handy for tests and for services that run
under another user): MODELYARD_CONFIG, MODELYARD_DATA_DIR, MODELYARD_CACHE_DIR.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from pathlib import Path

import platformdirs

APP = "modelyard"
#: the embedded default model (ops/default_model.py assembles and verifies it)
DEFAULT_MODEL_FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def data_dir() -> Path:
    return Path(os.environ.get("MODELYARD_DATA_DIR") or platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    return Path(os.environ.get("MODELYARD_CACHE_DIR") or platformdirs.user_cache_dir(APP))


def default_model_path() -> Path:
    """Where the embedded default model lives: the llamacpp provider's GGUF when no ``path`` is set."""
    return cache_dir() / "models" / DEFAULT_MODEL_FILENAME


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.yaml"


def service_env_file() -> Path:
    """Where the service (``install-service``) reads API keys from: beside the user config."""
    return user_config_file().parent / "env"


@functools.lru_cache(maxsize=64)
def _named_in(path: str, name: str) -> bool:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return False
    return re.search(rf"^\s*(?:export\s+)?{re.escape(name)}\s*=\s*\S", text, re.MULTILINE) is not None


def key_only_in_service_env(name: str) -> Path | None:
    """The service's env file when it sets ``name`` (checked once per process: a missing key is asked about on
    every request). The service has the key and a shell does not: `ask` then said only 'not set'."""
    path = service_env_file()
    return path if _named_in(str(path), name) else None


def key_only_in_dotenv(name: str) -> Path | None:
    """A ``.env`` file that sets ``name`` — in the working directory or beside the user config — when the environment
    does not. LiteLLM, docker compose and many apps read ``.env`` by themselves, so a key put there looks set
    (granawkins/rawdog#30: "Turns out Litellm was reading a `.env` I had!"); modelyard reads none, and said only
    'not set'. Names are matched, values never read out."""
    for path in (Path.cwd() / ".env", user_config_file().parent / ".env"):
        if _named_in(str(path.absolute()), name):
            return path.absolute()
    return None


def dotenv_unread(dotenv: Path) -> str:
    """What to say of a variable found only in ``dotenv`` (:func:`key_only_in_dotenv`), and how to load it."""
    return f"it is in {dotenv}, and modelyard reads no .env file: `set -a; . {dotenv}; set +a` in the shell"


def default_log_path() -> Path:
    return data_dir() / "routing.sqlite3"


def example_file(name: str) -> Path:
    """A config shipped inside the package (``examples/NAME``)."""
    return Path(str(resources.files("modelyard") / "examples" / name))


def embedded_default_config() -> Path:
    return example_file("default.yaml")


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else $MODELYARD_CONFIG, else the user's config file, else the embedded default."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("MODELYARD_CONFIG")
    if env:
        return Path(env).expanduser()
    user = user_config_file()
    return user if user.exists() else embedded_default_config()


def hold_exclusive(lock_file: str) -> int | None:
    """Take an flock on ``lock_file`` without waiting: its descriptor, or None when another process holds it. The lock
    goes with the process however it ends (kill -9 too); closing the descriptor drops it. Used where exactly one
    process may do a job over one file (the log's forwarder, the Telegram poller)."""
    import fcntl

    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
