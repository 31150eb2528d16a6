"""A SentencePiece-style BPE tokenizer's ids, word by word and remembered: the sentence encoder's tokens for less CPU.

The encoder's tokenizer (WordLlama's, Llama-2's vocabulary: agents/encoder.py) has no pre-tokenizer: it turns each
space into "▁", prepends one, and runs BPE over the whole message as one word — ~0.3 ms of CPU for a long message's
800 characters, each time. No token of its vocabulary holds a "▁" after another character, so no merge crosses the
start of a word: the ids of the message are those of its words ("▁" + letters, with the spaces before them) one
after another. Here each word's ids are looked up once and remembered (round 23: ~0.33 → ~0.05 ms for a long read)
— the same ids, checked on every routing_eval prompt (tests/agents/test_word_ids.py). :func:`word_separable` checks
the tokenizer is of that kind (its file read as bytes, ~5 ms once); any other is asked for the whole message.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MARK = "▁"
#: a word as the BPE sees it: its run of "▁" (spaces) and what follows up to the next "▁"; or a trailing run of "▁"
WORD = re.compile(f"{MARK}*[^{MARK}]+|{MARK}+")
#: the normalizer that makes a message the one word BPE reads (tokenizers' Prepend, then Replace)
NORMALIZER = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": MARK},
                                                  {"type": "Replace", "pattern": {"String": " "}, "content": MARK}]}
#: distinct words remembered before starting afresh (a few MB)
MEMO_WORDS = 20_000


def _vocabulary_keeps_words_apart(tokenizer_file: Path) -> bool:
    """No string of the tokenizer file holds "▁" right after another character (so no vocabulary token does): each
    "▁" in the file's UTF-8 follows another "▁", a string's opening quote, or the space between a merge's two
    halves (a merge's result is itself a vocabulary token, so it is checked as one)."""
    import numpy as np

    data = tokenizer_file.read_bytes()
    if b"\\u2581" in data:  # written escaped: not what this check reads
        return False
    mark = np.frombuffer(MARK.encode(), dtype=np.uint8)
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size < 4:
        return False
    starts = (raw[:-2] == mark[0]) & (raw[1:-1] == mark[1]) & (raw[2:] == mark[2])
    at = np.flatnonzero(starts)
    at = at[at >= 3]
    after_mark = starts[at - 3]
    before = raw[at - 1]
    opening_quote = (before == ord('"')) & (raw[at - 2] != ord("\\"))
    return bool(np.all(after_mark | opening_quote | (before == ord(" "))))


def word_separable(tokenizer: Tokenizer, tokenizer_file: Path) -> bool:
    """Whether ``tokenizer``'s ids of a message are its words' ids one after another (see the module's doc)."""
    from tokenizers.models import BPE

    normalizer = tokenizer.normalizer
    model = tokenizer.model
    if normalizer is None or tokenizer.pre_tokenizer is not None or not isinstance(model, BPE) or model.dropout:
        return False
    if json.loads(normalizer.__getstate__()) != NORMALIZER:
        return False
    try:
        return _vocabulary_keeps_words_apart(tokenizer_file)
    except OSError:
        return False


class WordPieces:
    """Text → ``tokenizer.encode(text, add_special_tokens=False).ids``, word by word (for a tokenizer
    :func:`word_separable` accepts); a text holding an added token ("<s>", …) is encoded whole."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer
        self._tokenize = tokenizer.model.tokenize
        self._added = tuple(str(t.content) for t in tokenizer.get_added_tokens_decoder().values())
        self._known: dict[str, list[int]] = {}

    def __call__(self, text: str) -> list[int]:
        if not text or any(added in text for added in self._added):
            return list(self._tokenizer.encode(text, add_special_tokens=False).ids)
        known, tokenize = self._known, self._tokenize
        if len(known) > MEMO_WORDS:
            known.clear()
        ids: list[int] = []
        for word in WORD.findall(MARK + text.replace(" ", MARK)):
            run = known.get(word)
            if run is None:
                run = known[word] = [token.id for token in tokenize(word)]
            ids += run
        return ids
