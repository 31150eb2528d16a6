"""The routing log's note of an embeddings answer sent in several calls ("embedded in 3 calls of at most 32 texts …")
says the count the provider cut the texts into, not a second cut made just for the note.

Was: router/embedding.py ``answer_note`` ran ``batches()`` over every text again on each answer (estimating each
text's tokens anew: about 1 ms at OpenAI's bound of 2,048 inputs a call, platform.openai.com/docs/api-reference/
embeddings/create) only to count them. The server here is text-embeddings-inference's bound of 32 texts a call (the
fake's ``max_client_batch``: its 422 "batch size 70 > maximum allowed batch size 32", cited in
tests/gateway/test_embeddings_batches.py). The note's text is unchanged; the cut is made once a request. Failed on the
old code (two cuts).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelyard.providers import embed_batches
from modelyard.router import embedding
from tests.gateway.harness import GatewayServer
from tests.gateway.test_embeddings_batches import TEXTS, _config, _rows, tei  # noqa: F401


def test_the_texts_are_cut_once_and_the_note_says_the_providers_count(tmp_path, tei,  # noqa: F811
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cuts: list[int] = []
    cut = embed_batches.batches

    def counted(*args: Any) -> Any:
        parts = cut(*args)
        cuts.append(len(parts))
        return parts

    monkeypatch.setattr(embed_batches, "batches", counted)
    monkeypatch.setattr(embedding, "batches", counted, raising=False)  # where the note cut them again
    with GatewayServer(_config(tmp_path, tei.url, max_embed_batch=32)) as gw:
        r = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": TEXTS}, timeout=15)
        assert r.status_code == 200, r.text
        (row,) = _rows(gw)
    assert cuts == [3]
    assert row[3] == "embedded in 3 calls of at most 32 texts and 300,000 tokens, one after another"
