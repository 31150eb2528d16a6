"""Embeddings against a real OpenAI-compatible server: llama-cpp-python's own ``llama_cpp.server`` started with
``--embedding true`` on the embedded chat model (Qwen2.5-Coder-0.5B).

What it sends, seen here: ``{"object": "list", "data": [{"object": "embedding", "embedding": [[…896 floats…], […],
…], "index": 0}], …}`` — a vector per *token*, since a chat GGUF has no pooling (its server has no option for one).
No text is embedded so: the attempt is the model's refusal (``bad_request``, with why), the chain moves on to a model
that embeds, and the served model is not cooled down — it still serves chat.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.ledger import connect
from tests.fakes import OllamaServer
from tests.fakes.embeddings import fake_vector
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config
from tests.integration.test_real_model import free_port


@pytest.fixture(scope="module")
def served(default_model: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "512", "--model_alias", "qwen-coder", "--embedding", "true"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline and proc.poll() is None, "llama_cpp.server did not start"
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.model
def test_a_real_servers_per_token_vectors_are_refused_and_the_chain_moves_on(tmp_path, served):
    with OllamaServer(embedding_dims=8) as ol:
        config = make_config(
            {"served": {"provider": "openai", "endpoint": served, "model": "qwen-coder"},
             "nomic": {"provider": "ollama", "endpoint": ol.url, "model": "nomic-embed-text"}},
            {"rag": {"primary": "served", "fallbacks": ["nomic"]}},
            defaults={"timeouts": {"first_token": 60, "idle": 60, "total": 120}, "retries": {"attempts": 0},
                      "cooldown": {"failures": 1, "seconds": 30}},
            log={"path": str(tmp_path / "log.db")})
        with GatewayServer(config) as gw:
            for text in ("why is the sky blue?", "grass"):
                r = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": text,
                                                                "encoding_format": "float"}, timeout=120)
                assert r.status_code == 200, r.text
                assert r.json()["model"] == "nomic" and r.json()["data"][0]["embedding"] == pytest.approx(
                    fake_vector(text, 8))
            # one health failure would have cooled it (cooldown.failures: 1): a refusal is not one
            assert {s.name: s.state for s in gw.router.model_states()}["served"] == "available"
            conn = connect(gw.runtime.log_path, readonly=True)
            try:
                rows = conn.execute("SELECT outcome, reason, detail FROM attempts WHERE model = 'served'").fetchall()
            finally:
                conn.close()
    assert len(rows) == 2 and all(r[0] == "fallback" and r[1] == "bad_request" for r in rows)
    assert "one per token" in rows[0][2]
