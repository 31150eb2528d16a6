"""A file that is no config — the routing log, the model, an archive — named with `--config` is said as what it is.

Each is found beside a config (the data directory holds routing.sqlite3, the cache the GGUF) and a path completed by
the shell lands on it; any NUL byte in the first 200 was taken for UTF-16 text without its byte-order mark, and the
fix said was to re-save the file as UTF-8 in Notepad. The first bytes follow each format's specification: SQLite's
header string "SQLite format 3\\0" (sqlite.org/fileformat.html, section 1.3), GGUF's magic (ggml-org/ggml
docs/gguf.md), gzip's ID1 ID2 0x1f 0x8b (RFC 1952, section 2.3.1).
"""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "default.yaml"


def _said(path: Path) -> tuple[int, str]:
    out = CliRunner().invoke(app, ["--config", str(path), "models", "--no-reach"], env={"COLUMNS": "400"})
    return out.exit_code, " ".join(out.output.split())


def test_the_routing_log_named_as_the_config(tmp_path: Path) -> None:
    log = tmp_path / "routing.sqlite3"
    with sqlite3.connect(log) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    code, said = _said(log)
    assert code == 2
    assert f"error: {log}: not a YAML file but a SQLite database (the routing log is one: log.path): name the YAML " \
           "file (a config: `modelyard init` writes one)" in said, said


def test_the_model_named_as_the_config(tmp_path: Path, default_model: Path) -> None:
    head = tmp_path / "model.gguf"
    with default_model.open("rb") as f:
        head.write_bytes(f.read(4096))  # the real file's first bytes: its header
    code, said = _said(head)
    assert code == 2 and "not a YAML file but a GGUF model file" in said and "UTF-16" not in said, said


def test_a_compressed_config(tmp_path: Path) -> None:
    packed = tmp_path / "config.yaml.gz"
    packed.write_bytes(gzip.compress(EXAMPLE.read_bytes()))
    code, said = _said(packed)
    assert code == 2 and "not a YAML file but gzip-compressed data (uncompress it first)" in said, said


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_its_mark_is_still_said_as_that(tmp_path: Path, codec: str) -> None:
    """A guard: UTF-16 text without its byte-order mark keeps its own message."""
    config = tmp_path / "config.yaml"
    config.write_bytes(EXAMPLE.read_text().encode(codec))
    code, said = _said(config)
    assert code == 2 and "UTF-16 text without its byte-order mark: save the file as UTF-8" in said, said
