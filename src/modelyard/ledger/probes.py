"""Probe findings in the routing log: the latest run of each model, and what it says the model can do.

``probe`` runs in its own process; every later ``ask``, ``chat``, ``serve`` … starts from what it
found, so a model measured to think gets its thinking switch without a config edit.

A finding is kept with the backend it was measured on (:func:`backend_of`: provider, endpoint, model id) and taught
only to a model on that backend: every config on a machine without ``log.path`` shares the default log file, and a
``qwen`` in one config (Ollama on the GPU box) is not the ``qwen`` of another (a llama-server here) — one's
"no tools" turned the other's tool requests into fallbacks. Findings from before carry no backend and still apply.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.config.schema import redact_url
from modelyard.ledger.db import connect_readonly

if TYPE_CHECKING:
    from modelyard.config import Config
    from modelyard.providers import Provider

_LATEST = ("SELECT p.* FROM probes p JOIN (SELECT model, MAX(ts) AS ts FROM probes GROUP BY model) last "
           "ON p.model = last.model AND p.ts = last.ts ORDER BY p.model")
#: probe checks that are capabilities, and the verdicts that settle them (others — a failed
#: call, a skipped check — say nothing about the model)
_CAPABILITIES = ("thinking", "json", "tools")
_VERDICTS = {"pass": True, "no": False, "text-only": False}


@dataclass(frozen=True)
class ProbeRow:
    ts: float
    model: str
    check: str
    ok: bool | None
    value: float | None
    status: str
    detail: str
    provider: str
    #: the check failed on an error (unreachable, timeout), not on what the model can do
    error: bool = False
    #: what was measured (:func:`backend_of`); "" in rows written before it was kept
    backend: str = ""


def latest(conn: sqlite3.Connection) -> Iterator[ProbeRow]:
    """Every check of each model's most recent probe run (they share that run's ``ts``)."""
    for row in conn.execute(_LATEST):
        try:
            extra = json.loads(row["detail"] or "{}")
        except ValueError:
            extra = {"status": "unknown", "detail": row["detail"] or ""}
        yield ProbeRow(row["ts"], row["model"], row["check_name"], None if row["ok"] is None else bool(row["ok"]),
                       row["value"], extra.get("status", "unknown"), extra.get("detail", ""), extra.get("provider", ""),
                       bool(extra.get("error", False)), str(extra.get("backend") or ""))


def backend_of(provider: Provider) -> str:
    """What a probe measures: the provider kind, where it is served and the model id (not the config's name). Kept on
    every attempt row too (``attempts.backend``): an endpoint's password, if it has one, is never in it."""
    config = provider.config
    where = redact_url(str(getattr(provider, "endpoint", "") or getattr(config, "path", "") or ""))
    return f"{config.provider} {where} {provider.model_id}".replace("  ", " ")


def backends_of(config: Config) -> dict[str, str]:
    """Each configured model's :func:`backend_of`: what the routing log's attempts of that model on this config's
    server say (``attempts.backend``), to tell them from another config's model of the same name."""
    from modelyard.providers import build_provider

    return {name: backend_of(build_provider(name, model)) for name, model in config.models.items()}


def verdicts(statuses: Mapping[str, str]) -> dict[str, bool]:
    """check → status of one probe run, as capability → supported (only the settled ones)."""
    return {check: _VERDICTS[status] for check, status in statuses.items()
            if check in _CAPABILITIES and status in _VERDICTS}


def capabilities_found(path: str | Path) -> dict[str, tuple[str, dict[str, bool]]]:
    """model → (the backend measured, "" if not kept; {capability: supported}) from the latest probes in the log at
    ``path`` ({} if none)."""
    path = Path(path)
    if not path.is_file():
        return {}
    statuses: dict[str, dict[str, str]] = {}
    backends: dict[str, str] = {}
    try:
        conn = connect_readonly(path, timeout=2.0)
        conn.row_factory = sqlite3.Row
        try:
            for row in latest(conn):
                statuses.setdefault(row.model, {})[row.check] = row.status
                backends[row.model] = row.backend
        finally:
            conn.close()
    except sqlite3.Error:  # no probes table yet, a locked or foreign file: nothing learned
        return {}
    return {model: (backends.get(model, ""), verdicts(checks)) for model, checks in statuses.items()}


def teach(providers: dict[str, Provider], path: str | Path) -> None:
    """Give each provider what the latest probe of its model found — on the backend it serves now."""
    for model, (backend, capabilities) in capabilities_found(path).items():
        if model in providers and (not backend or backend == backend_of(providers[model])):
            providers[model].learn(capabilities)
