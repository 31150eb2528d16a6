"""The type hints are checked: mypy, with the pydantic plugin and the settings in pyproject.toml
(``[tool.mypy]``), over ``src/modelyard`` and ``benchmarks/`` (a benchmark that no longer matches the code
it measures fails here, not on the day someone runs it). Being a test, it runs in the README's test command and so
in CI: a hint that lies (an ``AsyncIterator`` that is ``aclose()``d, an Optional used as a value, a
wrong return type) fails the suite with mypy's own report.

mypy keeps its cache in ``.mypy_cache``: from cold about 12 s on 2 quiet cores (45 s at load 9), warm about 2 s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=280)


def test_mypy_finds_no_type_errors() -> None:
    result = mypy()
    assert result.returncode == 0, f"mypy found type errors:\n{result.stdout}{result.stderr}"
    assert "no issues found" in result.stdout


def test_the_settings_catch_what_they_are_meant_to(tmp_path: Path) -> None:
    """The check is not a formality: an unannotated function, an AsyncIterator closed as a generator and a
    pydantic model given a field it does not have are each an error under these settings."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text("\n".join([
        "from collections.abc import AsyncIterator",
        "from pydantic import BaseModel",
        "class Model(BaseModel):",
        "    context: int",
        "def untyped(x): return x",
        "async def gen() -> AsyncIterator[int]:",
        "    yield 1",
        "async def close() -> None:",
        "    await gen().aclose()",
        "Model(contxt=4096)",
        "",
    ]))
    result = mypy(str(snippet))
    assert result.returncode == 1, result.stdout + result.stderr
    for expected in ("[no-untyped-def]", 'has no attribute "aclose"', 'Unexpected keyword argument "contxt"'):
        assert expected in result.stdout, result.stdout
