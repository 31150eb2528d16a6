"""``init --detect`` writes each local server's own parallelism as ``max_concurrent``.

It wrote ``max_concurrent: 1`` for every model: under an Ollama started with OLLAMA_NUM_PARALLEL=2 or a llama-server
with ``--parallel 4`` the other slots sat idle, and a user who raised it past the server's setting had requests wait
inside the server, unseen. Ollama's is read as `plan` and `models` read it (ollama_parallel.py: the server's
environment, here a fake Ollama started in a process of its own with the variable set); llama-server's is
``total_slots`` in its ``GET /props`` (ggml-org/llama.cpp tools/server/README.md: "the total number of slots for
process requests (defined by `--parallel` option)"). Every client opened to ask is closed: a connection of this
process's still open to the server after `init` fails these tests (counted, not left to the garbage collector's
warnings, which in a whole run would also blame this test for other tests' garbage).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psutil
from tests.fakes.llama_server import LlamaServer
from tests.fakes.openai_compat import OpenAIServer
from tests.ops.test_ollama_parallel import ollama_with_two  # noqa: F401 (a fixture)
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config.loader import load_config


def _left_open(url: str) -> list[object]:
    """This process's connections to the server at ``url`` still open (a client never closed)."""
    port = urlsplit(url).port
    return [c for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port
            and c.status in (psutil.CONN_ESTABLISHED, psutil.CONN_CLOSE_WAIT)]


def _init(tmp_path: Path, url: str) -> tuple[Path, str]:
    target = tmp_path / "config.yaml"
    result = CliRunner().invoke(app, ["init", str(target), "--endpoint", url], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert not _left_open(url), _left_open(url)
    return target, result.output


def test_ollamas_num_parallel_is_written_as_max_concurrent(ollama_with_two: str, tmp_path: Path) -> None:  # noqa: F811
    target, output = _init(tmp_path, ollama_with_two)
    config = load_config(target)
    assert config.models["qwen2.5-coder-7b"].max_concurrent == 2
    said = "; max_concurrent 2: OLLAMA_NUM_PARALLEL=2 in the environment of its server (pid "
    assert said in target.read_text() and said in output, output


def test_llama_servers_total_slots_are_written_as_max_concurrent(tmp_path: Path) -> None:
    with LlamaServer(["qwen2.5-7b-instruct"], total_slots=4) as llama:
        target, output = _init(tmp_path, llama.url)
        assert len(llama.requests_to("/props")) == 1
    assert load_config(target).models["qwen2.5-7b-instruct"].max_concurrent == 4
    said = "; max_concurrent 4: total_slots 4 in llama-server's /props, its --parallel"
    assert said in target.read_text() and said in output, output


def test_a_server_that_does_not_say_keeps_one_slot_and_says_so(tmp_path: Path) -> None:
    """vLLM or LM Studio (no /props, a 404) keeps max_concurrent 1, and the file now says why and what to set."""
    with OpenAIServer(["mistral-small"]) as server:
        target, _ = _init(tmp_path, server.url)
    assert load_config(target).models["mistral-small"].max_concurrent == 1
    assert "max_concurrent 1: how many of its requests its server runs at once is unknown (OpenAI-compatible server " \
        "does not say) — set models.mistral-small.max_concurrent to the server's parallel setting" in target.read_text()
