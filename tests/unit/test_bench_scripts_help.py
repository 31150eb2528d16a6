"""Every benchmark script answers ``--help`` and stops: benchmarks/README.md tells people to run them, and
``bench_router.py --help`` ignored the flag and started its minutes-long run (on a machine others measure on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_the_benchmarks_are_found() -> None:
    assert len(SCRIPTS) >= 10 and ROOT / "benchmarks" / "bench_router.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_usage_and_runs_nothing(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.lstrip().startswith("usage:"), out.stdout[:500]
