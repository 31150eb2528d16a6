"""`modelyard plan` on sliding-window-attention models: their SWA layers keep only the window, not the context.

llama.cpp sizes such a model's KV cache in two parts (ggml-org/llama.cpp src/llama-kv-cache-iswa.cpp): the global
layers hold the full context, the SWA layers ``GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256)`` cells. Which layers slide:
``<arch>.attention.sliding_window_pattern`` where the GGUF has it, else llama.cpp's default for the architecture
(src/llama-model.cpp ``hparams.set_swa_pattern(6)`` for gemma3, ``(2)`` for gemma2). plan counted every layer at the
full context: several times too much for a Gemma 3.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from tests.helpers import make_config
from tests.ops.test_probe import ShowingOllama

from modelyard.ops.plan import GB, plan_memory
from modelyard.providers.metadata import gguf_metadata, kv_shape

#: /api/show model_info of gemma3 as Ollama returns it (ollama/ollama docs/api.md "Show model details", gemma3 4B:
#: gemma3.attention.sliding_window 1024, no sliding_window_pattern key), with the 12B's shape (48 layers, 8 KV heads
#: of 256 dims: llama.cpp src/llama-model.cpp's gemma3 `case 48: type = LLM_TYPE_12B`)
GEMMA3_12B_INFO = {
    "general.architecture": "gemma3",
    "gemma3.attention.head_count": 16,
    "gemma3.attention.head_count_kv": 8,
    "gemma3.attention.key_length": 256,
    "gemma3.attention.sliding_window": 1024,
    "gemma3.attention.value_length": 256,
    "gemma3.block_count": 48,
    "gemma3.context_length": 131072,
    "gemma3.embedding_length": 3840,
    "gemma3.vision.block_count": 27,
}


class GemmaOllama(ShowingOllama):
    """The Ollama fake answering /api/show for gemma3:12b with the model_info above."""

    async def _show(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("model") != "gemma3:12b":
            return await super()._show(request)
        return JSONResponse({"modelfile": "", "details": {"family": "gemma3"}, "model_info": GEMMA3_12B_INFO})


def test_gemma3_12b_at_32k_fits_where_the_full_context_estimate_said_it_did_not() -> None:
    with GemmaOllama([{"name": "gemma3:12b", "size": int(8.1 * GB)}]) as ollama:
        cfg = make_config({"gemma": {"provider": "ollama", "model": "gemma3:12b", "endpoint": ollama.url,
                                     "context": 32768}}, {"a": {"primary": "gemma"}})
        p = plan_memory(cfg, ram_gb=24)  # 6 GB headroom: 18 GB for models
    (m,) = p.models
    per_layer_token = 2 * 8 * 256 * 2  # K and V × 8 KV heads × 256 dims × f16
    # layers 5, 11, …, 47 are global (8 of 48) and hold 32768 tokens; the other 40 hold 1024 + 512 (already × 256)
    assert m.kv_gb == pytest.approx(per_layer_token * (8 * 32768 + 40 * 1536) / GB)  # 2.47 GB, was 12.0
    assert "sliding window: 40 of 48 layers keep 1536 tokens (window 1024 + a 512-token batch; llama.cpp's " \
           "pattern for its architecture), the other 8 the full context" in m.kv_source
    assert p.fits is True and p.drop == []
    # shrinking the context shrinks only the global layers' part past the window
    assert m.at_context(8192) == pytest.approx(per_layer_token * (8 * 8192 + 40 * 1536) / GB)


def _write_gguf(path: Path, arch: str, n_layer: int, window: int, pattern: int | list[bool] | None = None) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(n_layer)
    writer.add_context_length(8192)
    writer.add_embedding_length(512)
    writer.add_head_count(8)
    writer.add_head_count_kv(2)
    writer.add_sliding_window(window)
    if pattern is not None:
        writer.add_sliding_window_pattern(pattern)  # gguf-py's writer: an int period, or one bool per layer
    return finish_gguf(writer, path)


def finish_gguf(writer: gguf.GGUFWriter, path: Path) -> Path:
    """The header written, with one small tensor (a GGUF without one is not read back), and the file closed."""
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _plan_llamacpp(path: Path, context: int):
    cfg = make_config({"m": {"provider": "llamacpp", "path": str(path), "context": context}}, {"a": {"primary": "m"}})
    (m,) = plan_memory(cfg, ram_gb=16).models
    return m


def test_gemma2_gguf_alternates_with_its_4096_window(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "g2.gguf", "gemma2", 4, 4096)
    m = _plan_llamacpp(path, 16384)
    per_layer_token = 2 * 2 * 64 * 2
    # set_swa_pattern(2): layers 0 and 2 slide (4096 + 512 → 4608 cells), 1 and 3 hold 16384
    assert m.kv_gb == pytest.approx(per_layer_token * (2 * 16384 + 2 * 4608) / GB)
    assert "2 of 4 layers keep 4608 tokens" in m.kv_source


def test_a_per_layer_pattern_in_the_gguf_is_used(tmp_path: Path) -> None:
    """`<arch>.attention.sliding_window_pattern` as one flag per layer (llama.cpp reads it with get_key_or_arr into
    hparams.swa_layers: true = sliding); it wins over the architecture's default."""
    meta = gguf_metadata(_write_gguf(tmp_path / "c.gguf", "gemma3", 6, 512, [True, False, True, False, False, False]))
    shape = kv_shape(meta)
    assert shape is not None and (shape.n_swa_layer, shape.window) == (2, 512)
    assert shape.bytes_at(4096) == 2 * 2 * 64 * 2 * (4 * 4096 + 2 * 1024)


def test_a_window_without_a_known_pattern_keeps_the_full_estimate_and_says_so(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "x.gguf", "llama", 4, 4096)
    m = _plan_llamacpp(path, 8192)
    assert m.kv_gb == pytest.approx(2 * 4 * 2 * 64 * 2 * 8192 / GB)  # every layer at the full context, as before
    assert "sliding window 4096 but which layers slide is unknown: every layer counted at the full context" \
           in m.kv_source


def test_context_within_the_window_costs_the_same_as_before(tmp_path: Path) -> None:
    """guard: below the window every layer holds the whole context, SWA or not (padded to 256 like llama.cpp)."""
    path = _write_gguf(tmp_path / "g3.gguf", "gemma3", 12, 1024)
    m = _plan_llamacpp(path, 1024)
    assert m.kv_gb == pytest.approx(2 * 12 * 2 * 64 * 2 * 1024 / GB)
