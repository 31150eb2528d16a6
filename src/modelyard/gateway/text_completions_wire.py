"""OpenAI's legacy text completions wire format (``POST /v1/completions``): a ``prompt`` (and a ``suffix``)
in, a provider-neutral :class:`ChatRequest` out; answers out as ``text_completion`` objects, whole or as SSE
chunks ending ``data: [DONE]``.

The shapes follow OpenAI's API reference for "Create completion" and the ``openai`` SDK's types
(``openai.types.Completion``, ``CompletionChoice``, ``CompletionCreateParams``; as summarised at
https://tessl.io/registry/tessl/pypi-openai/2.11.0/files/docs/completions.md): ``model``, ``prompt`` (a string,
a list of strings, a token array or a list of token arrays), ``suffix``, ``max_tokens``, ``temperature``,
``top_p``, ``stop``, ``stream``, ``stream_options``, ``echo``, ``logprobs``, ``n``, ``best_of``, ``seed``,
``user``, ``frequency_penalty``, ``presence_penalty``, ``logit_bias``; the answer ``{"id", "object":
"text_completion", "created", "model", "choices": [{"text", "index", "logprobs", "finish_reason"}], "usage"}``.

What this gateway does with them (a request asking for what it cannot do gets a 400 naming the field, never
a silent approximation):

- ``prompt``: a string, or a list of strings (LangChain's ``OpenAI`` LLM batches up to 20): each prompt is its own
  routed request (its own slot, fallback and log row; side by side within the first model's slots, streamed choice by
  choice with the later ones read ahead: ``prompt_batch.py``), answered as its own choice in the order sent, the usage
  their total. A token array is refused (the models behind the gateway have different tokenizers: ids mean nothing
  across a chain). The prompt (and a ``suffix``) is sent verbatim to a backend that takes prompts (an
  OpenAI-compatible ``/v1/completions``, Ollama's ``/api/generate`` with ``raw``, the embedded model's
  ``create_completion``: :class:`~modelyard.types.TextPrompt`); a chat-only backend (Anthropic's) gets it as the
  user's message, with a ``suffix`` as an instruction and the text with a marker (``fill_in.py``).
- ``max_tokens``: passed on; unset, the agent's ``max_tokens`` applies (as on every endpoint here), not
  OpenAI's 16. ``temperature`` passed on; ``stop`` sent to the model and cut here too (``stops.py``); ``echo``
  puts the prompt before the answer's text; ``stream_options.include_usage`` gives the usage chunk.
- ``n`` and ``best_of`` above 1 and any ``logprobs`` are refused. ``seed`` (Mistral's ``random_seed``), ``top_p``,
  the penalties and ``logit_bias`` are passed on where the backend takes them (``logit_bias``'s token ids are the
  tokenizer's of the model the client had in mind: a backend whose API has none, Ollama's or Anthropic's, is asked
  without it and the routing log says so). ``user`` is ignored.
- A reasoning model's thinking is not part of a text completion and is left out.

Mistral's ``POST /v1/fim/completions`` (Codestral's FIM API, which Continue's ``openai`` provider posts to: its
``_streamFim``, ``new URL("fim/completions", apiBase)``) takes ``prompt`` and ``suffix`` the same way and answers in
the chat completion's shape (``FIMCompletionResponse``: ``object: "chat.completion"``, ``choices[].message.content``;
streamed as ``chat.completion.chunk`` with ``delta.content``; api.mistral.ai's OpenAPI, as generated at
docs.rs/mistral-openapi-client FimApi.md). Its streamed usage rides on the finishing chunk: Continue reads
``choices[0]`` of every chunk, and a chunk without choices would break it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, WithJsonSchema

from modelyard.gateway.fill_in import fill_in_messages
from modelyard.gateway.wire import (
    BadRequest,
    LogitBias,
    Stops,
    StopsAndUsage,
    StreamOptions,
    bad_body,
    no_logprobs,
    stop_list,
    usage_out,
)
from modelyard.types import ChatRequest, ChatResponse, Message, TextPrompt, Usage

#: the finish reasons a text completion may end with (``CompletionChoice.finish_reason``)
STOP, LENGTH, CONTENT_FILTER = "stop", "length", "content_filter"


# what the OpenAPI document (openapi.py) says is accepted; checked by hand (parse_completion_body), so a token array,
# a batch or n=2 is refused naming what is not supported rather than with a type error
#: files one fill-in-the-middle may carry as context (input_extra): a bound on a body's work, not llama-server's
MAX_EXTRA_FILES = 256
#: the most prompts one request may batch (LangChain's OpenAI LLM sends 20 at a time): each is a routed request
MAX_PROMPTS = 64
_PROMPT_SCHEMA = WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {
    "type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": MAX_PROMPTS}]})
_ONE_OR_NULL = WithJsonSchema({"anyOf": [{"const": 1}, {"type": "null"}]})
_NULL_ONLY = WithJsonSchema({"type": "null"})


class ExtraFile(BaseModel):
    """One file of llama-server's ``input_extra`` (its ``/infill``: ``{"filename": string, "text": string}``, the
    filename optional — server.cpp handle_infill's checks)."""

    model_config = ConfigDict(extra="ignore")

    filename: str = ""
    text: str


class CompletionBody(BaseModel, StopsAndUsage):
    """The fields this endpoint reads; any other is ignored (see the module's docstring)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    prompt: Annotated[str | list[Any], _PROMPT_SCHEMA]
    suffix: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)  # passed on where the backend takes it (ChatRequest.top_p)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)  # passed on likewise
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    #: vLLM's and llama-server's completion endpoints take it (not OpenAI's): passed on likewise (wire.py's, as on chat)
    top_k: int | None = Field(None, ge=-1, le=2**63 - 1)
    min_p: float | None = Field(None, ge=0, le=1)  # theirs too (wire.py's, as on chat)
    repeat_penalty: float | None = Field(None, gt=0)
    logit_bias: LogitBias | None = None  # passed on as on chat (wire.py's)
    stop: Stops = None
    stream: bool | None = False  # null: the default (clients send their unset fields)
    stream_options: StreamOptions | None = None
    echo: bool | None = False
    #: passed on where the backend takes one (ChatRequest.seed); OpenAI's bounds (a 64-bit integer)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    logprobs: Annotated[int | None, _NULL_ONLY] = None
    n: Annotated[int | None, _ONE_OR_NULL] = None
    best_of: Annotated[int | None, _ONE_OR_NULL] = None
    #: other files as context for a fill-in-the-middle, in llama-server's ``/infill`` shape: passed on to a
    #: llama-server's ``/infill`` (llama_infill.py), left out elsewhere (no other API has the field)
    input_extra: list[ExtraFile] | None = Field(None, max_length=MAX_EXTRA_FILES)
    #: the prompts as strings, once checked (:func:`parse_completion_body`); no field of the request
    _texts: list[str] = PrivateAttr(default_factory=list)

    @property
    def text(self) -> str:
        return self._texts[0] if self._texts else ""

    @property
    def texts(self) -> list[str]:
        return self._texts


def parse_completion_body(raw: bytes) -> CompletionBody:
    """Validate the JSON body; the error names the first offending field, or what is not supported."""
    try:
        body = CompletionBody.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None
    body._texts = _prompt_texts(body.prompt)
    if not body.suffix and not all(body.texts):
        raise BadRequest("prompt: empty; send the text to complete", "prompt")
    for name, asked in (("n", body.n), ("best_of", body.best_of)):
        if asked is not None and asked != 1:
            raise BadRequest(f"{name}: one completion per request (got {asked}); several choices are not supported "
                             f"by this gateway: leave out {name} or send 1, and send more requests for more", name)
    if body.logprobs is not None:  # answered "logprobs": null, an evaluation harness would read no score
        raise no_logprobs("logprobs", "logprobs")
    return body


def _prompt_texts(prompt: str | list[Any]) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise BadRequest("prompt: empty list; send the text to complete", "prompt")
    if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt) or any(isinstance(p, list) for p in prompt):
        raise BadRequest("prompt: token arrays are not supported (the models behind this gateway have different "
                         "tokenizers); send the prompt as text", "prompt")
    if not all(isinstance(p, str) for p in prompt):
        raise BadRequest("prompt: expected a string or a list of strings", "prompt")
    if len(prompt) > MAX_PROMPTS:
        raise BadRequest(f"prompt: at most {MAX_PROMPTS} prompts per request (got {len(prompt)}); send the rest in "
                         "another request", "prompt")
    return [str(p) for p in prompt]


def to_chat_request(body: CompletionBody) -> ChatRequest:
    """The first prompt's request (:func:`prompt_request`)."""
    return prompt_request(body, body.text)


def prompt_request(body: CompletionBody, text: str) -> ChatRequest:
    """One prompt, to be sent verbatim where the backend takes prompts; its chat conversion beside it: the user's
    message, with a suffix the fill-in-the-middle instruction (``fill_in.py``)."""
    messages = fill_in_messages(text, body.suffix) if body.suffix else [Message("user", text)]
    extra = tuple((f.filename, f.text) for f in body.input_extra or ())
    return ChatRequest(messages=messages, max_tokens=body.max_tokens, temperature=body.temperature,
                       prompt=TextPrompt(text, body.suffix or "", extra=extra), seed=body.seed,
                       top_p=body.top_p, frequency_penalty=body.frequency_penalty,
                       presence_penalty=body.presence_penalty, top_k=body.top_k,
                       min_p=body.min_p, repeat_penalty=body.repeat_penalty, logit_bias=body.logit_bias or None,
                       stop=stop_list(body.stop))


class FimBody(CompletionBody):
    """Mistral's ``/v1/fim/completions`` (``FIMCompletionRequest``: ``model``, ``prompt``, ``suffix``, ``max_tokens``,
    ``min_tokens``, ``temperature``, ``top_p``, ``stream``, ``stop``, ``random_seed``); what it does not name is
    ignored, as on ``/v1/completions``."""

    prompt: Annotated[str, WithJsonSchema({"type": "string", "minLength": 1})]  # "" with a suffix is taken too
    random_seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # Mistral's name for ``seed``


def parse_fim_body(raw: bytes) -> CompletionBody:
    try:
        body = FimBody.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None
    body._texts = [body.prompt]
    body.echo = False  # no such field in Mistral's API
    if body.random_seed is not None:
        body.seed = body.random_seed
    if not body.prompt and not body.suffix:
        raise BadRequest("prompt: empty; send the text before the gap (and the suffix after it)", "prompt")
    return body


# -- answers ---------------------------------------------------------------------------------


def completion_finish(response: ChatResponse, stopped: bool) -> str:
    """``stopped``: the text was cut at one of the client's stop sequences (``stop``, whatever the model did after)."""
    if stopped:
        return STOP
    if response.truncated:
        return LENGTH
    if response.stop_reason in ("refusal", "content_filter"):
        return CONTENT_FILTER
    return STOP


def _envelope(request_id: str, created: int, model: str) -> dict[str, Any]:
    return {"id": f"cmpl-{request_id}", "object": "text_completion", "created": created, "model": model}


def _choice(text: str, finish: str | None, index: int = 0) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}


#: one prompt's answer: its text and finish reason
Answer = tuple[str, str]


def text_completion(request_id: str, created: int, model: str, answers: list[Answer], usage: Usage) -> dict[str, Any]:
    """The whole answer as one ``text_completion`` object: a choice per prompt, in the order they were sent."""
    return {**_envelope(request_id, created, model),
            "choices": [_choice(text, finish, i) for i, (text, finish) in enumerate(answers)],
            "usage": usage_out(usage)}


def fim_completion(request_id: str, created: int, model: str, answers: list[Answer], usage: Usage) -> dict[str, Any]:
    """Mistral's ``FIMCompletionResponse``: a chat completion, the middle as the assistant's message."""
    return {"id": request_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text, "tool_calls": None},
                         "finish_reason": finish} for i, (text, finish) in enumerate(answers)],
            "usage": usage_out(usage)}


class TextChunkWriter:
    """Streamed answers as ``text_completion`` SSE events (the same object, a piece of one choice's text in each);
    ``index``: the prompt being answered."""

    def __init__(self, request_id: str, created: int, model: str):
        self._envelope = _envelope(request_id, created, model)
        self.index = 0

    def _event(self, payload: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps({**self._envelope, **payload}).encode() + b"\n\n"

    def text(self, text: str) -> bytes:
        return self._event({"choices": [_choice(text, None, self.index)]})

    def finish(self, finish: str, usage: Usage | None = None) -> bytes:
        return self._event({"choices": [_choice("", finish, self.index)]})

    def usage(self, usage: Usage) -> bytes | None:
        """``stream_options.include_usage``: a last chunk with no choices and the usage (as OpenAI sends it)."""
        return self._event({"choices": [], "usage": usage_out(usage)})


class FimChunkWriter(TextChunkWriter):
    """Mistral's streamed FIM answer: ``chat.completion.chunk`` events, the text as ``delta.content``, the usage on
    the finishing chunk (Mistral's last chunk carries it; no chunk goes without a choice: Continue reads
    ``choices[0].delta.content`` of each)."""

    def __init__(self, request_id: str, created: int, model: str):
        super().__init__(request_id, created, model)
        self._envelope = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model}

    def _delta(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"index": self.index, "delta": delta, "finish_reason": finish}

    def text(self, text: str) -> bytes:
        return self._event({"choices": [self._delta({"role": "assistant", "content": text}, None)]})

    def finish(self, finish: str, usage: Usage | None = None) -> bytes:
        extra = {"usage": usage_out(usage)} if usage is not None else {}
        return self._event({"choices": [self._delta({"content": ""}, finish)], **extra})

    def usage(self, usage: Usage) -> bytes | None:
        return None  # on the finishing chunk
