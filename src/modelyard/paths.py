"""Where modelyard keeps things: config, routing log, model cache.

Each can be moved with an environment variable (handy for tests and for services that run
under another user): MODELYARD_CONFIG, MODELYARD_DATA_DIR, MODELYARD_CACHE_DIR.
"""

from __future__ import annotations

import os
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
