"""``ask``, ``chat``, ``telegram`` and ``route`` open their runtime with :func:`modelyard.runtime.open_runtime`; serve
imports aiohttp at start (gateway/app.py, ``load_http_client``), these did not: its import (~0.5 s at load ~7) ran on
the first request, inside its first-token bound. ``modelyard ask`` against a fake Ollama that answers in milliseconds
said "TTFT 584ms" (1–2 ms of it the server's), and under the 1 s bound of tests/integration/test_cli.py's config
the healthy model failed over (first_token_timeout) in 2 of 3 loaded runs of test_cli_newcomer9."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from modelyard.runtime import open_runtime
runtime = open_runtime(sys.argv[1])
print("aiohttp" in sys.modules)
runtime.log.close()
"""


@pytest.mark.parametrize(("model", "imported"), [
    ("{provider: ollama, model: 'qwen3.5:latest', endpoint: 'http://127.0.0.1:9'}", "True"),
    # guard (true before too): the embedded model sends nothing over HTTP — a first `ask` on it is not made slower
    ("{provider: llamacpp, path: /nonexistent/model.gguf}", "False"),
], ids=["ollama", "embedded"])
def test_a_runtime_with_a_model_behind_http_has_its_http_client_loaded_before_any_request(
        tmp_path: Path, model: str, imported: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  m: {model}\nagents:\n  a: {{primary: m}}\nlog: {{path: '{tmp_path / 'log.db'}'}}\n")
    done = subprocess.run([sys.executable, "-c", PROBE, str(config)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == imported, done.stderr
