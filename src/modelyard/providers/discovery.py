"""What a model server says it serves, in one shape for every backend (``init --detect``).

Each provider module reads its own server's listing (Ollama's ``/api/tags`` + ``/api/show``, an
OpenAI-compatible ``/v1/models``) into :class:`ServedModel`; ``ops/starter.py`` turns a list of
them into a config without knowing which backend said what.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from modelyard.providers.ollama_parallel import ServerParallel


class ServerCapability(StrEnum):
    """The capability words servers report (Ollama's ``/api/show``)."""

    COMPLETION = "completion"
    TOOLS = "tools"
    THINKING = "thinking"
    VISION = "vision"
    EMBEDDING = "embedding"
    #: answers constrained to a JSON schema (a server that constrains any model says so for each)
    JSON = "json"


@dataclass(frozen=True)
class ServedModel:
    """One model on one server. ``None``/empty: the server did not say."""

    model_id: str
    endpoint: str
    #: the server's own name for itself, for people ("Ollama 0.12.6", "llama.cpp server")
    server: str = ""
    size_bytes: int | None = None
    #: billions of parameters
    parameters_b: float | None = None
    #: tokens the model was trained for
    trained_context: int | None = None
    #: tokens the server allocates per sequence, when it is fixed there (vLLM's max_model_len)
    served_context: int | None = None
    family: str = ""
    capabilities: frozenset[str] = field(default_factory=frozenset)
    #: served from elsewhere through this server (an Ollama cloud model: ``remote_host`` in the listing)
    remote: bool = False
    #: how many of its requests the server runs at once, and how that is known (Ollama's OLLAMA_NUM_PARALLEL,
    #: llama-server's ``total_slots``); None: the server was not asked, or has no way to say
    parallel: ServerParallel | None = None

    @property
    def embedding_only(self) -> bool:
        """An embedding model cannot answer a chat: servers list them beside chat models."""
        caps = self.capabilities
        if {ServerCapability.EMBEDDING, ServerCapability.COMPLETION} & caps:  # the server says
            return ServerCapability.COMPLETION not in caps
        return bool(re.search(r"embed|bge-|e5-|minilm|rerank", self.model_id, re.IGNORECASE)) or \
            self.family in {"bert", "nomic-bert", "xlm-roberta"}


def mapping_of(value: Any) -> dict[str, Any]:
    """``value`` when a server sent an object there, else empty (listings vary between versions)."""
    return value if isinstance(value, dict) else {}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}


def parameters_from_label(label: object) -> float | None:
    """Billions of parameters from Ollama's ``parameter_size`` ("7.6B", "135M", "1T")."""
    match = _SIZE.match(str(label or ""))
    return float(match.group(1)) * _SCALE[match.group(2).upper()] if match else None


def normalised_endpoint(text: str, default_port: int) -> str:
    """``OLLAMA_HOST``-style text ("0.0.0.0", "host:port", "http://h:p") as a URL to connect to:
    a server listening on every interface is reached on loopback."""
    text = text.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    host = parts.hostname or "127.0.0.1"
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or 'http'}://{host}:{port}{parts.path}"
