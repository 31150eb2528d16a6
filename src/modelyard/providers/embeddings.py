"""Embeddings on the provider side: the checks every backend's vectors pass, and the refusal of a backend that
cannot embed.

A backend that embeds (an OpenAI-compatible ``/v1/embeddings``, Ollama's ``/api/embed``) turns its answer into
:func:`answer`'s three chunks: one ``embedding`` chunk with the server's vectors as it sent them, in order, then
``usage`` and ``done``. :func:`checked_vectors` guards that stream (``Provider.chunks``): :func:`vectors_from` reads
any shape a server sends (floats, integers, OpenAI's base64) and refuses
what is no vector — NaN, a string of words, one vector short, vectors of different lengths — as
``malformed_response``, so the chain moves on and nothing downstream sees it. A backend that has no embeddings
(Anthropic's API, the embedded chat model) refuses the attempt as ``bad_request``: the chain moves on and
nothing cools down, as a chat-only backend refuses a raw prompt (providers/base.py).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from array import array
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from modelyard.errors import ProviderError, Reason
from modelyard.providers.shapes import malformed, token_count
from modelyard.tokens import embed_input_tokens
from modelyard.types import Chunk, EmbedInput, Usage

if TYPE_CHECKING:  # providers.http imports base, which imports this module
    from modelyard.config.schema import Timeouts
    from modelyard.providers.http import Extract, HttpClient, StreamResponse

#: bytes one vector may take in a server's JSON answer: 16,384 floats (the widest a client may ask for) written out
#: at ~25 characters each, and some. An answer is bounded by the model's ``max_response_mb`` or by this per text,
#: whichever is larger (1,000 texts of 1,536 floats, LangChain's default batch, are ~30 MB of JSON: past the 8 MB
#: default meant for a text answer)
PER_VECTOR = 512 * 1024

#: a server's words for "this model (or server) does not embed": llama-server without ``--embeddings`` answers 501
#: ``not_supported_error`` "This server does not support embeddings. Start it with `--embeddings`"
#: (ggml-org/llama.cpp#14223); Ollama's engine "this model does not support embeddings" (ollama/ollama#9742)
_CANNOT = re.compile(r"(?i)(does not|doesn't|do not) support embedding|not_supported|--embeddings?\b|"
                     r"embeddings? (are|is) not (supported|enabled)")
#: a server's words for "this text is too long for the model" — a property of the input, which no retry and no
#: cooldown mend: llama-server's 500 "input (596 tokens) is too large to process. increase the physical batch size"
#: (ggml-org/llama.cpp#7389, containers/ramalama#2852), Ollama's 400 "the input length exceeds the context length"
_TOO_LONG = re.compile(r"(?i)too large to process|physical batch size|exceeds the (maximum )?context length")
#: a 404 that names the model: it is not on that server (a property of the setup: the model cools down, as for chat)
_MODEL_MISSING = re.compile(r"(?i)model\b.*\bnot found|not found.*\bmodel\b|no such model|model_not_found")


def body_limit(response_limit: int, embed: EmbedInput) -> int:
    """Bytes of the server's answer read at most (see :data:`PER_VECTOR`)."""
    return max(response_limit, len(embed.texts) * PER_VECTOR)


async def cannot_embed(why: str) -> AsyncGenerator[Chunk, None]:
    """The attempt refused as ``bad_request``: this backend has no embeddings; the chain moves on, nothing cools."""
    raise ProviderError(Reason.BAD_REQUEST, why, kind_refused=True)
    yield  # pragma: no cover - an async generator


def refusal(error: ProviderError) -> ProviderError:
    """A server's refusal of an embeddings call, judged for what it says of the model: a server or model that does
    not embed (a 501, llama-server's "Start it with --embeddings", a 404/405 for the path itself) is ``bad_request``
    — the chain moves on and the model keeps serving chat — not a server_error retried and counted against its
    health, nor a missing model cooled down for minutes; a text too long for it (llama-server's 500) is a
    ``bad_request`` too, not retried. A 404 that names the model missing stays what it is."""
    status = error.status
    if error.reason is Reason.BAD_REQUEST:
        return error
    if _TOO_LONG.search(error.message):  # the model embeds, not this text: the chain moves on, nothing cools
        return ProviderError(Reason.BAD_REQUEST, f"a text is too long for this model: {error.message}",
                             status=status, final=True)
    if _CANNOT.search(error.message) or status == 501 or (
            status in (404, 405) and not _MODEL_MISSING.search(error.message)):
        return ProviderError(Reason.BAD_REQUEST, f"this model does not embed here: {error.message}", status=status,
                             kind_refused=True)
    return error


def request_body(model_id: str, embed: EmbedInput) -> dict[str, Any]:
    """What both wire protocols take: the model, the inputs as a list (token ids as lists of integers, as OpenAI's
    API takes them), ``dimensions`` where the client asked."""
    body: dict[str, Any] = {"model": model_id,
                            "input": [t if type(t) is str else list(t) for t in embed.texts]}
    if embed.dimensions is not None:
        body["dimensions"] = embed.dimensions
    return body


def input_tokens(embed: EmbedInput) -> int:
    """The inputs' tokens, where a server reports none: estimated for a text, counted for token ids."""
    return sum(map(embed_input_tokens, embed.texts))


def texts_only(embed: EmbedInput, backend: str) -> None:
    """Refuse token ids for a backend whose API takes text only (Ollama's ``/api/embed``: 400 "invalid input type",
    ollama/ollama#5907): refused for this attempt (``bad_request``, nothing cools), the chain moves on to a model that
    takes them. Not detokenized: the ids are in the client's tokenizer (LangChain's tiktoken, cl100k_base for any
    model it does not know), which is not the model's, and no tokenizer of the client's ships here."""
    if embed.has_tokens:
        raise ProviderError(Reason.BAD_REQUEST, f"token ids cannot be sent to {backend}: its API takes text only "
                            "(send the texts — LangChain's OpenAIEmbeddings: check_embedding_ctx_length=False)")


async def posted(client: HttpClient, path: str, body: dict[str, Any], timeouts: Timeouts, extract: Extract,
                 limit: int, what: str) -> dict[str, Any]:
    """``body`` posted, and the server's whole JSON object (a body labelled otherwise is read as what it is: an HTML
    page is malformed); its refusal judged by :func:`refusal`."""
    try:
        async with client.stream(path, body, timeouts, extract, limit=limit) as resp:
            data = await _document(resp, what)
    except ProviderError as exc:
        raise refusal(exc) from None
    if not isinstance(data, dict):
        raise malformed(f"{what} is {type(data).__name__}, not an object")
    return data


async def _document(resp: StreamResponse, what: str) -> Any:
    from modelyard.providers.http import loads  # see TYPE_CHECKING above

    async for events in resp.whole_json():
        for field, payload in events:
            if field == "data" and payload.strip() != "[DONE]":
                return loads(payload, what)
    raise malformed(f"{what} was empty")


def _decoded(text: str, where: str) -> list[float]:
    """OpenAI's ``encoding_format: base64``: little-endian float32s, base64-encoded."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise malformed(f"{where} is a string that is not base64") from None
    if len(raw) % 4:
        raise malformed(f"{where}: {len(raw)} bytes of base64 are no whole float32s")
    floats = array("f")
    floats.frombytes(raw)
    if floats.itemsize != 4:  # pragma: no cover - C float is 4 bytes on every platform Python runs on
        raise malformed("float32 is not 4 bytes here")
    return floats.tolist()


def vector(value: Any, where: str) -> list[float]:
    """One vector as floats: a list of numbers (integers made floats), or a base64 string; never empty, NaN or
    infinite, and no booleans or strings among the numbers."""
    if isinstance(value, str):
        value = _decoded(value, where)
    if type(value) is list and value and type(value[0]) is list:
        # a vector per token: a model without pooling (a chat model's GGUF behind llama_cpp.server or llama-server
        # --pooling none answers so) — the same for every text, so the model's property, not its health
        raise ProviderError(Reason.BAD_REQUEST, f"{where} is {len(value)} vectors, one per token: the model pools no "
                            "text into one vector (a chat model, or a server without pooling): it does not embed "
                            "texts", kind_refused=True)
    if type(value) is not list or not value:
        raise malformed(f"{where} is {'an empty list' if value == [] else type(value).__name__}, not a vector")
    if not all(type(x) is float for x in value):
        if not all(type(x) is int or type(x) is float for x in value):
            bad = next(x for x in value if type(x) not in (int, float))
            raise malformed(f"{where} holds a {type(bad).__name__}, not a number")
        value = [float(x) for x in value]
    if not all(map(math.isfinite, value)):
        raise malformed(f"{where} holds NaN or infinity")
    return value


def vectors_from(items: Any, embed: EmbedInput, where: str) -> list[list[float]]:
    """A vector per text, in order, all of one length — the length asked, when the client asked one."""
    if not isinstance(items, list):
        raise malformed(f"{where} is {type(items).__name__}, not a list of vectors")
    if len(items) != len(embed.texts):
        raise malformed(f"{where} holds {len(items)} vectors for {len(embed.texts)} texts")
    vectors = [vector(item, f"{where}[{i}]") for i, item in enumerate(items)]
    width = len(vectors[0]) if vectors else 0
    if any(len(v) != width for v in vectors):
        raise malformed(f"{where}: vectors of different lengths in one answer")
    if embed.dimensions is not None and width != embed.dimensions:
        if width < embed.dimensions:
            raise ProviderError(Reason.BAD_REQUEST, f"the model's vectors have {width} dimensions, fewer than the "
                                f"{embed.dimensions} asked")
        vectors = [shortened(v, embed.dimensions) for v in vectors]
    return vectors


def shortened(vector: list[float], dimensions: int) -> list[float]:
    """The first ``dimensions`` of a vector, scaled back to unit length: what Ollama's ``dimensions`` does for any
    model, and OpenAI's for its Matryoshka-trained ones — done here for a server that reads no ``dimensions``
    (llama-server answers the model's whole width), so the client's vector store gets the length it was built for."""
    head = vector[:dimensions]
    norm = math.sqrt(math.fsum(x * x for x in head))
    return [x / norm for x in head] if norm else head


def ordered(data: Any, embed: EmbedInput, where: str) -> list[Any]:
    """The ``embedding`` of each item of an OpenAI-shaped ``data`` list, in the order of their ``index`` (servers
    answer in order, but the field is what says it); an item without an index keeps its place."""
    if not isinstance(data, list):
        raise malformed(f"{where} is {type(data).__name__}, not a list")
    if not all(isinstance(item, dict) for item in data):
        raise malformed(f"{where} holds an item that is not an object")
    indexes = [item.get("index") for item in data]
    if all(type(i) is int for i in indexes) and sorted(indexes) == list(range(len(data))):
        data = sorted(data, key=lambda item: item["index"])
    elif any(i is not None for i in indexes) and len(set(map(repr, indexes))) != len(indexes):
        raise malformed(f"{where}: item indexes repeat")
    return [item.get("embedding") for item in data]


def answer(vectors: Any, tokens: Any) -> list[Chunk]:
    """The chunks of an embeddings answer: the vectors as the server sent them (checked by :func:`checked_vectors`),
    the prompt's tokens (the server's count; a garbage count is 0), ``done``."""
    return [Chunk("embedding", vectors=vectors), Chunk("usage", usage=Usage(token_count(tokens), 0)),
            Chunk("done", stop_reason="stop")]


async def checked_vectors(chunks: AsyncGenerator[Chunk, None], embed: EmbedInput) -> AsyncGenerator[Chunk, None]:
    """Every backend's embeddings stream, guarded as :func:`~modelyard.providers.shapes.checked` guards an
    answer's: exactly one ``embedding`` chunk of a vector per text, then ``done``; usage counted in ints."""
    seen = False
    try:
        async for chunk in chunks:
            if chunk.kind == "embedding":
                if seen:
                    raise malformed("two sets of vectors in one answer")
                seen = True
                yield Chunk("embedding", vectors=vectors_from(chunk.vectors, embed, "the vectors"))
            elif chunk.kind == "usage":
                usage = chunk.usage
                yield Chunk("usage", usage=Usage(token_count(getattr(usage, "input_tokens", 0)), 0))
            elif chunk.kind == "done":
                if not seen:
                    raise malformed("the embeddings answer ended without vectors")
                yield Chunk("done", stop_reason="stop")
                return
            else:
                raise malformed(f"a {chunk.kind!r} chunk in an embeddings answer")
    finally:
        await chunks.aclose()
    raise ProviderError(Reason.CONNECTION_DROPPED, "the embeddings answer ended without its end")
