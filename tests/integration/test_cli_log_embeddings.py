"""`modelyard log` tells an embeddings request from an answer: its row's ``kind`` (step ``m013_request_kind``) in
``--json``, and ``(embeddings)`` beside its outcome in the table — it has no output tokens, no tokens/s and no text,
and read as an answer it looked like an empty one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from modelyard.ledger.writer import LogWriter
from modelyard.outcomes import AttemptOutcome, RequestKind, RequestOutcome
from modelyard.router.records import Attempt, RequestRecord


def test_log_shows_which_requests_were_embeddings(tmp_path: Path) -> None:
    log = tmp_path / "log.sqlite3"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"log": {"path": str(log)}, "models": {"nomic": {"provider": "ollama"}},
                                      "agents": {"rag": {"primary": "nomic"}}}))
    now = time.time()
    writer = LogWriter(log, local_models=["nomic"])
    writer.submit(RequestRecord("aaa111bbb222", "rag", ts=now - 20, outcome=RequestOutcome.OK, model="nomic",
                                total_ms=40, tokens_in=12, prompt="a question",
                                attempts=[Attempt("nomic", "ollama", AttemptOutcome.OK, started_at=now - 20)]))
    writer.submit(RequestRecord("ccc333ddd444", "rag", ts=now - 10, outcome=RequestOutcome.OK, model="nomic",
                                total_ms=30, tokens_in=9, prompt="a document", kind=RequestKind.EMBEDDINGS,
                                attempts=[Attempt("nomic", "ollama", AttemptOutcome.OK, started_at=now - 10)]))
    writer.close()
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "COLUMNS": "120"}

    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "modelyard", "log", *args], capture_output=True, text=True,
                             timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout

    rows = {r["id"]: r for r in json.loads(run("--json"))}
    assert rows["ccc333ddd444"]["kind"] == "embeddings" and rows["aaa111bbb222"]["kind"] is None
    lines = run().splitlines()
    assert any("ccc333dd" in line and "ok (embeddings)" in line for line in lines)
    assert not any("aaa111bb" in line and "embeddings" in line for line in lines)
