"""Embeddings wire formats: OpenAI's ``POST /v1/embeddings`` and Ollama's ``POST /api/embed`` and (legacy)
``/api/embeddings`` — validate a body, make the :class:`ChatRequest` that carries its texts, render the vectors.

Shapes: platform.openai.com/docs/api-reference/embeddings/create (``input`` a string, a list of strings, or token
arrays; ``encoding_format`` ``float`` or ``base64`` — the ``openai`` Python SDK asks for base64 unless told, and
decodes little-endian float32s; ``dimensions``; answer ``{object: "list", data: [{object: "embedding", index,
embedding}], model, usage: {prompt_tokens, total_tokens}}``) and github.com/ollama/ollama docs/api.md ("Generate
Embeddings": ``input`` a string or a list, answer ``embeddings`` and ``prompt_eval_count``; "Generate Embedding",
superseded: ``prompt`` → ``embedding``). An empty Ollama input is Ollama's way to load the model: answered with no
vectors, routed nowhere.

Token arrays are refused, by name: they are ids of the client's tokenizer — LangChain's ``OpenAIEmbeddings`` sends
tiktoken's unless ``check_embedding_ctx_length=False`` (danny-avila/rag_api#115, arm/metis#317: llama.cpp answers
"Prompt contains invalid tokens") — which no model here reads as the same text.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from modelyard.gateway.wire import BadRequest, _In, bad_body
from modelyard.types import ChatRequest, EmbedInput, Message, Usage

#: texts one request may carry: OpenAI's bound ("any array must be 2048 dimensions or less")
MAX_INPUTS = 2048
#: characters of all texts together (OpenAI: 300,000 tokens summed across inputs; ~4 characters a token)
MAX_CHARS = 1_200_000
#: the widest vector a client may ask for (today's widest embedding models answer 4,096)
MAX_DIMENSIONS = 16384
LATEST = ":latest"
_INPUT = {"anyOf": [{"type": "string", "minLength": 1},
                   {"type": "array", "minItems": 1, "maxItems": MAX_INPUTS,
                    "items": {"type": "string", "minLength": 1}}],
          "description": "a text, or a list of texts, to embed (token arrays are refused)"}
_TOKENS = ("token ids: they are in the client's tokenizer, which no model here shares (LangChain's OpenAIEmbeddings "
           "sends tiktoken's unless check_embedding_ctx_length=False): send the texts")


class EmbeddingsBody(_In):
    """OpenAI's and ``/api/embed``'s fields (Ollama's ``truncate``, ``options`` and ``keep_alive`` are the configured
    model's to set: ignored, as unknown fields are)."""

    model: str = Field(min_length=1)
    #: read by :func:`texts_of` (its errors name the item); the schema says what it takes
    input: Annotated[Any, WithJsonSchema(_INPUT)]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1, le=MAX_DIMENSIONS)
    #: the name as the client sent it (Ollama echoes it verbatim)
    asked: SkipJsonSchema[str] = Field(default="", exclude=True)


class OllamaEmbedBody(EmbeddingsBody):
    """``/api/embed``: no ``input`` is Ollama's load (no vectors)."""

    input: Any = None


class OllamaLegacyBody(_In):
    model: str = Field(min_length=1)
    prompt: Any = None
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
    body: EmbeddingsBody = _parsed(OllamaEmbedBody, raw)
    body.model = body.model.removesuffix(LATEST)
    body.input = texts_of(body.input, ollama=True)
    return body


def parse_ollama_legacy_body(raw: bytes) -> OllamaLegacyBody:
    body: OllamaLegacyBody = _parsed(OllamaLegacyBody, raw)
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


def texts_of(value: Any, *, ollama: bool) -> tuple[str, ...]:
    """The texts of ``input``; a 400 naming the first item that is none. Ollama's empty input (``""`` or ``[]``) is
    no texts (a load); OpenAI's is refused, as its API refuses it."""
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
    if len(value) > MAX_INPUTS:
        raise BadRequest(f"input: {len(value):,} texts, more than the {MAX_INPUTS} one request may carry: send them "
                         "in batches", "input")
    if not ollama and value and all(type(v) is int for v in value):
        raise BadRequest("input is a list of " + _TOKENS, "input")
    for i, item in enumerate(value):
        if isinstance(item, list) and not ollama and all(type(v) is int for v in item):
            raise BadRequest(f"input[{i}] is a list of " + _TOKENS, f"input[{i}]")
        if not isinstance(item, str):
            raise BadRequest(f"input[{i}]: expected a string, not {_kind(item)}", f"input[{i}]")
        if not item:
            raise BadRequest(f"input[{i}]: an empty string (a model embeds text)", f"input[{i}]")
    if sum(map(len, value)) > MAX_CHARS:
        raise BadRequest(f"input: {sum(map(len, value)):,} characters in all, more than the {MAX_CHARS:,} one request "
                         "may carry: send them in batches", "input")
    return tuple(value)


def embed_request(texts: tuple[str, ...], dimensions: int | None = None) -> ChatRequest:
    """The request the router walks: the texts on ``embed``; as ``messages``, the longest text, which the context
    check weighs (each text is embedded apart) and the log keeps as the prompt."""
    longest = max(texts, key=len, default="")
    return ChatRequest([Message("user", longest)], embed=EmbedInput(texts, dimensions))


def to_embed_request(body: EmbeddingsBody) -> ChatRequest:
    return embed_request(body.input, body.dimensions)


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
