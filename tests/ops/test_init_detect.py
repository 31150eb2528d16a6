"""``modelyard init --detect``: a config built from what the machine's model servers serve.

Ollama is a fake that answers ``/api/tags`` and ``/api/show`` in the shapes Ollama's API reference
documents (``capabilities`` such as ``completion``, ``tools``, ``thinking``, ``vision``, ``embedding``);
the OpenAI-compatible side is the real ``llama_cpp.server`` running the embedded model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from tests.fakes import OllamaServer
from tests.integration.test_real_model import free_port
from tests.reliability.test_live_faults import start_llama_server
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config.loader import load_config
from modelyard.ops.starter import Found, chains, config_name, discover
from modelyard.providers.discovery import ServedModel, normalised_endpoint, parameters_from_label

#: what `ollama show` says of each model (documented fields; the rest of the answer left out)
SHOWN: dict[str, dict[str, Any]] = {
    "qwen2.5-coder:7b": {"capabilities": ["completion", "tools", "insert"],
                         "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768}},
    "llama3.2:3b": {"capabilities": ["completion", "tools"],
                    "model_info": {"general.architecture": "llama", "llama.context_length": 131072}},
    "qwen3:14b": {"capabilities": ["completion", "tools", "thinking"],
                  "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960}},
    "nomic-embed-text:latest": {"capabilities": ["embedding"],
                                "model_info": {"general.architecture": "nomic-bert",
                                               "nomic-bert.context_length": 2048}},
}
TAGS = [
    {"name": "qwen2.5-coder:7b", "size": 4_683_087_332, "details": {"family": "qwen2", "parameter_size": "7.6B"}},
    {"name": "llama3.2:3b", "size": 2_019_393_189, "details": {"family": "llama", "parameter_size": "3.2B"}},
    {"name": "qwen3:14b", "size": 9_276_198_565, "details": {"family": "qwen3", "parameter_size": "14.8B"}},
    {"name": "nomic-embed-text:latest", "size": 274_302_450,
     "details": {"family": "nomic-bert", "parameter_size": "137M"}},
    # an Ollama cloud model pulled into the list: a few hundred bytes here, run on ollama.com
    {"name": "gpt-oss:120b-cloud", "size": 384, "remote_model": "gpt-oss:120b", "remote_host": "https://ollama.com:443",
     "details": {"family": "gptoss", "parameter_size": "116.8B"}},
]


class ShowingOllama(OllamaServer):
    """The Ollama fake with ``/api/show`` answering for each listed model (404 for others, as Ollama does)."""

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/show", self._show, methods=["POST"]), *super().routes()]

    async def _show(self, request: Request) -> JSONResponse:
        name = (await request.json()).get("model")
        if name not in SHOWN:
            return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
        return JSONResponse({"modelfile": "# Modelfile", "parameters": "num_ctx 4096", "template": "{{ .Prompt }}",
                             "details": {}, "modified_at": "2025-05-01T10:00:00Z", **SHOWN[name]})


@pytest.fixture
def ollama():
    with ShowingOllama(TAGS) as server:
        yield server


def test_detected_config_from_ollama_loads_and_puts_each_model_where_it_fits(ollama, tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    result = CliRunner().invoke(app, ["init", str(target), "--endpoint", ollama.url])
    assert result.exit_code == 0, result.output
    config = load_config(target)  # the written file is a valid config
    models = config.models
    assert models["qwen2.5-coder-7b"].model == "qwen2.5-coder:7b"
    assert models["qwen2.5-coder-7b"].endpoint == ollama.url
    assert models["qwen2.5-coder-7b"].provider == "ollama"
    assert models["qwen2.5-coder-7b"].memory_gb == pytest.approx(4.7)
    assert models["llama3.2-3b"].context == 8192  # trained for 131072: capped to what a box holds
    assert sorted(models["qwen3-14b"].capabilities) == ["json", "thinking", "tools"]
    assert "nomic-embed-text" not in models  # an embedding model cannot chat
    assert "gpt-oss-120b-cloud" not in models  # runs elsewhere: not a local model to fill chains with
    agents = config.agents
    assert agents["engineer"].chain == ["qwen2.5-coder-7b", "qwen3-14b", "qwen-coder-0.5b"]
    assert agents["chat"].chain == ["llama3.2-3b", "qwen3-14b", "qwen-coder-0.5b"]
    assert agents["research"].chain == ["claude-haiku", "qwen3-14b", "qwen-coder-0.5b"]
    # the orchestrator's model (3B) is not trusted with the unsure decisions
    assert config.orchestration.threshold == 0
    # the default config's routing examples came along
    assert agents["engineer"].examples and agents["writer"].consumers == ["utility"]
    text = target.read_text()
    assert "left out nomic-embed-text:latest: an embedding model" in text
    assert "left out gpt-oss:120b-cloud: Ollama 0.12.6 serves it from the cloud" in text
    assert "engineer: qwen2.5-coder-7b → qwen3-14b → qwen-coder-0.5b" in text


def test_nothing_served_writes_nothing_and_says_where_it_asked(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["init", str(target), "--endpoint", nowhere])
    assert result.exit_code == 1
    assert nowhere in result.output and "no server named with --endpoint serves a chat model" in result.output
    # why nothing was found there, not a backend that cannot list models saying it has none
    assert f"{nowhere}: nothing found (connect_error)" in result.output and "0 model(s)" not in result.output
    assert not target.exists()


def test_ollama_host_is_read_as_the_ollama_cli_reads_it(ollama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"0.0.0.0:{ollama.port}")
    found = asyncio.run(discover())
    ids = {f.model.model_id for f in found.found if f.backend == "ollama"}
    assert ids == {str(e["name"]) for e in TAGS}


@pytest.mark.model
def test_a_real_llama_cpp_server_is_found_and_served(default_model: Path, tmp_path: Path) -> None:
    """llama_cpp.server's own /v1/models; the written config then answers through it."""
    port = free_port()
    proc = start_llama_server(default_model, port)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        found = asyncio.run(discover([endpoint]))
        assert [(f.backend, f.model.model_id) for f in found.found] == [("openai", "qwen-coder")]
        target = tmp_path / "config.yaml"
        result = CliRunner().invoke(app, ["init", str(target), "--endpoint", endpoint])
        assert result.exit_code == 0, result.output
        config = load_config(target)
        assert config.agents["engineer"].primary == "qwen-coder"
        assert config.models["qwen-coder"].endpoint == endpoint
        asked = CliRunner().invoke(app, ["--config", str(target), "ask", "--local", "--agent", "utility",
                                         "Reply with exactly: pong"])
        assert asked.exit_code == 0, asked.output
        assert "utility → qwen-coder" in asked.output
    finally:
        proc.kill()
        proc.wait(10)


def test_policy_pieces() -> None:
    assert parameters_from_label("7.6B") == 7.6 and parameters_from_label("137M") == pytest.approx(0.137)
    assert parameters_from_label("") is None and parameters_from_label(None) is None
    assert normalised_endpoint("0.0.0.0", 11434) == "http://127.0.0.1:11434"
    assert normalised_endpoint("http://gpu-box:9999/", 11434) == "http://gpu-box:9999"
    taken: set[str] = {"qwen-coder-0.5b"}
    assert config_name("hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M", taken) == \
        "llama-3.2-3b-instruct-gguf-q4_k_m"
    assert config_name("gemma3:latest", taken) == "gemma3"
    assert config_name("gemma3", taken) == "gemma3-2"
    # only coder models: they serve every agent; only embedding models: nothing to chain
    coder = ServedModel("qwen2.5-coder:1.5b", "http://x", parameters_b=1.5)
    assert chains({"c": coder})["chat"] == ["c", "qwen-coder-0.5b"]
    assert chains({"e": ServedModel("nomic-embed-text", "http://x")}) == {}


def test_a_model_whose_server_gives_no_size_is_sized_by_its_name() -> None:
    """An OpenAI-compatible server listed qwen3-14b with no size: it counted as 0 B, so it was the 'smallest'
    model (chat, orchestrator, utility) and the note said 'qwen3-14b is under 7B'."""
    from modelyard.ops.starter import draft, weight

    assert [weight(ServedModel(name, "http://x")) for name in (
        "qwen3-14b", "llama3.2:3b", "hf.co/org/Llama-3.2-3B-Instruct-GGUF:Q4_K_M", "mixtral-8x7b", "phi-3.5",
        "gpt-oss-20b", "mistral-small")] == [14, 3, 3, 7, 0, 20, 0]
    found = [Found("openai", ServedModel("qwen3-14b", "http://h:8000")),
             Found("ollama", ServedModel("llama3.2:3b", "http://h:11434", parameters_b=3.2))]
    config, notes = draft(found, {"models": {}, "agents": {"chat": {}, "orchestrator": {}}})
    assert config["agents"]["chat"]["primary"] == "llama3.2-3b"
    assert config["agents"]["orchestrator"]["primary"] == "llama3.2-3b"
    _, notes = draft([Found("openai", ServedModel("mistral-small", "http://h:8000"))],
                     {"models": {}, "agents": {"orchestrator": {}}})
    assert any("the size of mistral-small is unknown" in n for n in notes), notes
    assert not any("under 7B" in n for n in notes)


def test_listing_shapes_of_other_servers_and_versions() -> None:
    """vLLM's and llama-server's /v1/models entries (their documented fields), and Ollama listings
    with fields missing or of another type: read as far as they go, never an exception."""
    from modelyard.providers import ollama as ollama_module
    from modelyard.providers import openai as openai_module

    vllm = openai_module._served({"id": "Qwen/Qwen2.5-7B-Instruct", "object": "model", "owned_by": "vllm",
                                  "root": "Qwen/Qwen2.5-7B-Instruct", "max_model_len": 32768}, "http://v")
    assert vllm and vllm.server == "vLLM" and vllm.served_context == 32768
    llama = openai_module._served({"id": "model.gguf", "object": "model", "owned_by": "llamacpp",
                                   "meta": {"vocab_type": 2, "n_vocab": 151936, "n_ctx_train": 32768,
                                            "n_embd": 896, "n_params": 494032768, "size": 491400032}}, "http://l")
    assert llama and llama.server == "llama.cpp server" and llama.trained_context == 32768
    assert llama.parameters_b == pytest.approx(0.494, abs=1e-3) and llama.size_bytes == 491400032
    assert openai_module._served({"object": "model"}, "http://x") is None
    odd = ollama_module._served({"name": "x:1b", "details": None, "size": "big"}, {"capabilities": "tools",
                                 "model_info": []}, "http://o", "Ollama")
    assert odd and odd.size_bytes is None and odd.parameters_b is None and odd.trained_context is None
    assert ollama_module._served({"name": 3}, {}, "http://o", "Ollama") is None


def test_a_found_model_in_no_chain_an_unknown_context_and_a_big_orchestrator_are_said() -> None:
    """A llama-server started for modelyard (a 0.5B coder beside Ollama's 7B coder) sat in the file, 'used by –' in
    `models`, with nothing said; its context unknown, a 20k-token Claude Code request was sent to its 2048 tokens
    and failed as connection_dropped. A 7B+ orchestrator got round 5's 0.96 while the note said 'set 0.92'."""
    from modelyard.ops.starter import ORCHESTRATOR_THRESHOLD, draft

    ollama = "http://h:11434"
    found = [Found("ollama", ServedModel("qwen2.5-coder:7b", ollama, parameters_b=7.6, trained_context=32768)),
             Found("ollama", ServedModel("qwen3:14b", ollama, parameters_b=14.8, trained_context=40960)),
             Found("openai", ServedModel("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "http://h:8080"))]
    base = {"models": {}, "agents": {"chat": {}, "orchestrator": {}, "engineer": {}}}
    config, notes = draft(found, base)
    assert "qwen2.5-coder-0.5b-instruct-q4_k_m" in config["models"]
    assert any(n.startswith("qwen2.5-coder-0.5b-instruct-q4_k_m: in no chain") for n in notes), notes
    assert any(n.startswith("qwen2.5-coder-0.5b-instruct-q4_k_m: context unknown") and "--n_ctx" in n
               for n in notes), notes
    assert not any(n.startswith(("qwen3-14b: ", "qwen2.5-coder-7b: ")) for n in notes), notes  # used, context known
    assert ORCHESTRATOR_THRESHOLD == 0.92 == config["orchestration"]["threshold"]  # README's calibrated value


def test_an_ollama_model_of_unknown_context_is_told_about_num_ctx_not_a_llama_cpp_flag() -> None:
    """An Ollama whose /api/show says no context_length (an older version, a listing without model_info): the note
    told the user to look at python -m llama_cpp.server's --n_ctx, which Ollama does not have."""
    from modelyard.ops.starter import draft

    found = [Found("ollama", ServedModel("qwen2.5-coder:7b", "http://h:11434", parameters_b=7.6))]
    _, notes = draft(found, {"models": {}, "agents": {"chat": {}, "engineer": {}}})
    [note] = [n for n in notes if n.startswith("qwen2.5-coder-7b: context unknown")]
    assert "num_ctx" in note and "--n_ctx" not in note and "llama_cpp" not in note, note
