"""Embeddings wire formats: OpenAI's ``POST /v1/embeddings`` and Ollama's ``POST /api/embed`` and (legacy)
``/api/embeddings`` — validate a body, make the :class:`ChatRequest` that carries its texts, render the vectors.

Shapes: platform.openai.com/docs/api-reference/embeddings/create (``input`` a string, a list of strings, or token
arrays; ``encoding_format`` ``float`` or ``base64`` — the ``openai`` Python SDK asks for base64 unless told, and
decodes little-endian float32s; ``dimensions``; answer ``{object: "list", data: [{object: "embedding", index,
embedding}], model, usage: {prompt_tokens, total_tokens}}``) and github.com/ollama/ollama docs/api.md ("Generate
Embeddings": ``input`` a string or a list, answer ``embeddings`` and ``prompt_eval_count``; "Generate Embedding",
superseded: ``prompt`` → ``embedding``). An empty Ollama input is Ollama's way to load the model: answered with no
vectors, routed nowhere.

Token arrays (``input`` a list of integers, or a list of them) are taken, as OpenAI's API takes them: LangChain's
``OpenAIEmbeddings`` sends tiktoken's ids unless ``check_embedding_ctx_length=False``
(danny-avila/rag_api#161, huggingface/text-embeddings-inference#273). They go on as they came to a backend that takes
them (OpenAI-compatible servers: OpenAI, vLLM, llama-server); Ollama's API takes text only (ollama/ollama#5907) and
refuses the attempt. The ids are the client's tokenizer's: a model with another vocabulary reads other text
(llama.cpp's "Prompt contains invalid tokens" where they run past it, arm/metis#317) — the README says so.
On Ollama's own endpoints (``/api/embed``) ``input`` is text, as Ollama's clients send it.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from modelyard.gateway.ollama_duration import check_keep_alive
from modelyard.gateway.wire import BadRequest, _In, bad_body
from modelyard.types import ChatRequest, EmbedInput, Message, Usage

#: texts one request may carry: OpenAI's bound ("any array must be 2048 dimensions or less")
MAX_INPUTS = 2048
#: characters of all texts together (OpenAI: 300,000 tokens summed across inputs; ~4 characters a token)
MAX_CHARS = 1_200_000
#: the widest vector a client may ask for (today's widest embedding models answer 4,096)
MAX_DIMENSIONS = 16384
LATEST = ":latest"
_IDS = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}}
_INPUT = {"anyOf": [{"type": "string", "minLength": 1},
                   {"type": "array", "minItems": 1, "maxItems": MAX_INPUTS,
                    "items": {"type": "string", "minLength": 1}}, _IDS,
                   {"type": "array", "minItems": 1, "maxItems": MAX_INPUTS, "items": _IDS}],
          "description": "a text, a list of texts, or token ids (a list of integers, or a list of them) to embed"}
#: token ids one request may carry in all (OpenAI: "300,000 tokens summed across all inputs in a single request")
MAX_TOKEN_IDS = 300_000
#: the largest token id taken (a signed 32-bit integer, what llama.cpp's and vLLM's ids are)
MAX_TOKEN_ID = 2**31 - 1


class EmbeddingsBody(_In):
    """OpenAI's and ``/api/embed``'s fields (Ollama's ``options`` are the configured model's to set: ignored, as
    unknown fields are; its ``keep_alive`` is checked, :class:`OllamaEmbedBody`)."""

    model: str = Field(min_length=1)
    #: read by :func:`texts_of` (its errors name the item); the schema says what it takes
    input: Annotated[Any, WithJsonSchema(_INPUT)]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1, le=MAX_DIMENSIONS)
    #: the name as the client sent it (Ollama echoes it verbatim)
    asked: SkipJsonSchema[str] = Field(default="", exclude=True)


class OllamaEmbedBody(EmbeddingsBody):
    """``/api/embed``: no ``input`` is Ollama's load (no vectors). ``truncate`` (Ollama's default: true) false asks
    for a 400 "the input length exceeds the context length" rather than vectors of a text cut to the context."""

    input: Any = None
    truncate: bool | None = None
    #: read only to be checked as ``/api/chat``'s is (ollama_duration.py): how long the model stays loaded is the
    #: configured model's to decide. Was taken unread, whatever it said ("5 minutes", ``true``)
    keep_alive: Any = None


class OllamaLegacyBody(_In):
    model: str = Field(min_length=1)
    prompt: Any = None
    keep_alive: Any = None  # checked, as /api/embed's is
    asked: SkipJsonSchema[str] = Field(default="", exclude=True)


def _parsed(cls: type[Any], raw: bytes) -> Any:
    try:
        body = cls.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None
    body.asked = body.model
    return body


def parse_embeddings_body(raw: bytes) -> EmbeddingsBody:
    body: EmbeddingsBody = _parsed(EmbeddingsBody, raw)
    body.input = texts_of(body.input, ollama=False)
    return body


def parse_ollama_embed_body(raw: bytes) -> EmbeddingsBody:
    body: OllamaEmbedBody = _parsed(OllamaEmbedBody, raw)
    check_keep_alive(body.keep_alive)
    body.model = body.model.removesuffix(LATEST)
    body.input = texts_of(body.input, ollama=True)
    return body


def parse_ollama_legacy_body(raw: bytes) -> OllamaLegacyBody:
    body: OllamaLegacyBody = _parsed(OllamaLegacyBody, raw)
    check_keep_alive(body.keep_alive)
    body.model = body.model.removesuffix(LATEST)
    if body.prompt is None or body.prompt == "":
        body.prompt = ()
    elif isinstance(body.prompt, str):
        body.prompt = (body.prompt,)
    else:
        raise BadRequest(f"prompt: expected a string, not {_kind(body.prompt)}", "prompt")
    return body


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(type(value)) or \
        f"a {type(value).__name__}"


def texts_of(value: Any, *, ollama: bool) -> tuple[str | tuple[int, ...], ...]:
    """The texts (or token ids: OpenAI's only) of ``input``; a 400 naming the first item that is neither. Ollama's
    empty input (``""`` or ``[]``) is no texts (a load); OpenAI's is refused, as its API refuses it."""
    if value is None and ollama:
        return ()
    if isinstance(value, str):
        if value == "" and not ollama:
            raise BadRequest("input: cannot be an empty string", "input")
        return (value,) if value else ()
    if not isinstance(value, list):
        raise BadRequest("input: expected a string or a list of strings, not " + _kind(value), "input")
    if not value and not ollama:
        raise BadRequest("input: an empty list: give at least one text", "input")
    if not ollama and value and all(map(_is_id, value)):
        # one input as token ids, before the count of inputs: its length is its tokens (the OpenAI cookbook's
        # truncate_text_tokens sends 8,191 of them), which was refused as "8,191 texts, more than the 2048"
        return (_token_ids(value, "input"),)
    if len(value) > MAX_INPUTS:
        raise BadRequest(f"input: {len(value):,} texts, more than the {MAX_INPUTS} one request may carry: send them "
                         "in batches", "input")
    ids = 0
    items: list[str | tuple[int, ...]] = []
    for i, item in enumerate(value):
        if isinstance(item, list) and not ollama:
            items.append(tokens := _token_ids(item, f"input[{i}]"))  # 7.0 as 7: llama-server takes integers only
            ids += len(tokens)
            continue
        if not isinstance(item, str):
            raise BadRequest(f"input[{i}]: expected a string, not {_kind(item)}", f"input[{i}]")
        if not item:
            raise BadRequest(f"input[{i}]: an empty string (a model embeds text)", f"input[{i}]")
        items.append(item)
    if ids > MAX_TOKEN_IDS:
        raise BadRequest(f"input: {ids:,} token ids in all, more than the {MAX_TOKEN_IDS:,} one request may carry: "
                         "send them in batches", "input")
    chars = sum(len(item) for item in value if isinstance(item, str))
    if chars > MAX_CHARS:
        raise BadRequest(f"input: {chars:,} characters in all, more than the {MAX_CHARS:,} one request "
                         "may carry: send them in batches", "input")
    return tuple(items)


def _token_ids(value: list[Any], field: str) -> tuple[int, ...]:
    """One input given as token ids: a non-empty list of integers, none negative (OpenAI's schema: "array of
    integers", minItems 1)."""
    if not value:
        raise BadRequest(f"{field}: an empty list of token ids", field)
    for j, v in enumerate(value):
        if not _is_id(v) or not 0 <= v <= MAX_TOKEN_ID:
            raise BadRequest(f"{field}[{j}]: a token id is a whole number from 0 to {MAX_TOKEN_ID}, not {v!r:.40}",
                             field)
    if len(value) > MAX_TOKEN_IDS:
        raise BadRequest(f"{field}: {len(value):,} token ids, more than the {MAX_TOKEN_IDS:,} one request may carry",
                         field)
    return tuple(int(v) for v in value)


def _is_id(value: Any) -> bool:
    """An integer, as JSON Schema counts them: ``7`` or ``7.0`` (a number whose fraction is zero), never a boolean."""
    return type(value) is int or (type(value) is float and value.is_integer())


def embed_request(texts: tuple[str | tuple[int, ...], ...], dimensions: int | None = None,
                  truncate: bool | None = None) -> ChatRequest:
    """The request the router walks: the texts on ``embed`` (the context check weighs the largest of them, each being
    embedded apart: tokens.request_tokens); as ``messages``, the longest text, which the log keeps as the prompt
    (token ids: how many, not the ids)."""
    longest = max(texts, key=len, default="")
    shown = longest if isinstance(longest, str) else f"[{len(longest):,} token ids]"
    return ChatRequest([Message("user", shown)], embed=EmbedInput(texts, dimensions, truncate))


def to_embed_request(body: EmbeddingsBody) -> ChatRequest:
    return embed_request(body.input, body.dimensions, body.truncate if isinstance(body, OllamaEmbedBody) else None)


def to_legacy_request(body: OllamaLegacyBody) -> ChatRequest:
    return embed_request(body.prompt)


def encoded(vector: list[float]) -> str:
    """OpenAI's ``base64``: the vector as little-endian float32s, base64-encoded (what the SDKs decode)."""
    floats = array("f", vector)
    if sys.byteorder != "little":  # pragma: no cover - every machine this runs on is little-endian
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode("ascii")


def openai_embeddings(vectors: list[list[float]], model: str, usage: Usage, fmt: str | None) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": encoded(v) if fmt == "base64" else v}
            for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}}


def ollama_embed(vectors: list[list[float]], model: str, usage: Usage, total_ns: int) -> dict[str, Any]:
    return {"model": model, "embeddings": vectors, "total_duration": total_ns, "load_duration": 0,
            "prompt_eval_count": usage.input_tokens}
