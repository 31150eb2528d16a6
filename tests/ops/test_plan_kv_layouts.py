"""`modelyard plan` on three KV layouts that hold much less than every layer × the full context: Gemma 3n (only its
first layers have a cache; the later ones reuse it), Llama 4 (3 of 4 layers attend in 8192-token chunks) and
multi-head latent attention (DeepSeek-V2/V3: one compressed row per layer, no V).

Each from the GGUF metadata keys as llama.cpp names them (src/llama-arch.cpp ``LLM_KV_NAMES``) and sized as llama.cpp
allocates (src/llama-kv-cache.cpp: a layer without ``hparams.has_kv(il)`` is skipped, ``has_v = !is_mla``;
src/llama-kv-cache-iswa.cpp: a windowed layer holds ``GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256)`` cells;
src/llama-model.cpp: gemma3n ``n_layer_kv_from_start = 20`` and ``set_swa_pattern(5)``, llama4 ``n_swa = 8192`` and
``set_swa_pattern(4)`` "3 chunked - 1 full"). plan counted every layer at the full context with K and V as wide as
the key: 7.8× too much for Gemma 3n E4B at 32k, 2.2× for Llama 4 Scout, 2× for an MLA DeepSeek.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest
from tests.helpers import make_config
from tests.ops.test_plan_swa import finish_gguf

from modelyard.ops.plan import GB, plan_memory
from modelyard.providers.metadata import kv_shape

#: google/gemma-3n-E4B-it config.json (text_config): 35 layers, 2 KV heads of 256, sliding_window 512, 4 sliding
#: layers to 1 full, num_kv_shared_layers 15 — written by convert_hf_to_gguf.py's Gemma3NModel as
#: ``gemma3n.attention.shared_kv_layers`` (unsloth's gemma-3n notes: once float32, uint32 since llama.cpp#14450)
GEMMA3N_E4B = {
    "general.architecture": "gemma3n",
    "gemma3n.block_count": 35,
    "gemma3n.context_length": 32768,
    "gemma3n.embedding_length": 2048,
    "gemma3n.attention.head_count": 8,
    "gemma3n.attention.head_count_kv": 2,
    "gemma3n.attention.key_length": 256,
    "gemma3n.attention.value_length": 256,
    "gemma3n.attention.sliding_window": 512,
    "gemma3n.attention.shared_kv_layers": 15.0,
}

#: meta-llama/Llama-4-Scout-17B-16E config.json (text_config): 48 layers, 40 heads, 8 KV heads of 128, hidden 5120,
#: attention_chunk_size 8192; its GGUF has no sliding_window key (llama.cpp sets the chunk itself)
LLAMA4_SCOUT = {
    "general.architecture": "llama4",
    "llama4.block_count": 48,
    "llama4.context_length": 10485760,
    "llama4.embedding_length": 5120,
    "llama4.attention.head_count": 40,
    "llama4.attention.head_count_kv": 8,
    "llama4.rope.dimension_count": 128,
    "llama4.expert_count": 16,
}

#: deepseek-ai/DeepSeek-V2-Lite config.json (27 layers, kv_lora_rank 512, qk_rope_head_dim 64, qk_nope_head_dim 128,
#: v_head_dim 128) as convert_hf_to_gguf.py writes it since llama.cpp's MLA support: 1 KV head whose key is the
#: latent, 576 = 512 + 64, value 512, and the per-head sizes apart as *_mla (llama.cpp's own test model,
#: tests/test-llama-archs.cpp, writes the same 576/512/192/128 for deepseek2)
DEEPSEEK_V2_LITE_MLA = {
    "general.architecture": "deepseek2",
    "deepseek2.block_count": 27,
    "deepseek2.context_length": 163840,
    "deepseek2.embedding_length": 2048,
    "deepseek2.attention.head_count": 16,
    "deepseek2.attention.head_count_kv": 1,
    "deepseek2.attention.key_length": 576,
    "deepseek2.attention.value_length": 512,
    "deepseek2.attention.key_length_mla": 192,
    "deepseek2.attention.value_length_mla": 128,
    "deepseek2.attention.kv_lora_rank": 512,
    "deepseek2.rope.dimension_count": 64,
}

CTX = 32768


def _write_gguf(path: Path, meta: dict[str, object]) -> Path:
    """A GGUF header carrying ``meta`` (integers as uint32, as the converter writes them; a float as float32)."""
    arch = str(meta["general.architecture"])
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in meta.items():
        if key == "general.architecture":
            continue
        if isinstance(value, float):
            writer.add_float32(key, value)
        else:
            writer.add_uint32(key, int(value))  # type: ignore[call-overload]
    return finish_gguf(writer, path)


def _plan(path: Path, context: int = CTX):
    cfg = make_config({"m": {"provider": "llamacpp", "path": str(path), "context": context}}, {"a": {"primary": "m"}})
    (m,) = plan_memory(cfg, ram_gb=64).models
    return m


def test_gemma3n_e4b_keeps_kv_only_on_its_first_20_layers(tmp_path: Path) -> None:
    m = _plan(_write_gguf(tmp_path / "gemma3n.gguf", GEMMA3N_E4B))
    layer = 2 * 2 * 256 * 2  # K and V × 2 KV heads × 256 dims × f16
    # layers 0–19: 4, 9, 14, 19 full (32768 cells), the other 16 slide (512 + 512 → 1024 cells); 20–34 reuse them
    assert m.kv_gb == pytest.approx(layer * (4 * CTX + 16 * 1024) / GB)  # 0.28 GB; was 2.19 (35 layers × 32768)
    assert "20 of 35 layers (the other 15 reuse their KV) × 2 KV heads × 256 dims" in m.kv_source
    assert "16 of 20 layers keep 1024 tokens" in m.kv_source


def test_gemma3n_without_the_shared_layers_key_takes_llama_cpps_20() -> None:
    """llama.cpp does not read the key: n_layer_kv_from_start is 20 for gemma3n (E2B: 30 layers, 10 shared)."""
    meta = {k: v for k, v in GEMMA3N_E4B.items() if not k.endswith("shared_kv_layers")} | {"gemma3n.block_count": 30}
    shape = kv_shape(meta)
    assert shape is not None and (shape.kv_layers, shape.n_swa_layer) == (20, 16)


def test_llama4_scout_attends_in_8192_token_chunks_on_3_of_4_layers(tmp_path: Path) -> None:
    m = _plan(_write_gguf(tmp_path / "scout.gguf", LLAMA4_SCOUT))
    layer = 2 * 8 * 128 * 2
    # layers 3, 7, …, 47 are global (12 of 48); the 36 chunked ones hold 8192 + 512 = 8704 cells (already × 256)
    assert m.kv_gb == pytest.approx(layer * (12 * CTX + 36 * 8704) / GB)  # 2.70 GB; was 6.0
    assert "36 of 48 layers keep 8704 tokens (window 8192" in m.kv_source
    # a llama4-arch GGUF that says sliding_window 0 (MobileLLM-R1) has no chunks: llama.cpp's swa_type NONE
    plain = kv_shape(LLAMA4_SCOUT | {"llama4.attention.sliding_window": 0})
    assert plain is not None and plain.bytes_at(CTX) == 48 * layer * CTX


def test_mla_deepseek_caches_one_latent_row_per_layer_and_no_v(tmp_path: Path) -> None:
    m = _plan(_write_gguf(tmp_path / "dsv2lite.gguf", DEEPSEEK_V2_LITE_MLA))
    # 27 layers × (kv_lora_rank 512 + rope 64) × f16: 972 MiB at 32768 — the K (f16) llama.cpp reports, V 0
    assert m.kv_gb == pytest.approx(27 * 576 * 2 * CTX / GB)  # 0.95 GB; was 1.90 (K and V both 576 wide)
    assert "27 layers × 576-wide latent (MLA: K only, no V cache)" in m.kv_source
    # DeepSeek-R1's 61 layers, q8_0 (34 bytes a 32-element block): ik_llama.cpp#259's log says "KV self size =
    # 1166.62 MiB, c^KV (q8_0)" at n_ctx_slot 32768
    r1 = kv_shape(DEEPSEEK_V2_LITE_MLA | {"deepseek2.block_count": 61})
    assert r1 is not None and r1.bytes_per_token(1) * 34 / 32 * CTX / 2**20 == pytest.approx(1166.62, abs=0.01)


def test_a_deepseek_gguf_from_before_mla_has_k_and_v_of_their_own_widths() -> None:
    """A DeepSeek GGUF converted before MLA support (no *_mla keys: llama.cpp's is_mla() false) caches every head's
    K (192) and V (128): llama.cpp printed ``n_embd_k_gqa = 24576, n_embd_v_gqa = 16384`` for R1's 128 heads
    (ik_llama.cpp#235's log), where plan counted V as wide as K."""
    meta = {"general.architecture": "deepseek2", "deepseek2.block_count": 61, "deepseek2.embedding_length": 7168,
            "deepseek2.attention.head_count": 128, "deepseek2.attention.head_count_kv": 128,
            "deepseek2.attention.key_length": 192, "deepseek2.attention.value_length": 128}
    shape = kv_shape(meta)
    assert shape is not None and shape.layer_bytes_per_token(1) == 24576 + 16384
