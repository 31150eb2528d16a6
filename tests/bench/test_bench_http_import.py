"""``modelyard bench`` builds its providers itself (no runtime): the HTTP client library's import (aiohttp, imported on
first use: providers/http.py) ran inside the first run's timed request — 0.4–0.8 s of "TTFT" at load ~7 against a
server that answered in milliseconds (an Ollama model's warm-up request took it out of the runs; an OpenAI-compatible or
Anthropic model has none). Now it is imported before the runs begin. Checked in a fresh interpreter: in this one
another test may have imported it already. Failed on the old code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio, sys
from modelyard.bench.runner import BenchRunner
from modelyard.bench.suite import parse_suite, starter_text
from tests.helpers import make_config

config = make_config({"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9", "model": "m"}},
                     {"chat": {"primary": "m"}})
runner = BenchRunner(config, parse_suite(starter_text(), "starter.yaml"), models=["m"], agents=["chat"], k=1,
                     providers={})
seen = []

async def first_run(model, tools):  # where the first timed request would go out
    seen.append("aiohttp" in sys.modules)

runner._run_model = first_run
asyncio.run(runner.run())
print(seen)
"""


def test_the_http_client_is_imported_before_the_first_timed_run() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True]", done.stdout + done.stderr
