"""``OLLAMA_HOST`` against a model without ``endpoint:``: said, since modelyard does not read the variable for it.

The ollama CLI and Ollama's Python client talk to the server ``OLLAMA_HOST`` names; ``init --detect`` asks it too and
writes the endpoint it found. A hand-written ``provider: ollama`` without ``endpoint:`` is asked at Ollama's default
address whatever the variable says — a service started without the shell's variables must reach the same server —
so ``ollama list`` answered while ``models`` said "nothing listening on 127.0.0.1:11434", the variable unnamed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from modelyard.config.schema import Config

VARIABLE = "OLLAMA_HOST"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _elsewhere(gateway_port: int) -> str | None:
    """The server OLLAMA_HOST names, as a URL, when it is not Ollama's default address on this machine — nor this
    config's own gateway, which speaks Ollama's API too (the variable set for Ollama's clients to use modelyard: an
    endpoint there would send modelyard's requests back to itself)."""
    from modelyard.providers.discovery import normalised_endpoint

    text = os.environ.get(VARIABLE, "").strip()
    if not text:
        return None
    there = normalised_endpoint(text, 11434)  # `0.0.0.0` (where the server listens) is this machine
    parts = urlsplit(there)
    try:
        port = parts.port
    except ValueError:
        return None
    return None if parts.hostname in _LOOPBACK and port in (None, 11434, gateway_port) else there


def notes(cfg: Config, path: Path, names: Iterable[str] | None = None) -> list[str]:
    """One line per Ollama model (of ``names``, else all) asked at the default address while OLLAMA_HOST names
    another server: what is asked, what the variable says, and the line to write."""
    there = _elsewhere(cfg.gateway.port)
    if there is None:
        return []
    from modelyard.providers.ollama import DEFAULT_ENDPOINT

    wanted = set(cfg.models) if names is None else set(names)
    return [f"  {name}: no endpoint, so modelyard asks Ollama's default address {DEFAULT_ENDPOINT}; {VARIABLE} says "
            f"{there} (the server the ollama CLI uses), which modelyard does not read for a model — to use it, write "
            f"endpoint: {there} under models.{name} in {path}"
            for name, m in cfg.models.items() if name in wanted and m.provider == "ollama" and m.endpoint is None]
