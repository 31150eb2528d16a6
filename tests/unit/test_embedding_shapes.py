"""Provider data of any shape, read as vectors or refused as ``malformed_response`` — never a TypeError later — and a
server's "I do not embed" judged as the model's property (``bad_request``: the chain moves on, nothing cools down).

Sources of the shapes: OpenAI's ``encoding_format: base64`` (little-endian float32s, as the ``openai`` SDK decodes
them: platform.openai.com/docs/api-reference/embeddings/create); llama-server's 501 ``not_supported_error``
"This server does not support embeddings. Start it with `--embeddings`" (ggml-org/llama.cpp#14223); Ollama's
"this model does not support embeddings" (ollama/ollama#9742); NaN, which Python's ``json`` (the fallback parser)
reads from a server that writes it.
"""

from __future__ import annotations

import asyncio
import base64
import struct

import pytest

from modelyard.errors import ProviderError, Reason
from modelyard.providers.embeddings import checked_vectors, ordered, refusal, vector, vectors_from
from modelyard.types import Chunk, EmbedInput, Usage

TWO = EmbedInput(("a", "b"))


def test_base64_floats_and_integers_read_as_floats():
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    assert vector(packed, "v") == [0.5, -1.0, 2.0]
    assert vector([1, 2.5], "v") == [1.0, 2.5] and all(type(x) is float for x in vector([1, 2], "v"))


@pytest.mark.parametrize("value, words", [
    ([], "an empty list"), ([True, 1.0], "holds a bool"), (["0.1"], "holds a str"), ([float("nan")], "NaN"),
    ([1e308 * 10], "NaN or infinity"), ({"x": 1}, "dict, not a vector"), (None, "NoneType"),
    ("not base64!", "not base64"), (base64.b64encode(b"abc").decode(), "no whole float32s"),
])
def test_what_is_no_vector_is_malformed(value, words):
    with pytest.raises(ProviderError) as err:
        vector(value, "data[0]")
    assert err.value.reason is Reason.MALFORMED_RESPONSE and words in err.value.message


def test_a_vector_per_token_is_the_models_refusal_not_its_failure():
    """llama_cpp.server serving a chat GGUF with ``--embedding true`` answers ``embedding: [[…], […]]``, a vector per
    token (no pooling; seen on the real server, tests/gateway/test_embeddings_real.py): it never embeds a text."""
    with pytest.raises(ProviderError) as err:
        vector([[0.1, 0.2], [0.3, 0.4]], "data[0]")
    assert err.value.reason is Reason.BAD_REQUEST and "one per token" in err.value.message


def test_a_vector_per_text_of_one_length_and_the_asked_dimensions():
    assert vectors_from([[1.0], [2.0]], TWO, "v") == [[1.0], [2.0]]
    with pytest.raises(ProviderError, match="holds 1 vectors for 2 texts"):
        vectors_from([[1.0]], TWO, "v")
    with pytest.raises(ProviderError, match="different lengths"):
        vectors_from([[1.0], [2.0, 3.0]], TWO, "v")
    with pytest.raises(ProviderError) as err:
        vectors_from([[1.0, 2.0], [2.0, 3.0]], EmbedInput(("a", "b"), dimensions=4), "v")
    assert err.value.reason is Reason.BAD_REQUEST and "2 dimensions, fewer than the 4 asked" in err.value.message


def test_a_vector_wider_than_asked_is_cut_and_scaled_back_to_unit_length():
    """As Ollama's ``dimensions`` does (and OpenAI's for Matryoshka models), for a server that ignores it."""
    cut = vectors_from([[3.0, 4.0, 12.0], [0.0, 0.0, 1.0]], EmbedInput(("a", "b"), dimensions=2), "v")
    assert cut == [[0.6, 0.8], [0.0, 0.0]]


def test_items_come_back_in_the_order_of_their_index():
    data = [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]
    assert ordered(data, TWO, "data") == [[1.0], [2.0]]
    with pytest.raises(ProviderError, match="indexes repeat"):
        ordered([{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}], TWO, "data")
    with pytest.raises(ProviderError, match="not an object"):
        ordered([[1.0], [2.0]], TWO, "data")


@pytest.mark.parametrize("error, reason", [
    (ProviderError(Reason.SERVER_ERROR, "This server does not support embeddings. Start it with `--embeddings`",
                   status=501), Reason.BAD_REQUEST),
    (ProviderError(Reason.SERVER_ERROR, "Ollama: this model does not support embeddings", status=500),
     Reason.BAD_REQUEST),
    (ProviderError(Reason.MODEL_MISSING, "404 page not found", status=404), Reason.BAD_REQUEST),
    (ProviderError(Reason.MODEL_MISSING, 'model "nomic-embed-text" not found, try pulling it first', status=404),
     Reason.MODEL_MISSING),
    (ProviderError(Reason.SERVER_ERROR, "CUDA out of memory", status=500), Reason.SERVER_ERROR),
])
def test_a_server_that_does_not_embed_refuses_as_bad_request(error, reason):
    assert refusal(error).reason is reason


def _run(chunks: list[Chunk], embed: EmbedInput = TWO) -> list[Chunk]:
    async def source():
        for c in chunks:
            yield c

    async def collect():
        return [c async for c in checked_vectors(source(), embed)]

    return asyncio.run(collect())


def test_the_guard_passes_one_set_of_vectors_and_counts_in_ints():
    out = _run([Chunk("embedding", vectors=[[1], [2]]), Chunk("usage", usage=Usage("7", None)),  # type: ignore[arg-type]
                Chunk("done")])
    assert out[0].vectors == [[1.0], [2.0]] and out[1].usage == Usage(7, 0) and out[2].stop_reason == "stop"


@pytest.mark.parametrize("chunks, words", [
    ([Chunk("done")], "ended without vectors"),
    ([Chunk("embedding", vectors=[[1.0], [2.0]]), Chunk("embedding", vectors=[[1.0], [2.0]])], "two sets"),
    ([Chunk("text", "hello")], "a 'text' chunk"),
    ([Chunk("embedding", vectors=[[1.0], [2.0]])], "ended without its end"),
])
def test_the_guard_refuses_what_is_no_embeddings_answer(chunks, words):
    with pytest.raises(ProviderError, match=words):
        _run(chunks)
