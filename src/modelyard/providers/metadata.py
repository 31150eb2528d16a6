"""Model facts only the server or the weights file knows: trained context, layer and head counts.

Context length (for ``probe``) and KV-cache size (for ``plan``) come from the same GGUF keys —
``<arch>.context_length``, ``<arch>.block_count``, ``<arch>.attention.head_count_kv`` … —
which Ollama returns as ``model_info`` from ``/api/show`` and a GGUF file carries in its header.

GGUF headers are read with llama.cpp in ``vocab_only`` mode (~0.3 s, no weights loaded). The
``gguf`` package is the fallback when llama-cpp-python is absent: it is pure Python and parses
every tokenizer array element by element (~5 s for a 150k-token vocabulary), hence second.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from modelyard.providers.llama_quiet import quiet_load

#: the vocabulary's size, added to a GGUF's header key/values (llama-cpp-python's metadata has no arrays)
N_VOCAB = "modelyard.n_vocab"

#: llama-cpp-python's default micro-batch (``n_ubatch``), which ``load_llama`` keeps
N_UBATCH = 512


def gguf_metadata(path: str | Path) -> dict[str, Any]:
    """The header key/values of a GGUF file ({} when it cannot be read)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        from llama_cpp import Llama
    except ImportError:
        return _gguf_package_metadata(path)
    try:
        llm = quiet_load(Llama, model_path=str(path), vocab_only=True)
        meta: dict[str, Any] = dict(llm.metadata)
        with contextlib.suppress(Exception):  # llama-cpp-python's metadata leaves out the arrays (the vocabulary)
            meta[N_VOCAB] = int(llm.n_vocab())
        with contextlib.suppress(Exception):
            llm.close()
        return meta
    except Exception:  # not a GGUF llama.cpp can open (e.g. no tokenizer): try the plain reader
        return _gguf_package_metadata(path)


def _gguf_package_metadata(path: Path) -> dict[str, Any]:
    try:
        from gguf import GGUFReader
    except ImportError:
        return {}
    try:
        reader = GGUFReader(str(path))
    except Exception:
        return {}
    out: dict[str, Any] = {}
    for key, fld in reader.fields.items():
        if key == "tokenizer.ggml.tokens":
            out[N_VOCAB] = len(fld.data)  # the count without parsing each element
        if key.startswith("tokenizer."):
            continue
        with contextlib.suppress(Exception):
            out[key] = fld.contents()
    return out


def _int(meta: dict[str, Any], key: str) -> int | None:
    value = meta.get(key)
    if isinstance(value, list):  # some GGUFs store per-layer arrays; the max is what memory needs
        value = max(value) if value else None
    try:
        return int(float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def architecture(meta: dict[str, Any]) -> str:
    arch = meta.get("general.architecture")
    if arch:
        return str(arch)
    for key in meta:  # Ollama's model_info also carries general.architecture; this is a last resort
        if key.endswith(".context_length"):
            return key.rsplit(".", 1)[0]
    return ""


def trained_context(meta: dict[str, Any]) -> int | None:
    return _int(meta, f"{architecture(meta)}.context_length")


#: llama.cpp pads a sliding-window layer's cache to a multiple of this (ggml-org/llama.cpp src/llama-kv-cache-iswa.cpp:
#: ``size_swa = GGML_PAD(min(size_base, n_swa + n_ubatch), 256)``, ggml-org/llama.cpp#17037)
SWA_PAD = 256

#: which layers slide when the GGUF has no ``<arch>.attention.sliding_window_pattern``: llama.cpp's own default per
#: architecture (src/llama-model.cpp ``hparams.set_swa_pattern(n)``: layer ``il`` slides when ``il % n < n - 1``):
#: Gemma 2 alternates, Gemma 3 has 5 local layers to 1 global, Gemma 3n 4 to 1, Cohere 2 3 to 1, gpt-oss alternates,
#: Llama 4 has 3 chunked layers to 1 global ("pattern: 3 chunked - 1 full")
SWA_PATTERN_DEFAULTS = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4, "gpt-oss": 2, "llama4": 4}

#: a window llama.cpp sets itself whatever the GGUF says (src/llama-model.cpp, LLM_ARCH_LLAMA4: ``hparams.n_swa =
#: 8192``, chunked attention, unless ``<arch>.attention.sliding_window`` is present and 0: then no window). Its cache
#: is sized as a sliding window's (llama-kv-cache-iswa.cpp takes ``n_swa`` whatever the SWA type).
WINDOW_DEFAULTS = {"llama4": 8192}

#: how many of the first layers hold a KV cache of their own when the GGUF has no ``<arch>.attention.shared_kv_layers``
#: (src/llama-model.cpp, LLM_ARCH_GEMMA3N: ``hparams.n_layer_kv_from_start = 20``; the later layers reuse those
#: layers' KV — HF's Gemma3nTextConfig ``num_kv_shared_layers``: 10 of E2B's 30 layers, 15 of E4B's 35)
KV_LAYER_DEFAULTS = {"gemma3n": 20}


class SwaSource(StrEnum):
    """Where plan's count of sliding-window layers came from."""

    NONE = "none"  # no sliding window: every layer holds the full context
    METADATA = "metadata"  # <arch>.attention.sliding_window_pattern (a period or one flag per layer)
    ARCH_DEFAULT = "llama.cpp default"  # SWA_PATTERN_DEFAULTS
    UNKNOWN = "unknown"  # a window but no pattern: every layer counted in full (the conservative figure)


@dataclass(frozen=True)
class KvShape:
    """What one token of KV cache costs: K and V, per layer, per KV head, per head dimension.

    Sliding-window models (``<arch>.attention.sliding_window``) keep only the window's tokens on their SWA layers:
    ``n_swa_layer`` of the layers with a cache, ``window`` tokens (0: none). ``swa_source`` says where the count
    came from; UNKNOWN: a window but no pattern, so every layer is counted in full.

    ``value_dim``: V's width per head where it differs from K's (``<arch>.attention.value_length``: DeepSeek-V2's
    192-wide keys and 128-wide values); 0 for multi-head latent attention (MLA: the GGUF has
    ``<arch>.attention.key_length_mla``), whose one cache row per layer is the compressed latent, kv_lora_rank +
    the RoPE dims (576 for DeepSeek-V2/V3, as ``key_length`` with 1 KV head) and which llama.cpp gives no V cache
    (src/llama-kv-cache.cpp: ``has_v = !is_mla``). ``n_kv_layer``: the layers that hold a cache of their own, the first
    ones (Gemma 3n: the later layers reuse theirs); None: all."""

    n_layer: int
    n_head_kv: int
    head_dim: int
    n_swa_layer: int = 0
    window: int = 0
    swa_source: SwaSource = SwaSource.NONE
    value_dim: int | None = None
    n_kv_layer: int | None = None

    @property
    def kv_layers(self) -> int:
        """Layers with a KV cache of their own."""
        return self.n_layer if self.n_kv_layer is None else self.n_kv_layer

    @property
    def mla(self) -> bool:
        """Multi-head latent attention: one latent row per layer in K, no V cache (see the class)."""
        return self.value_dim == 0

    def layer_bytes_per_token(self, bytes_per_element: int = 2) -> int:
        """One layer's K and V for one token."""
        value = self.head_dim if self.value_dim is None else self.value_dim
        return self.n_head_kv * (self.head_dim + value) * bytes_per_element

    def bytes_per_token(self, bytes_per_element: int = 2) -> int:
        """Every layer at full context (what a model without sliding windows holds per token)."""
        return self.kv_layers * self.layer_bytes_per_token(bytes_per_element)

    def bytes_at(self, context: int, n_ubatch: int = N_UBATCH, bytes_per_element: int = 2) -> int:
        """One sequence's KV cache at ``context`` tokens: the global layers hold all of it, the SWA layers
        ``swa_cells`` of it (llama.cpp's llama_kv_cache_iswa, ``--swa-full`` off)."""
        n_full = self.kv_layers - self.n_swa_layer if self.sliding else self.kv_layers
        return self.layer_bytes_per_token(bytes_per_element) * n_full * context \
            + self.swa_bytes_at(context, n_ubatch, bytes_per_element)

    def swa_bytes_at(self, context: int, n_ubatch: int = N_UBATCH, bytes_per_element: int = 2) -> int:
        """The part of :meth:`bytes_at` on sliding-window layers (0 without them)."""
        if not self.sliding:
            return 0
        return self.layer_bytes_per_token(bytes_per_element) * self.n_swa_layer * swa_cells(context, self.window,
                                                                                               n_ubatch)

    @property
    def sliding(self) -> bool:
        return bool(self.n_swa_layer and self.window)


def swa_cells(context: int, window: int, n_ubatch: int = N_UBATCH) -> int:
    """Tokens a sliding-window layer keeps per sequence: the window plus a micro-batch, padded (llama.cpp)."""
    cells = min(context, window + n_ubatch)
    return -(-cells // SWA_PAD) * SWA_PAD


def _swa_flags(meta: dict[str, Any], arch: str, n_layer: int) -> tuple[list[bool], SwaSource]:
    """Which layers slide: from the GGUF key (a period, or a flag per layer — llama.cpp's ``get_key_or_arr``
    of LLM_KV_ATTENTION_SLIDING_WINDOW_PATTERN), else llama.cpp's default for the architecture."""
    pattern = meta.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, (list, tuple)) and len(pattern) == n_layer:
        return [bool(x) if not isinstance(x, str) else x.lower() in ("1", "true") for x in pattern], SwaSource.METADATA
    period = _int(meta, f"{arch}.attention.sliding_window_pattern") if not isinstance(pattern, (list, tuple)) else None
    source = SwaSource.METADATA
    if period is None:
        period, source = SWA_PATTERN_DEFAULTS.get(arch), SwaSource.ARCH_DEFAULT
    if not period or period < 1:
        return [], SwaSource.UNKNOWN
    return [il % period < period - 1 for il in range(n_layer)], source


def _window(meta: dict[str, Any], arch: str) -> int:
    """The sliding (or chunked) attention window llama.cpp sizes the cache by, 0 for none: the GGUF's, or for an
    architecture whose window llama.cpp sets itself (:data:`WINDOW_DEFAULTS`) that one, unless the GGUF says 0."""
    stated = _int(meta, f"{arch}.attention.sliding_window")
    if arch in WINDOW_DEFAULTS:
        return 0 if stated == 0 else WINDOW_DEFAULTS[arch]
    return stated or 0


def _kv_layers(meta: dict[str, Any], arch: str, n_layer: int) -> int | None:
    """How many of the first layers hold a KV cache of their own (the rest reuse theirs: Gemma 3n), None for all:
    the GGUF's ``shared_kv_layers`` counted off, else llama.cpp's own count for the architecture."""
    shared = _int(meta, f"{arch}.attention.shared_kv_layers")
    if shared and 0 < shared < n_layer:
        return n_layer - shared
    default = KV_LAYER_DEFAULTS.get(arch)
    return min(default, n_layer) if default else None


def kv_shape(meta: dict[str, Any]) -> KvShape | None:
    arch = architecture(meta)
    if not arch:
        return None
    n_layer = _int(meta, f"{arch}.block_count")
    n_head = _int(meta, f"{arch}.attention.head_count")
    n_head_kv = _int(meta, f"{arch}.attention.head_count_kv") or n_head
    head_dim = _int(meta, f"{arch}.attention.key_length")
    embedding = _int(meta, f"{arch}.embedding_length")
    if head_dim is None and embedding and n_head:
        head_dim = embedding // n_head
    if not (n_layer and n_head_kv and head_dim):
        return None
    value_dim = _int(meta, f"{arch}.attention.value_length")
    if _int(meta, f"{arch}.attention.key_length_mla") and _int(meta, f"{arch}.attention.value_length_mla"):
        value_dim = 0  # llama.cpp's hparams.is_mla(): K holds the latent, no V cache
    elif not value_dim or value_dim == head_dim:
        value_dim = None
    n_kv = _kv_layers(meta, arch, n_layer)
    window = _window(meta, arch)
    if window <= 0:
        return KvShape(n_layer, n_head_kv, head_dim, value_dim=value_dim, n_kv_layer=n_kv)
    flags, source = _swa_flags(meta, arch, n_layer)
    n_swa = sum(flags[:n_kv if n_kv is not None else n_layer])
    return KvShape(n_layer, n_head_kv, head_dim, n_swa, window, source, value_dim, n_kv)


def compute_buffer_bytes(meta: dict[str, Any], n_ctx: int, n_ubatch: int = N_UBATCH) -> int | None:
    """What llama.cpp's CPU compute buffer takes besides weights and KV cache, flash attention off (llama-cpp-python's
    default): the larger of one micro-batch's logits (``n_vocab × n_ubatch`` f32) and its attention scores and mask
    (``n_ctx × n_ubatch × (heads + 1)`` f32). Measured for Qwen2.5-Coder-0.5B (llama-cpp-python 0.3.36): 300 MiB at
    2,048 tokens (this gives 297), 969 MiB at 32,768 (960) — larger than the KV cache at both. None: shape unknown."""
    terms = compute_terms(meta, n_ubatch)
    return None if terms is None else max(terms[0], terms[1] * n_ctx)


def compute_terms(meta: dict[str, Any], n_ubatch: int = N_UBATCH) -> tuple[int, int] | None:
    """:func:`compute_buffer_bytes` as (its floor: the logits, bytes per token of context: the attention scores)."""
    n_vocab = _int(meta, N_VOCAB) or _int(meta, f"{architecture(meta)}.vocab_size")
    n_head = _int(meta, f"{architecture(meta)}.attention.head_count")
    if not (n_vocab and n_head):
        return None
    return 4 * n_ubatch * n_vocab, 4 * n_ubatch * (n_head + 1)
