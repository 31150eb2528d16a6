"""The sentence encoder's token ids word by word (agents/word_ids.py): the same ids as the tokenizer's own pipeline.

The pipeline is the one Hugging Face's tokenizers documents (https://huggingface.co/docs/tokenizers/pipeline:
normalization, pre-tokenization, model, post-processing); WordLlama's tokenizer file (in the ``wordllama`` wheel)
has a Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer and a BPE model, so the whole message is one
word to its BPE. Round 23 reads it word by word, remembered; these tests hold it to the tokenizer's ids on every
labelled prompt of benchmarks/routing_eval (and the fast path's views of them), and check that a tokenizer whose
vocabulary could merge across words, or that splits words itself, is asked for the whole message instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, pre_tokenizers

from modelyard.agents import encoder, word_ids
from modelyard.agents.request import views

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"
#: spaces at the ends and in runs, the "▁" itself, the tokenizer's added tokens, other whitespace, emoji, nothing
EDGE_CASES = ["", " ", "   ", "▁", "▁x", " ▁ x▁", "a  b", "trailing   ", "  leading", "a <s> b", "</s>", "<unk>x",
              "x\n\ny", "\t", "tab\tand\nnew line", "🙂 ok 🙂🙂", "naïve café — 東京 ", "x" * 900]


@pytest.fixture(scope="module")
def shipped() -> encoder.Encoder:
    found = encoder.shared()
    assert found is not None, "wordllama is a dependency of modelyard: its wheel ships the encoder's weights"
    return found


def prompts() -> list[str]:
    texts = [json.loads(line)["text"] for path in sorted(EVAL.glob("*.jsonl"))
             for line in path.read_text().splitlines() if line.strip()]
    return list(dict.fromkeys([*texts, *(read for text in texts for read, _ in views(text)), *EDGE_CASES]))


def test_the_shipped_tokenizer_is_read_word_by_word(shipped: encoder.Encoder) -> None:
    assert isinstance(shipped._ids, word_ids.WordPieces)


def test_word_by_word_ids_are_the_tokenizers_own(shipped: encoder.Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every routing_eval prompt and each view the fast path reads of it: the same ids, in order — also while the
    memory of words starts afresh many times."""
    monkeypatch.setattr(word_ids, "MEMO_WORDS", 50)
    pieces = word_ids.WordPieces(shipped.tokenizer)
    texts = prompts()
    assert len(texts) > 5000 and sum(len(t) > 800 for t in texts) > 300
    for text in texts:
        assert pieces(text) == shipped.tokenizer.encode(text, add_special_tokens=False).ids, text[:80]
    assert len(pieces._known) <= 51 + max(len(t.split()) for t in texts)
    for text in ("write a poem about the sea", EDGE_CASES[5], "x" * 900):
        assert shipped(text).tolist() == shipped._pool(shipped.tokenizer.encode(text, add_special_tokens=False).ids
                                                       ).tolist()


def _tokenizer_file(shipped: encoder.Encoder, tmp_path: Path, extra_token: str | None) -> Path:
    data = json.loads(shipped.tokenizer.to_str())
    if extra_token is not None:
        data["model"]["vocab"][extra_token] = len(data["model"]["vocab"])
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    return path


def test_a_vocabulary_that_could_merge_across_words_is_read_whole(shipped: encoder.Encoder, tmp_path: Path) -> None:
    """A token holding "▁" after another character ("of▁the", as vocabularies trained across spaces have) would let
    BPE merge across a word's start: such a tokenizer is not read word by word, and the encoder asks it for the
    whole message."""
    plain = _tokenizer_file(shipped, tmp_path, None)
    assert word_ids.word_separable(Tokenizer.from_file(str(plain)), plain)
    across = _tokenizer_file(shipped, tmp_path, "of▁the")
    tokenizer = Tokenizer.from_file(str(across))
    assert not word_ids.word_separable(tokenizer, across)
    quoted = _tokenizer_file(shipped, tmp_path, 'say"▁hi')  # a quote inside a token, escaped in the file
    assert not word_ids.word_separable(Tokenizer.from_file(str(quoted)), quoted)
    built = encoder.Encoder(shipped.table, across)
    assert built._ids is None
    text = "write a poem about the sea"
    assert built(text).tolist() == shipped(text).tolist()


def test_a_tokenizer_that_splits_words_itself_is_read_whole(shipped: encoder.Encoder, tmp_path: Path) -> None:
    path = _tokenizer_file(shipped, tmp_path, None)
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    assert not word_ids.word_separable(tokenizer, path)
    other = Tokenizer.from_file(str(path))
    other.normalizer = None
    assert not word_ids.word_separable(other, path)
