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
#: Gemma 2 alternates, Gemma 3 has 5 local layers to 1 global, Cohere 2 3 to 1, gpt-oss alternates
SWA_PATTERN_DEFAULTS = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "gpt-oss": 2}


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
    ``n_swa_layer`` of the ``n_layer`` layers, ``window`` tokens (0: none). ``swa_source`` says where the count
    came from; UNKNOWN: a window but no pattern, so every layer is counted in full."""

    n_layer: int
    n_head_kv: int
    head_dim: int
    n_swa_layer: int = 0
    window: int = 0
    swa_source: SwaSource = SwaSource.NONE

    def bytes_per_token(self, bytes_per_element: int = 2) -> int:
        """Every layer at full context (what a model without sliding windows holds per token)."""
        return 2 * self.n_layer * self.n_head_kv * self.head_dim * bytes_per_element

    def bytes_at(self, context: int, n_ubatch: int = N_UBATCH, bytes_per_element: int = 2) -> int:
        """One sequence's KV cache at ``context`` tokens: the global layers hold all of it, the SWA layers
        ``swa_cells`` of it (llama.cpp's llama_kv_cache_iswa, ``--swa-full`` off)."""
        n_full = self.n_layer - self.n_swa_layer if self.sliding else self.n_layer
        layer = self.bytes_per_token(bytes_per_element) // self.n_layer
        return layer * n_full * context + self.swa_bytes_at(context, n_ubatch, bytes_per_element)

    def swa_bytes_at(self, context: int, n_ubatch: int = N_UBATCH, bytes_per_element: int = 2) -> int:
        """The part of :meth:`bytes_at` on sliding-window layers (0 without them)."""
        if not self.sliding:
            return 0
        layer = self.bytes_per_token(bytes_per_element) // self.n_layer
        return layer * self.n_swa_layer * swa_cells(context, self.window, n_ubatch)

    @property
    def sliding(self) -> bool:
        return bool(self.n_swa_layer and self.window)


def swa_cells(context: int, window: int, n_ubatch: int = N_UBATCH) -> int:
    """Tokens a sliding-window layer keeps per sequence: the window plus a micro-batch, padded (llama.cpp)."""
    cells = min(context, window + n_ubatch)
    return -(-cells // SWA_PAD) * SWA_PAD


def _swa_layers(meta: dict[str, Any], arch: str, n_layer: int) -> tuple[int, SwaSource]:
    """How many layers slide: from the GGUF key (a period, or a flag per layer — llama.cpp's ``get_key_or_arr``
    of LLM_KV_ATTENTION_SLIDING_WINDOW_PATTERN), else llama.cpp's default for the architecture."""
    pattern = meta.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, (list, tuple)) and len(pattern) == n_layer:
        flags = [bool(x) if not isinstance(x, str) else x.lower() in ("1", "true") for x in pattern]
        return sum(flags), SwaSource.METADATA
    period = _int(meta, f"{arch}.attention.sliding_window_pattern") if not isinstance(pattern, (list, tuple)) else None
    source = SwaSource.METADATA
    if period is None:
        period, source = SWA_PATTERN_DEFAULTS.get(arch), SwaSource.ARCH_DEFAULT
    if not period or period < 1:
        return 0, SwaSource.UNKNOWN
    return sum(1 for il in range(n_layer) if il % period < period - 1), source


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
    window = _int(meta, f"{arch}.attention.sliding_window") or 0
    if window <= 0:
        return KvShape(n_layer, n_head_kv, head_dim)
    n_swa, source = _swa_layers(meta, arch, n_layer)
    return KvShape(n_layer, n_head_kv, head_dim, n_swa, window, source)


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
