"""`modelyard plan`: weights + KV cache against RAM, and what to drop when it does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from tests.helpers import make_config
from tests.ops.test_probe import ShowingOllama
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.ops.plan import GB, default_headroom, plan_memory
from modelyard.paths import example_file
from modelyard.providers.metadata import gguf_metadata, kv_shape

REFERENCE = example_file("reference-mac64.yaml")


def plan_json(*args: str) -> dict:
    out = CliRunner().invoke(app, ["plan", "--config", str(REFERENCE), "--json", *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_reference_setup_fits_on_64_gb() -> None:
    p = plan_json("--ram", "64")
    models = {m["model"]: m for m in p["models"]}
    assert sorted(models) == ["gemma4-26b", "qwen2.5-coder-7b", "qwen3.5"]  # claude-haiku is cloud: not here
    assert sum(m["weights_gb"] for m in models.values()) == pytest.approx(27.3)
    assert models["qwen3.5"]["role"] == "Primary for 3 agents, fallback for 2 agents"
    assert models["qwen2.5-coder-7b"]["role"] == "Engineer only"
    assert models["gemma4-26b"]["role"] == "Fallback for 4 agents"
    # rule of thumb, 16 KiB/token/GB: qwen3.5 6.6 GB × 32768 ctx × 2 slots = 6.6 GB of KV
    assert models["qwen3.5"]["kv_gb"] == pytest.approx(6.6)
    assert models["gemma4-26b"]["kv_gb"] == pytest.approx(4.0)  # 16 GB × 16384 × 1
    assert p["kv_gb"] == pytest.approx(15.3)
    assert p["total_gb"] == pytest.approx(42.6)
    assert p["headroom_gb"] == 8 and p["fits"] is True and p["drop"] == []
    assert p["free_gb"] == pytest.approx(64 - 42.6)


def test_on_32_gb_drop_the_shared_fallback_and_say_who_loses_it() -> None:
    p = plan_json("--ram", "32")
    assert p["fits"] is False and p["available_gb"] == 24
    assert p["drop"] == ["gemma4-26b"]
    assert p["kept_total_gb"] == pytest.approx(22.6)
    lost = {c["agent"]: c["text"] for c in p["consequences"]}
    assert sorted(lost) == ["chat", "engineer", "orchestrator", "utility"]
    assert lost["engineer"] == ("loses its fallback gemma4-26b (no fallback left; "
                                "consider claude-haiku as cloud fallback)")


def test_on_16_gb_keep_the_main_model_with_a_smaller_context() -> None:
    p = plan_json("--ram", "16")
    assert p["headroom_gb"] == 4  # a quarter of RAM below 32 GB
    assert p["drop"] == ["gemma4-26b", "qwen2.5-coder-7b"]
    lost = {c["agent"]: c["text"] for c in p["consequences"]}
    assert lost["engineer"] == "loses its primary qwen2.5-coder-7b: no model left; consider claude-haiku as primary"
    assert "chat" in lost and "research" not in lost  # research keeps qwen3.5 as its fallback
    # 12 GB usable − 6.6 GB weights = 5.4 GB of KV → 32768 × 5.4 / 6.6 = 26810 → 26624 (multiple of 1024)
    assert "qwen3.5 fits only with a smaller KV cache: set its context to 26624 or less (now 32768 × 2)" in p["notes"]


def test_ollama_parallel_is_said_to_be_an_assumption() -> None:
    """Ollama allocates num_ctx × OLLAMA_NUM_PARALLEL, a server setting (default 1), not max_concurrent: the
    reference plan doubled qwen3.5's KV cache for max_concurrent 2 without saying it took the two to be equal."""
    notes = plan_json("--ram", "64")["notes"]
    assert "qwen3.5: KV cache × 2 assumes its Ollama server runs OLLAMA_NUM_PARALLEL=2 (max_concurrent, which " \
           "cannot be told here: no Ollama answered on port 11434 to be asked); with Ollama's default of 1 it " \
           "allocates 1/2 of that and queues the other requests" in notes, notes


def test_table_output_and_headroom_rule() -> None:
    out = CliRunner().invoke(app, ["plan", "--config", str(REFERENCE), "--ram", "32"])
    assert out.exit_code == 0
    assert "Engineer only" in out.output and "does not fit" in out.output and "Drop gemma4-26b" in out.output
    assert [default_headroom(r) for r in (128, 32, 24, 16, 6)] == [8, 8, 6, 4, 2]


def test_sizes_and_kv_shape_from_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    # the fake runs in this process: its environment is the one OLLAMA_NUM_PARALLEL is read from (ollama_parallel.py)
    monkeypatch.setattr("modelyard.providers.ollama_parallel.server_environment",
                        lambda port: ({"OLLAMA_NUM_PARALLEL": "2"}, "the test's environment"))
    with ShowingOllama([{"name": "qwen-tools:latest", "size": 5 * GB}], loaded=["other:7b"]) as ollama:
        cfg = make_config(
            {"qwen": {"provider": "ollama", "model": "qwen-tools:latest", "endpoint": ollama.url,
                      "context": 8192, "max_concurrent": 2},
             "other": {"provider": "ollama", "model": "other:7b", "endpoint": ollama.url}},
            {"a": {"primary": "qwen", "fallbacks": ["other"]}})
        p = plan_memory(cfg, ram_gb=64)
    qwen, other = p.models
    assert (qwen.weights_gb, qwen.weights_source) == (5.0, "Ollama /api/tags")
    # /api/show: 28 layers × 4 KV heads × (3584 / 28) dims × K,V × f16 = 57344 bytes/token
    assert qwen.kv_gb == pytest.approx(57344 * 8192 * 2 / GB)
    assert qwen.kv_source.startswith("28 layers × 4 KV heads × 128 dims")
    # a loaded model: /api/ps size already includes its KV cache
    assert other.weights_source == "Ollama /api/ps (loaded, KV included)" and other.kv_gb == 0
    assert other.weights_gb == pytest.approx(1_321_098_329 / GB)


def test_gguf_header_via_the_gguf_package(tmp_path: Path) -> None:
    """A GGUF llama.cpp cannot open (no tokenizer) is still read, by the gguf package."""
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(4)
    writer.add_context_length(2048)
    writer.add_embedding_length(512)
    writer.add_head_count(8)
    writer.add_head_count_kv(2)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    meta = gguf_metadata(path)
    assert meta["llama.context_length"] == 2048
    assert kv_shape(meta) is not None and kv_shape(meta).bytes_per_token() == 2 * 4 * 2 * 64 * 2
    cfg = make_config({"tiny": {"provider": "llamacpp", "path": str(path), "context": 1024, "max_concurrent": 4}},
                      {"a": {"primary": "tiny"}})
    (m,) = plan_memory(cfg, ram_gb=8).models
    assert m.weights_source == "GGUF file size" and m.weights_gb == pytest.approx(path.stat().st_size / GB)
    assert m.kv_gb == pytest.approx(2048 * 1024 / GB)  # one llama.cpp context, whatever max_concurrent says


def test_default_model_kv_from_its_gguf_header(default_model: Path) -> None:
    cfg = make_config({"q": {"provider": "llamacpp", "context": 4096}}, {"a": {"primary": "q"}})
    (m,) = plan_memory(cfg, ram_gb=8).models
    assert m.weights_gb == pytest.approx(default_model.stat().st_size / GB)
    # Qwen2.5-0.5B: 24 layers × 2 KV heads × 64 dims × K,V × f16 = 12288 bytes/token
    assert m.kv_gb == pytest.approx(12288 * 4096 / GB)


def test_a_server_that_never_answers_makes_sizes_unknown_not_a_hang() -> None:
    """plan asks providers synchronously (asyncio.run); every question is bounded in time."""
    import socket
    import time

    from modelyard.ops.plan import FACTS_TIMEOUT

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connects; nothing ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        cfg = make_config({"q": {"provider": "ollama", "model": "q:7b", "endpoint": url}}, {"a": {"primary": "q"}})
        start = time.monotonic()
        (m,) = plan_memory(cfg, ram_gb=16).models
        elapsed = time.monotonic() - start
    assert elapsed < FACTS_TIMEOUT
    assert (m.weights_gb, m.kv_source) == (None, "unknown")
    assert m.weights_source.startswith(f"unknown: {url} did not answer in time"), m.weights_source


def test_sizes_are_printed_rounded() -> None:
    """A machine's real RAM is not a round number: its default headroom (a quarter) must not print as 5.88514."""
    out = CliRunner().invoke(app, ["plan", "--config", str(REFERENCE), "--ram", "23.54056"], terminal_width=200)
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "memory plan for 23.5 GB (headroom 5.9 GB)" in text
    assert "5.885" not in text and "23.54" not in text
    roomy = CliRunner().invoke(app, ["plan", "--config", str(REFERENCE), "--ram", "64", "--headroom", "8"])
    assert "(64 GB − 8 GB headroom)" in " ".join(roomy.output.split())


def test_models_served_by_another_machine_are_not_counted_here(tmp_path: Path) -> None:
    """A team's config names its inference hosts' servers; `plan` on a laptop or a gateway host counted their
    models against its own memory: 'does not fit' on a machine that runs none of them (a newcomer's fourth walk)."""
    config = tmp_path / "team.yaml"
    config.write_text("""
models:
  here: {provider: openai, model: small, endpoint: "http://127.0.0.1:9/v1", memory_gb: 4}
  inference-host: {provider: openai, model: big, endpoint: "http://192.0.2.10:8000/v1", memory_gb: 30}
  cloud: {provider: anthropic, api_key_env: NO_SUCH_KEY, price: {input: 1, output: 5}}
agents:
  chat: {primary: here, fallbacks: [inference-host, cloud]}
""")
    out = CliRunner().invoke(app, ["plan", "--config", str(config), "--ram", "16", "--json"])
    assert out.exit_code == 0, out.output
    p = json.loads(out.output)
    assert [m["model"] for m in p["models"]] == ["here"]
    assert p["fits"] and p["drop"] == []
    assert ("inference-host: served by 192.0.2.10, not this machine (not counted); run `modelyard plan` there"
            in p["notes"])


def test_this_machine_is_its_loopback_its_name_and_its_own_addresses() -> None:
    import socket

    import psutil

    from modelyard.ops.plan import on_this_machine

    assert on_this_machine("127.0.0.1") and on_this_machine("localhost") and on_this_machine(socket.gethostname())
    own = [a.address for nics in psutil.net_if_addrs().values() for a in nics
           if a.family == socket.AF_INET and not a.address.startswith("127.")]
    assert all(on_this_machine(address) for address in own), own  # a gateway host's config may name its own IP
    assert not on_this_machine("192.0.2.10")  # TEST-NET-1: never this machine's


def test_a_model_of_unknown_size_makes_the_plan_unable_to_tell_not_fit(tmp_path: Path) -> None:
    """A local model whose server gave no size and has no memory_gb is '?' in the total: `plan` said "fits" on the
    rest alone (the '?' model may well be the largest). It says it cannot tell, naming the model."""
    config = tmp_path / "c.yaml"
    config.write_text("""
models:
  sized: {provider: openai, model: small, endpoint: "http://127.0.0.1:9/v1", memory_gb: 4}
  unsized: {provider: openai, model: big, endpoint: "http://127.0.0.1:9/v1"}
agents:
  chat: {primary: sized, fallbacks: [unsized]}
""")
    out = CliRunner().invoke(app, ["plan", "--config", str(config), "--ram", "16", "--json"])
    assert out.exit_code == 0, out.output
    p = json.loads(out.output)
    assert p["fits"] is None and p["drop"] == []
    table = CliRunner().invoke(app, ["plan", "--config", str(config), "--ram", "16"], terminal_width=200)
    text = " ".join(table.output.split())
    assert "cannot tell" in text and "the size of unsized is unknown" in text, text
    assert "fits:" not in text and "Leaves at most ~" in text
    # what is known already too big: that does not fit, whatever the rest weighs
    small = CliRunner().invoke(app, ["plan", "--config", str(config), "--ram", "4", "--headroom", "1", "--json"])
    assert json.loads(small.output)["fits"] is False


def test_a_primary_too_big_even_alone_is_dropped_first_and_its_fallback_kept(tmp_path: Path) -> None:
    """A 405B primary (240 GB) with a 1.5 GB fallback on a 32 GB machine: the greedy order (fallbacks before
    primaries) dropped the fallback, then the primary too big even alone — "Drop small, big → 0 GB", chat left with
    no model, where the fallback alone fits. What fits in no case goes first."""
    config = tmp_path / "c.yaml"
    config.write_text("""
models:
  big: {provider: ollama, model: "llama3.1:405b", endpoint: "http://127.0.0.1:9", memory_gb: 240}
  small: {provider: ollama, model: "qwen3:1.7b", endpoint: "http://127.0.0.1:9", memory_gb: 1.5}
agents:
  chat: {primary: big, fallbacks: [small]}
""")
    out = CliRunner().invoke(app, ["plan", "--config", str(config), "--ram", "32", "--json"])
    assert out.exit_code == 0, out.output
    p = json.loads(out.output)
    assert p["fits"] is False and p["drop"] == ["big"]
    assert p["kept_total_gb"] == pytest.approx(1.6, abs=0.01)
    assert [c["text"] for c in p["consequences"]] == ["loses its primary big: requests go to small"]
    assert [n for n in p["notes"] if "even alone" in n] == [
        "big does not fit even alone (255.0 GB): rely on cloud models or use a smaller quantization"]
    assert not any(n.startswith("KV cache is") for n in p["notes"])  # no context saves a 240 GB model
