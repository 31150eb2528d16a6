"""Probe findings belong to the backend they were measured on (helper-46's hunt). Every config on a machine without
``log.path`` shares the default log file; a ``qwen`` of one config (Ollama on a GPU box) taught its "tools:
text-only" to another config's ``qwen`` (a llama-server here), whose tool requests then all fell back."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import make_config

from modelyard.ledger import connect
from modelyard.ledger.probes import backend_of, teach
from modelyard.ops import probe_store
from modelyard.ops.probe import Check, ProbeResult
from modelyard.providers import build_provider


def _config(endpoint: str, provider: str = "ollama"):
    return make_config({"qwen": {"provider": provider, "endpoint": endpoint, "model": "qwen3:8b"}},
                       {"a": {"primary": "qwen"}})


def _probed(path: Path, result: ProbeResult) -> None:
    result.add(Check("tools", "text-only", False, None, "answers tool requests with plain-text JSON"))
    conn = connect(path)
    try:
        probe_store.save(conn, [result])
    finally:
        conn.close()


def test_a_finding_is_taught_only_to_the_backend_it_was_measured_on(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    gpu = _config("http://gpu-box:11434")
    here = _config("http://127.0.0.1:8080", provider="openai")
    measured = build_provider("qwen", gpu.models["qwen"])
    _probed(path, ProbeResult("qwen", "ollama", backend=backend_of(measured)))

    other = build_provider("qwen", here.models["qwen"])
    teach({"qwen": other}, path)
    assert other.profile.tool_calls is not False, "another backend's finding was taught"
    same = build_provider("qwen", gpu.models["qwen"])
    teach({"qwen": same}, path)
    assert same.profile.tool_calls is False

    conn = connect(path)
    try:
        stored = probe_store.latest(conn)
    finally:
        conn.close()
    assert probe_store.measured_here(stored, gpu) == stored
    assert probe_store.measured_here(stored, here) == {}  # `check` calls it never probed, not text-only


def test_a_finding_from_before_backends_were_kept_still_applies(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    _probed(path, ProbeResult("qwen", "ollama"))  # what an older modelyard wrote: no backend
    conn = connect(path)
    try:
        (detail,) = conn.execute("SELECT detail FROM probes").fetchone()
    finally:
        conn.close()
    assert json.loads(detail)["backend"] == ""
    provider = build_provider("qwen", _config("http://127.0.0.1:8080", provider="openai").models["qwen"])
    teach({"qwen": provider}, path)
    assert provider.profile.tool_calls is False
