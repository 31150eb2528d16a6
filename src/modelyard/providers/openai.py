"""Any OpenAI-compatible ``/v1/chat/completions`` server (llama.cpp server, LM Studio, vLLM,
MLX, Ollama's /v1): SSE streaming, tool-call fragments reassembled, usage in the last chunk.

Qwen-family models take thinking on/off as ``/think`` and ``/no_think`` switches in the
prompt; that is the only portable way to steer them over this protocol. Being words in the
prompt, the switch goes only to models known to think (config ``capabilities: [thinking]`` or
``probe``): a Qwen2.5 would read it as part of the question.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import string
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterator
from enum import Enum, StrEnum
from typing import Any
from urllib.parse import urlsplit

from orjson import loads as orjson_loads

from modelyard.config.hints import AZURE_HOSTS
from modelyard.config.names import closest
from modelyard.config.schema import Timeouts, clean_secret
from modelyard.errors import ProviderError, Reason
from modelyard.providers.chat_template import family_of
from modelyard.providers.context_refusal import EXCEED_CONTEXT, context_words
from modelyard.providers.cumulative import Increments
from modelyard.providers.discovery import ServedModel, ServerCapability
from modelyard.providers.discovery import mapping_of as _mapping
from modelyard.providers.embed_batches import BatchLimit
from modelyard.providers.embeddings import answer, body_limit, input_tokens, ordered, posted, refusal, request_body
from modelyard.providers.error_words import error_words
from modelyard.providers.http import (
    AFTER_END,
    ALLOWANCE_SPENT,
    BALANCE_SPENT,
    BALANCE_WORDS,
    CONTEXT_FULL,
    CONTEXT_WORDS,
    HISTORY_REFUSED,
    MAX_SAID,
    NO_MEMORY,
    NO_MEMORY_WORDS,
    NO_ROOM,
    NO_ROOM_WORDS,
    NOT_CHAT,
    NOT_CHAT_WORDS,
    NOT_JSON,
    NOT_LOADED,
    PAST_ALLOWANCE,
    REFUSED,
    SYSTEM_FIRST_WORDS,
    TOOL_USE_FAILED,
    UNPARSED_CALL,
    UNSUPPORTED,
    USAGE_LIMIT_WORDS,
    WRONG_ENDPOINT,
    HttpClient,
    HttpProvider,
    Refit,
    error_field,
    found_after_end,
    joined,
    loads,
    make_client,
    ollama_said,
    openai_tools,
    said_error,
    shown_url,
    stream_error,
    system_first,
    tool_call,
    try_loads,
    unparsed_call,
)
from modelyard.providers.llama_infill import infill, refuses_suffix, server_root
from modelyard.providers.llama_swap import loading_status
from modelyard.providers.ollama_parallel import ServerParallel
from modelyard.providers.output_cap import ALLOWANCE_WORDS
from modelyard.providers.profile import ContextWindow, MemoryFacts, ModelProfile, ThinkingSwitch
from modelyard.providers.sampling import (
    MISTRAL_SEED,
    PENALTY_NAMES,
    RefusedFields,
    left_out,
    mistral_api,
    put_sampling,
    refused_fields,
    sampled,
    seed_renamed,
    value_refused,
)
from modelyard.providers.shapes import CALL_MARKS, CALL_STOPS, content_parts, usage_from, without_call
from modelyard.providers.speed import llama_times, llama_timings
from modelyard.providers.this_machine import on_this_machine
from modelyard.tokens import request_tokens
from modelyard.types import ChatRequest, Chunk, Message, ToolCall, Usage

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
FACT_TIMEOUT = 3.0  # seconds for a control-plane question (/v1/models)


def _extract_error(body: Any) -> tuple[str, str]:
    """(type, message) of an OpenAI-compatible server's error body, in the shapes servers really send: OpenAI's
    ``{"error": {...}}``, vLLM's and SGLang's object at the top, ``"error"`` as a string (TGI, with its own word in
    ``error_type``), FastAPI's ``{"detail": ...}`` (KoboldCpp's 503 "Server is busy", a 422's list of fields: the
    message was empty, the client read "HTTP 503" and nothing else), and OpenRouter's ``metadata`` (the upstream's
    own words in ``raw``, the moderation's reasons). Words that decide the reason whatever the status are named as
    :data:`~modelyard.providers.http.REFUSED`, ``UNSUPPORTED`` or ``NO_ROOM``."""
    try:
        return _read_error(body)
    except RecursionError:  # str() of an object nested past the interpreter's depth
        return "", "an error object nested too deep to read"


def _read_error(body: Any) -> tuple[str, str]:
    if isinstance(body, list) and len(body) == 1:  # Gemini's OpenAI-compatible endpoint: [{"error": {...}}]
        body = body[0]
    err = body.get("error", body)
    if isinstance(err, dict):
        # the first word among type, code and Google's status ("RESOURCE_EXHAUSTED"); a numeric code is the status
        # again (OpenRouter's, Google's): "HTTP 400 400: …"
        kind = next((k for k in (err.get("type"), err.get("code"), err.get("status")) if k and isinstance(k, str)), "")
        message = error_words(err)  # message, msg, FastAPI's detail, a nested error: error_words.py
        if "detail" in err and not err.get("message"):
            kind = kind or _detail_type(err["detail"])
        if isinstance(meta := err.get("metadata"), dict):
            kind, message = _openrouter(meta, kind, message)
        if err.get("code") in _MODEL_FAILED:  # Groq: the model's tool call did not parse (its words are in
            kind = TOOL_USE_FAILED  # failed_generation, the model's text: left out of the log)
        elif kind == EXCEED_CONTEXT:  # llama-server's counts beside its words: the router learns the context
            message = context_words(message, err.get("n_prompt_tokens"), err.get("n_ctx"))
    elif err is None or err == "":
        kind, message = "", ""
    else:
        kind, message = body.get("error_type"), str(err)  # TGI: {"error": "...", "error_type": "generation"}
        kind = kind if isinstance(kind, str) else ""
        if body.get("signin_url"):
            # Ollama's /v1 for a cloud model on a server not signed in to ollama.com (server/cloud_proxy.go's
            # writeCloudUnauthorized: {"error": "unauthorized", "signin_url": …}, a 401 from a server that takes no
            # key): as on /api/chat, what to do; the URL, which carries the host's key, is not repeated
            message += " (an Ollama cloud model: sign the server in to ollama.com with `ollama signin` on its host)"
    return _recognised(kind, message)


#: Groq's codes for an answer its model wrote that did not hold: a tool call that does not parse (``tool_use_failed``),
#: and JSON that does not match the request's ``response_format`` ("Failed to generate JSON. Please adjust your
#: prompt. See 'failed_generation' for more details.", ``json_validate_failed``: amurex-backend#38, as a 400; inside a
#: stream after the 200 too, litellm#40566). As a 400 the second was a bad_request — a chain ending on it told the
#: client its request was wrong —, in a stream a stream_error asked again of the same model; both are the model's
#: unusable answer, as the first is: the next model is asked
_MODEL_FAILED = frozenset({"tool_use_failed", "json_validate_failed"})
#: Groq's words for the same, or its code quoted inside another's message (a relay's, as JSON or as Python's repr of
#: it): up to where the model's text would follow
_GROQ_MODEL_FAILED = re.compile(r"Failed to (?:call a function|generate JSON)\. Please adjust your prompt\."
                                r"|['\"]code['\"]\s*:\s*['\"](?:tool_use_failed|json_validate_failed)['\"]")


def _short(message: str) -> str:
    """A template engine's refusal without the template source it quotes (llama-server: "Unable to generate parser for
    this template. … While executing CallExpression at line 89 … Jinja Exception: System message must be …")."""
    return message.rsplit("Jinja Exception:", 1)[-1].strip() if "Jinja Exception:" in message else message


#: OpenRouter's 404 when no upstream of the model takes the request's tools, tool_choice, images or parameters
_NO_ENDPOINT_FOR = re.compile(r"No endpoints found that (?:support|can handle)\b")
#: Azure OpenAI's words for a deployment whose model cannot chat (its 400 OperationNotSupported)
_AZURE_NOT_CHAT = "chatCompletion operation does not work with the specified model"
#: Azure OpenAI's words for an api-version the deployment's model is not served under (its 400)
_AZURE_VERSION = re.compile(r"is enabled only for api versions|\bAPI version not supported")
#: OpenRouter's words for a parameter no upstream of the model takes (its 404)
_NO_ENDPOINT_FOR_PARAMETERS = "No endpoints found that can handle the requested parameters"


def _recognised(kind: str, message: str) -> tuple[str, str]:
    """Servers' words that mean more than their status: llama-server started without ``--jinja`` refuses tools with a
    500 (every tool request failed over as a server error and counted against the model until it cooled for all);
    Ollama's /v1 has no room for the model (a 500, as on /api/chat)."""
    if (ollama := ollama_said(message)) is not None:  # Ollama's full queue, a model not pulled, through its /v1
        return ollama
    if kind != TOOL_USE_FAILED and (groq := _GROQ_MODEL_FAILED.search(message)) is not None:
        # Groq's refusal of its model's own answer (see _MODEL_FAILED) once its code is gone: relayed by LiteLLM,
        # whose error carries Groq's body as words after its own ("litellm.BadRequestError: GroqException -
        # {"error":{"message":"Failed to call a function. …","code":"tool_use_failed","failed_generation":"…"}}",
        # smolagents#1119; its proxy's code is "400"), or without its code ({message, type} alone: vercel/ai#5282).
        # A 400 was a bad_request — the client told its request was wrong —, in a stream a stream_error asked again
        # of the same model. The model's text after it (failed_generation) stays out of the row
        return TOOL_USE_FAILED, (f"{message[:groq.start()]}{groq.group(0)} (Groq refused the model's own "
                                 "tool call or JSON: another model may answer)")
    if "Context size has been exceeded" in message:
        # llama-server's (and LM Studio's) 500 when the prompt and its answer outgrow the slot's context
        # (server-context.cpp; the 500 of a request that is not streamed): a server_error asked again at once for the
        # same refusal and counted against a model that is well. The prompt's, as the 400 exceed_context_size_error is
        return CONTEXT_FULL, f"{message} (the prompt and its answer do not fit the model's context: another model may)"
    if message.startswith("Failed to parse input at pos"):
        # llama-server (--jinja) could not read the model's own output in its chat format — a tool call it began and
        # broke (pwilkin/llama.cpp#5, GLM-4.7: "Failed to parse input at pos 184: …"; ggml-org/llama.cpp#20532): a 500,
        # or an error event after the 200. A server_error, asked again and counted against the model; the answer was
        # unusable, as a tool call written as text is (Groq's tool_use_failed likewise): the next model is asked
        # the model's text after the position stays out of the row (as Groq's failed_generation does)
        return TOOL_USE_FAILED, f"{message.split(':', 1)[0]} (llama-server could not parse the model's tool call)"
    if UNPARSED_CALL.match(message):  # Ollama's /v1: its parser's refusal of the model's own tool call
        return TOOL_USE_FAILED, unparsed_call("the server", message)
    if message.startswith("Failed to parse tool call arguments as JSON"):
        # a tool call in the history whose arguments are no JSON (another model's broken call, kept as it came):
        # llama-server's 500 for the request's own content (common/chat.cpp func_args_not_string; llama.cpp#25510:
        # "Repeating the malformed history repeats the 500"). It was a server_error, asked again for the same refusal
        return HISTORY_REFUSED, (f"{message} (a tool call in the conversation has arguments that are not JSON; "
                                 "another model may take them)")
    if "requires --jinja flag" in message:
        return UNSUPPORTED, (f"{message} (llama-server was started without --jinja: start it with --jinja to use "
                             "tools with this model)")
    if SYSTEM_FIRST_WORDS.search(message):  # the model's chat template refuses a later system message (http.py)
        return HISTORY_REFUSED, f"{_short(message)} (the model's chat template takes a system message only first)"
    if _NO_ENDPOINT_FOR.match(message):
        # OpenRouter found no upstream of this model that takes what the request holds: tools ("No endpoints found that
        # support tool use", a model without tool calling: fast-agent#122, mastra#2839, home-assistant.io#41145), a
        # tool_choice (zed#36094), images, or a parameter such as response_format ("… that can handle the requested
        # parameters"). A 404, so model_missing: the model cooled for cooldown.max_seconds and every request skipped it,
        # those without tools too. The request's, as Ollama's 400 "does not support tools" is: the next model takes
        # it, this one stays in service ("… matching your data policy", an account setting, stays a missing model)
        return UNSUPPORTED, f"{message} (OpenRouter: this model takes no such request; another model may)"
    if NO_MEMORY_WORDS.search(message):
        return NO_MEMORY, f"the server has no memory for the model now: {message}"
    if NO_ROOM_WORDS.search(message):
        return NO_ROOM, f"the server cannot load the model here: {message}"
    if "support" in message and NOT_CHAT_WORDS.search(message):
        return NOT_CHAT, f"{message} (an embedding model: it cannot answer a chat; name a chat model here)"
    if _AZURE_NOT_CHAT in message:
        # an Azure deployment of a model that cannot chat (an embedding model's, most often): 400
        # ``OperationNotSupported`` "The chatCompletion operation does not work with the specified model,
        # text-embedding-3-large. …" (graphrag#1557, AI-Red-Teaming-Playground-Labs#18, langchain#6363). As a
        # bad_request it was asked, and refused, on every request, and a chain ending on it told the client its own
        # request was wrong: the config's mistake, as Ollama's embedding model named in a chain is
        return NOT_CHAT, f"{message} (a deployment of a model that cannot chat: name a chat deployment here)"
    if USAGE_LIMIT_WORDS.search(message):
        # an Ollama cloud model's spent allowance through Ollama's /v1: a model pulled as a cloud stub is answered by
        # the native handler, whose api.StatusError the /v1 middleware wraps (middleware/openai.go writeError,
        # openai.NewError: type "api_error" for a 429) — "429 Too Many Requests: you've reached your weekly usage
        # limit, please wait or upgrade to continue" —; a ``:cloud`` name is passed through to ollama.com's own /v1
        # (server/cloud_proxy.go). It was a rate limit without a wait: asked again after a backoff, then every few
        # seconds, refused each time for the hour, the session or the week. It cools as on /api/chat
        return ALLOWANCE_SPENT, f"the cloud plan's usage allowance is spent: {message}"
    if BALANCE_WORDS.search(message):  # an account that cannot pay, said under a 429 (http.BALANCE_WORDS)
        return BALANCE_SPENT, message
    if ALLOWANCE_WORDS.search(message):  # the request alone is past the per-minute allowance (http.PAST_ALLOWANCE)
        return PAST_ALLOWANCE, (f"{message} (the request alone, its max_tokens counted, is past the model's "
                                "tokens-per-minute allowance: no wait makes it pass; another model may take it)")
    if message.startswith("No models loaded."):  # LM Studio (http.NOT_LOADED)
        return NOT_LOADED, (f"{message} (LM Studio has not loaded the model and does not load it on request: load it, "
                            "or turn on just-in-time model loading)")
    if message.startswith("Unexpected endpoint or method."):
        return WRONG_ENDPOINT, (f"{message} (LM Studio serves POST /v1/chat/completions: set the model's endpoint to "
                                "the server's address, with or without /v1)")
    if _AZURE_VERSION.search(message):
        # Azure refuses the deployment's model under the endpoint's api-version, on every request: 400 "Model
        # {modelName} is enabled only for api versions 2024-12-01-preview and later" (o3-mini: langchain4j#2636,
        # genaiscript#1121, chatwise-releases#258), "API version not supported" (mindshub#11563). A bad_request: asked,
        # and refused, on every request, the client told its own request was wrong. The endpoint's mistake
        return WRONG_ENDPOINT, (f"{message} (the endpoint's ?api-version= is the Azure API version asked for: write "
                                "a newer one there, or use Azure's v1 API, https://NAME.openai.azure.com/openai/v1)")
    return kind, message


def _detail_type(detail: Any) -> str:
    kind = detail.get("type") if isinstance(detail, dict) else None
    return kind if isinstance(kind, str) else ""


def _openrouter(meta: dict[str, Any], kind: str, message: str) -> tuple[str, str]:
    """OpenRouter's ``error.metadata``: ``raw`` holds the upstream provider's own error (JSON text or plain text)
    behind a message that is only "Provider returned error" — the client read that and nothing of why (a context
    too long, an image too large), and a "max_tokens too large" could not be read and clamped; ``reasons`` and
    ``flagged_input`` mark a 403 of its moderation: the input was flagged, not the key refused."""
    if meta.get("flagged_input") is not None or isinstance(meta.get("reasons"), list):
        reasons = meta.get("reasons")
        why = ", ".join(str(r) for r in reasons) if isinstance(reasons, list) and reasons else ""
        return REFUSED, message + (f" (flagged: {why})" if why else "")
    raw = meta.get("raw")
    if raw is None or raw == "":
        return kind, message
    inner = try_loads(raw) if isinstance(raw, str) else raw
    err = inner.get("error", inner) if isinstance(inner, dict) else inner  # one level: no error nests another here
    text = error_words(err) if isinstance(err, dict) else err
    if isinstance(text, str) and text:
        upstream = text
    elif isinstance(raw, str):
        upstream = raw
    else:
        try:
            upstream = json.dumps(raw, default=str)[:MAX_SAID]
        except (ValueError, RecursionError):  # nested past what the encoder goes
            upstream = f"({type(raw).__name__})"
    provider = meta.get("provider_name")
    by = f"{provider}: " if isinstance(provider, str) and provider else ""
    return kind, f"{message} ({by}{upstream})" if message else f"{by}{upstream}"


def _messages(messages: list[Message], reasoning: bool = False,
              extras: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The history in the chat completions shape. Calls without an id (a history begun on Ollama, which gives none)
    get one, and their results, which had none either, get the same, in order: a result naming no call of the turn
    before is refused by OpenAI's API and the servers that check (a 400 on every such turn of a fallback).
    ``reasoning``: each assistant turn carries ``reasoning_content`` (its thinking where modelyard has it, else
    empty), for a server that refuses a turn without it (:meth:`OpenAIProvider._without_refused`). ``extras``: what a
    server attached to its own tool calls and wants back with them (Gemini's thought signatures), by call id."""
    out: list[dict[str, Any]] = []
    unnamed: list[str] = []
    for m in messages:
        message: dict[str, Any] = {"role": m.role, "content": m.content}
        if reasoning and m.role == "assistant":
            message["reasoning_content"] = m.thinking
        if m.tool_calls:
            message["tool_calls"], unnamed = [], []  # results answer the turn just before them
            for c in m.tool_calls:
                call_id = c.id
                if not call_id:
                    call_id = f"call_{len(out)}_{len(message['tool_calls'])}"
                    unnamed.append(call_id)
                function = {"name": c.name, "arguments": json.dumps(c.arguments_object())}
                message["tool_calls"].append({"id": call_id, "type": "function", "function": function})
                if extras and c.id in extras:
                    message["tool_calls"][-1]["extra_content"] = extras[c.id]
        if m.role == "tool":
            message["tool_call_id"] = m.tool_call_id or (unnamed.pop(0) if unnamed else "")
        out.append(message)
    return out


_ALNUM = string.ascii_letters + string.digits


def _nine(call_id: str) -> str:
    """A tool-call id as nine letters and digits: itself when it is one, else derived from it (the same each time)."""
    if len(call_id) == 9 and call_id.isascii() and call_id.isalnum():
        return call_id
    digest = hashlib.sha256(call_id.encode("utf-8", "surrogatepass")).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:9])


def _nine_char_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        if m.get("tool_calls"):
            m = {**m, "tool_calls": [{**c, "id": _nine(str(c.get("id") or ""))} for c in m["tool_calls"]]}
        if m.get("role") == "tool":
            m = {**m, "tool_call_id": _nine(str(m.get("tool_call_id") or ""))}
        out.append(m)
    return out


def _nine_char_ids(body: dict[str, Any]) -> dict[str, Any] | None:
    """``body`` with its tool-call ids as nine letters and digits; None when it has none to change."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    refitted = _nine_char_messages(messages)
    return None if refitted == messages else {**body, "messages": refitted}


#: tool calls whose ``extra_content`` a provider keeps (Gemini's thought signatures), the oldest dropped first
MAX_SIGNED_CALLS = 512
#: requests whose refused sampling value is kept for the routing log until it is read (OpenAIProvider.left_out): few,
#: each holds its request (its whole conversation) until then, and one that failed after is never read
_ONCE_KEPT = 32
_NONE_REFUSED: frozenset[str] = frozenset()
_PENALTY_NAMES = frozenset(PENALTY_NAMES)
#: Google's documented stand-in signature for a function call Gemini did not make
_SKIP_SIGNATURE = {"google": {"thought_signature": "skip_thought_signature_validator"}}


def _unsigned_calls_stood_in(body: dict[str, Any]) -> dict[str, Any] | None:
    """``body`` with the stand-in signature on the first call of each assistant turn whose calls carry none; None
    when there is none to add."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    out, changed = [], False
    for m in messages:
        calls = m.get("tool_calls") if isinstance(m, dict) else None
        if (isinstance(calls, list) and calls and isinstance(calls[0], dict)
                and not any(isinstance(c, dict) and c.get("extra_content") for c in calls)):
            m = {**m, "tool_calls": [{**calls[0], "extra_content": _SKIP_SIGNATURE}, *calls[1:]]}
            changed = True
        out.append(m)
    return {**body, "messages": out} if changed else None


def thinking_switch(profile: ModelProfile, thinking: bool | None) -> str:
    """Qwen's soft switch to append to the last user turn, when the profile allows one (else empty)."""
    send = profile.thinking_to_send(thinking)
    if send is None or profile.thinking_switch is not ThinkingSwitch.QWEN_SOFT:
        return ""
    return " /think" if send else " /no_think"



#: finish reasons that mean the generation failed, whatever came before them: OpenRouter's "error"; vLLM's
#: "abort" (an engine shutdown, sleep or scale-down ends the request, then [DONE] as if complete: vllm#57082); an
#: upstream's network broken mid-answer, "network_error" (OpenCode Zen's, its stream ended cleanly after it:
#: hermes-agent#92161, gajae-code#4918; OpenRouter's own as ``native_finish_reason`` under a "stop", pi#8511) — it was
#: an answer cut short passed on as complete (after text), or an empty one refused as unusable and never asked again
#: DeepSeek's "insufficient_system_resource" (its docs: "the request is interrupted due to insufficient resource of the
#: inference system"; oh-my-pi#8563) is its capacity, read as an overload (:data:`_NO_ROOM`)
_NO_ROOM = "insufficient_system_resource"
_FAILED = frozenset({"error", "abort", "network_error", "network-error", _NO_ROOM})
#: "no finish reason yet" spelled as a string on every chunk: KoboldCpp's chat stream before its fix of March 2025
#: (PowerShell/AIShell#350: "It uses the string "null" instead of the JSON null for finish_reason in the streaming
#: chunk", LostRuins/koboldcpp@c55bb9a6; anything-llm's KoboldCpp handler still tests ``finish_reason !== "null"``),
#: and relays of Qwen's DashScope stream, whose chunks say so (its ``"finish_reason":"null"``). Read as a finish
#: reason, the first chunk ended the answer: a stream that broke after it was passed on as whole, its finish "null"
_NO_FINISH = "null"
#: Gemini's finish reason for a tool call it could not form (its OpenAI-compatible gateways pass Gemini's reasons on in
#: capitals, qwen-code#9884), frequent with Gemini 2.5 and 3 (python-genai#1836, gemini-cli#12674, pydantic-ai#3095):
#: text said before it was passed on as the whole answer — the call the model meant to make lost, the agent told the
#: turn was done (hermes-agent#83886 fails the turn). An unusable answer, as a tool call written as text: the next model
#: Its two later reasons of the kind (the API reference's FinishReason, google-gemini-php/client#137): a call to a
#: function the request did not declare, ``UNEXPECTED_TOOL_CALL`` ("Model tried to call an undeclared function:
#: undeclaredTool", epam/ai-dial-adapter-vertexai#325), and ``TOO_MANY_TOOL_CALLS`` (it "called too many tools
#: consecutively, thus the system exited execution"): passed on in the same words, the preamble before them was taken
#: as the whole answer — the turn's call lost, as for a malformed one
_MALFORMED_CALL = frozenset({"MALFORMED_FUNCTION_CALL", "malformed_function_call", "UNEXPECTED_TOOL_CALL",
                             "unexpected_tool_call", "TOO_MANY_TOOL_CALLS", "too_many_tool_calls"})


#: the usage fields that count tokens
_COUNTED = frozenset({"prompt_tokens", "completion_tokens"})
#: how long the rest of a body is read after ``[DONE]`` for a usage chunk that came after it (:func:`_usage_after_done`)
AFTER_DONE = AFTER_END


def _usage_of(payload: str) -> Usage | None:
    """The token counts an event's data carries, or None."""
    data = try_loads(payload)
    if type(data) is dict and type(reported := data.get("usage")) is dict and _COUNTED.intersection(reported):
        return _counted(reported)
    return None


async def _usage_after_done(last: list[tuple[str, str]], batches: AsyncGenerator[list[tuple[str, str]], None]
                            ) -> Usage | None:
    """A usage chunk a server or relay sent after ``[DONE]``, where the OpenAI API sends it before: read in what came
    with ``[DONE]`` (``last``, the events of its read), then in what comes before the body ends, :data:`AFTER_DONE`
    at most — the answer's end waits on it. Readers that stop at ``[DONE]`` lose such counts (one Go proxy's test
    names it, "usage after [DONE] was dropped"; agent clients read on past ``[DONE]`` for "some compatible servers
    [that] emit usage AFTER [DONE]"): the tokens were estimated. Only asked when no usage came before ``[DONE]``, so a
    server that sends it in its place pays nothing; one that sends none pays the wait for its body's end (at once
    from a server that closes its answer after ``[DONE]``, :data:`AFTER_DONE` from one that holds it open)."""
    for i, (field, payload) in enumerate(last):
        if field == "data" and payload.strip().endswith("[DONE]"):
            return await found_after_end(last[i + 1:], batches, _usage_of)
    return await found_after_end([], batches, _usage_of)


def _ollama_failed(data: Any) -> ProviderError | None:
    """Ollama's own failure mid-answer, as its OpenAI-compatible endpoint writes it, or None. Its handler sends a
    mid-stream error as ``{"error": "..."}`` (server/routes.go ``streamResponse``: "an error was encountered while
    running the model: …"; docs/api/errors.mdx), but under ``/v1`` the writer it goes through (middleware/openai.go,
    ``ChatWriter.writeResponse``; ``CompleteWriter`` for ``/v1/completions``) decodes it as an answer chunk: the
    unknown ``error`` key dropped, it becomes a chunk of nothing — ``"model": ""`` (every answer chunk names the
    model), ``"system_fingerprint": "fp_ollama"``, no text, no finish reason — and the stream closes without
    ``[DONE]``. The words are lost on the wire; the chunk still says the server gave up, not that a connection broke."""
    if type(data) is not dict or data.get("model") != "" or data.get("system_fingerprint") != "fp_ollama":
        return None
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choice := choices[0], dict):
        return None
    delta = choice.get("delta") or {}
    if choice.get("finish_reason") or choice.get("text") or not isinstance(delta, dict) or any(
            delta.get(key) for key in ("content", "tool_calls", "reasoning", "reasoning_content")):
        return None
    return ProviderError(Reason.SERVER_ERROR, "Ollama stopped the answer on an error of its own (its OpenAI-compatible "
                         "endpoint sends the error as an empty chunk and leaves its words out: they are in Ollama's "
                         "log; provider: ollama, its native API, passes them on)")


def _bare_error(data: dict[str, Any]) -> ProviderError:
    """An error object sent as an event of its own, not wrapped in ``{"error": …}``: FastChat's OpenAI-compatible
    server yields its worker's failure as is (fastchat/serve/openai_api_server.py, chat_completion_stream_generator:
    ``{"text": "**NETWORK ERROR DUE TO HIGH TRAFFIC. …**\\n\\n(CUDA out of memory …)", "error_code": 50002}`` then
    ``[DONE]``; its codes are a status and two digits), and an ``ErrorResponse`` dumped bare (``"object": "error"``).
    Read as "a usage-only object", it was skipped: the text before it passed on as a whole answer, or no text a
    malformed one."""
    code = data.get("code")
    error_code = data.get("error_code")
    if code is None and type(error_code) is int and error_code >= 10000:
        code = error_code // 100
    message = data.get("message") or data.get("text") or ""
    kind = data.get("type")
    return stream_error(kind if isinstance(kind, str) else "", message if isinstance(message, str) else str(message),
                        code)


#: MiniMax's codes in ``base_resp``, which its API puts on a refusal it answers with a 200 and ``"choices": null``, as
#: the HTTP status each means (dify's minimax provider reads them so: 1002 and 1039 its request and token rate limits,
#: 1004 a refused key, 1008 an empty balance, 2013 bad parameters; the rest, 1000, 1001, 1013, 1027, its own failures)
_MINIMAX_STATUS = {1002: 429, 1039: 429, 1004: 401, 1008: 402, 2013: 400}


def _base_resp_error(data: dict[str, Any]) -> ProviderError | None:
    """MiniMax's refusal in a 200 (Roo-Code#9105: chunks with ``choices: null`` and a ``base_resp`` error), or None
    for its usual ``"base_resp": {"status_code": 0}``. Read as a usage-only object, it was skipped: a rate limit or an
    empty balance became a stream that ended with nothing (asked again at once, for the same refusal)."""
    said = data.get("base_resp")
    if type(said) is not dict or type(code := said.get("status_code")) is not int or code == 0:
        return None
    message = said.get("status_msg") if isinstance(said.get("status_msg"), str) else ""
    return stream_error("", f"MiniMax {code}: {message}".rstrip(": "), _MINIMAX_STATUS.get(code, 500))


def _usage_beside(data: dict[str, Any], choice: dict[str, Any]) -> Usage | None:
    """The counts a server puts on the chunk that ends the answer, off the spec's top-level ``usage``: Groq's
    ``x_groq.usage`` (vercel/ai#1651, Portkey-AI/gateway#1072: its last chunk, ``finish_reason`` "stop", carries
    ``"x_groq": {"id": …, "usage": {"prompt_tokens": 23, "completion_tokens": 19, …}}``; without ``stream_options``,
    which some of its models and proxies refuse, it is the only count) and Moonshot's ``choices[0].usage`` (Kimi's
    API: earendil-works/pi#2017). Unread, the tokens were estimated — the prompt from its characters, the answer as
    one token per streamed piece — and a billed model's cost with them."""
    for holder in (data.get("x_groq"), choice):
        reported = holder.get("usage") if type(holder) is dict else None
        if type(reported) is dict and _COUNTED.intersection(reported):
            return _counted(reported)
    return _timed(data.get("timings"))


def _timed(timings: Any) -> Usage | None:
    """The counts in llama.cpp's ``timings`` object, where a server sends no ``usage``: ik_llama.cpp before its #695
    (Aug 2025) and servers that mirror llama-server's shape (tabbyAPI#478: "the finish_reason chunk without
    include_usage") put only it on the last chunk. The prompt is ``prompt_n`` plus the cached ``cache_n`` (llama.cpp
    #15827: "the number of used context tokens is equal to prompt_n + cache_n + predicted_n"), the answer
    ``predicted_n``. Unread, both were estimated."""
    if type(timings) is not dict:
        return None
    prompt, cached, made = timings.get("prompt_n"), timings.get("cache_n", 0), timings.get("predicted_n")
    if type(prompt) is not int or type(cached) is not int or type(made) is not int:
        return None
    usage = usage_from({"in": prompt + cached, "out": made}, "in", "out")
    if usage is not None:
        _timed_by_server(usage, timings)
    return usage


def _timed_by_server(usage: Usage, timings: Any) -> None:
    """llama.cpp's own decoding speed and times from its ``timings`` (providers/speed.py), on the chat stream's usage
    chunk and on the text completion's last object (server-task.cpp ``to_json_oaicompat``: ``usage`` and
    ``timings`` side by side). A text completion's were left unread: its speed was the client's clock, and
    ``/api/generate``'s durations the gateway's own, the way to the server and back included."""
    usage.tokens_per_s = llama_timings(timings)
    usage.server_times = llama_times(timings)


def _counted(reported: dict[str, Any]) -> Usage | None:
    """An OpenAI-style usage object's counts. xAI counts the thinking apart: ``completion_tokens`` is the visible
    answer, ``completion_tokens_details.reasoning_tokens`` the reasoning, ``total_tokens`` all three ("reasoning token
    consumption will be counted separately from completion_tokens, but will be counted in the total_tokens", xAI's
    docs as quoted in vercel/ai#12425; inspect_ai#5528, sub2api#5771). Read as OpenAI's, whose completion_tokens holds
    the reasoning, a grok-3-mini answer was logged as 2 tokens out of 319 and billed so. Added only where the total
    says the reasoning is apart: prompt + completion + reasoning == total. ``prompt_tokens_details.cached_tokens``: the
    part of the prompt read from the provider's prompt cache (OpenAI's prompt-caching guide; billed at a discount that
    differs by model, so priced at the model's ``price.cache_read`` when set, else as input: Price.cost). Unread, a
    model whose cache_read was configured was billed its whole prompt at the input price. OpenRouter adds
    ``prompt_tokens_details.cache_write_tokens`` (the part written to the cache: priced as input, it is 1.25x for
    Claude) and the ``cost`` it billed (:func:`_stated_cost`), both unread before. None: no count (zero on both
    sides)."""
    usage = usage_from(reported, "prompt_tokens", "completion_tokens")
    if usage is not None and not usage.input_tokens and not usage.output_tokens:
        # zero on both sides is no count — no chat prompt is 0 tokens: LocalAI puts ``{"prompt_tokens": 0,
        # "completion_tokens": 0, "total_tokens": 0}`` on every chunk (LocalAI#1744) and, with tools, on its last
        # usage chunk (LocalAI#9927: "the final streamed usage chunk returns all token counts as zero"). Read as a
        # count, the routing log said 0 tokens in and out (a billed model's cost $0) where the estimate was kept
        return None
    details = reported.get("completion_tokens_details")
    if usage is not None and type(details) is dict and type(hidden := details.get("reasoning_tokens")) is int \
            and hidden > 0 and reported.get("total_tokens") == usage.input_tokens + usage.output_tokens + hidden:
        usage = Usage(usage.input_tokens, usage.output_tokens + hidden)
    prompt = reported.get("prompt_tokens_details")
    if usage is not None and type(prompt) is dict and type(cached := prompt.get("cached_tokens")) is int \
            and 0 < cached <= usage.input_tokens:
        usage.cache_read_tokens = cached  # part of prompt_tokens, priced at the model's cache_read (Price.cost)
    if usage is not None and type(prompt) is dict and type(wrote := prompt.get("cache_write_tokens")) is int \
            and 0 < wrote <= usage.input_tokens - usage.cache_read_tokens:
        usage.cache_write_tokens = wrote  # OpenRouter's: part of prompt_tokens too, priced at cache_write
    if usage is not None:
        usage.stated_cost_usd = _stated_cost(reported)
    return usage


def _stated_cost(reported: dict[str, Any]) -> float | None:
    """What OpenRouter says the request cost (its Usage Accounting: ``usage.cost`` in credits, a credit a dollar, on
    every answer's last chunk). With the caller's own provider key (``is_byok`` true) that is OpenRouter's fee alone
    and the provider bills ``cost_details.upstream_inference_cost`` to the key: the two together. None: not stated."""
    cost = _dollars(reported.get("cost"))
    if cost is None:
        return None
    details = reported.get("cost_details")
    upstream = _dollars(details.get("upstream_inference_cost")) if type(details) is dict else None
    if reported.get("is_byok") is True and upstream is not None:
        cost += upstream
    return cost


def _dollars(value: Any) -> float | None:
    """A stated cost as a float: a number, not negative, not NaN, not absurd (None otherwise)."""
    if type(value) not in (int, float) or not 0 <= value < 1e6:  # NaN fails both comparisons
        return None
    return float(value)


def _failed(choice: dict[str, Any], finish: str) -> ProviderError:
    """A choice that ended in failure. OpenRouter puts the failure in the choice itself (``choices[].error``, its
    ``code`` the status: a 429 upstream, a 502), streamed and whole: it was a stream_error without a word of it —
    an upstream's rate limit asked again at once and never cooled."""
    err = choice.get("error")
    if isinstance(err, dict) and err:
        kind, message = _extract_error({"error": err})
        return stream_error(kind, message, err.get("code"))
    if finish == _NO_ROOM:  # the server's capacity, not the model: it rests, as for a 503, and the next is asked
        return ProviderError(Reason.OVERLOADED, f"the server ended the answer with finish_reason '{finish}' (no "
                             "room on its inference system for it now)")
    return ProviderError(Reason.STREAM_ERROR, f"the server ended the answer with finish_reason '{finish}'")


class _ToolCalls:
    """Tool-call fragments of one stream, assembled into calls, as servers really send them.

    By the spec a call's first fragment carries ``index``, ``id`` and the name, later ones only
    argument pieces under the same ``index``. Servers bend that: vLLM repeats the whole name in every
    fragment (vllm#18412); lmdeploy and some vLLM parsers give every call ``index`` 0 and tell them
    apart only by a new ``id``; Gemini's endpoint and some proxies send no ``index`` at all; a few send
    ``arguments`` as an object; some send the arguments again whole (:func:`_resent`). A repeated name is not
    appended, a new id (or a new name once arguments have begun) starts a new call, a missing index continues the
    latest call, an object is its JSON.

    Ids bend too. Poolside's endpoint gives a call one id with its name and another on each piece after
    (poolsideai/pool#9; google/adk-python#4732 keeps the first likewise): a piece that names no function continues
    its call, which keeps its first id. LocalAI puts pieces of one call under further indexes, each with the call's id
    (LocalAI#9722): a nameless piece under a new index whose id is a call's continues that call. Xinference gives every
    call of an answer the same id (inference#4237): the named entries of one ``tool_calls`` list are calls of their
    own, and a repeated id is made unique (``_2``…), so each result still answers one call. Each was a call without a
    name (malformed_response), or two calls joined into the last one, the first lost."""

    __slots__ = ("_at", "_by_id", "_listed", "_pieces", "calls", "extras")

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        #: ``extra_content`` a server attached to a call (by id() of its slot): Gemini's thought signature
        self.extras: dict[int, dict[str, Any]] = {}
        self._at: dict[int | None, dict[str, str]] = {}
        self._by_id: dict[str, dict[str, str]] = {}
        #: the calls the entries of the current ``tool_calls`` list went to (id() of their slots: :meth:`listed`)
        self._listed: set[int] = set()
        #: each call's argument pieces as they came (by id() of its slot, which self.calls keeps), for :func:`_resent`
        self._pieces: dict[int, list[str]] = {}

    def listed(self, frags: list[Any]) -> None:
        """The entries of one delta's ``tool_calls`` list, in order."""
        self._listed.clear()
        for frag in frags:
            self.add(frag)

    def add(self, frag: Any) -> None:
        if not isinstance(frag, dict):
            raise ProviderError(Reason.MALFORMED_RESPONSE, f"a tool call fragment is a {type(frag).__name__}")
        fn = frag.get("function") or {}
        if not isinstance(fn, dict):
            raise ProviderError(Reason.MALFORMED_RESPONSE, "a tool call's function is not an object")
        index = frag.get("index")
        key = index if isinstance(index, int) and not isinstance(index, bool) else None
        call_id, name, args = frag.get("id"), fn.get("name") or "", fn.get("arguments")
        call_id = str(call_id) if isinstance(call_id, str | int) and not isinstance(call_id, bool) else ""
        if not isinstance(name, str) or not isinstance(args, str | dict | None):
            raise ProviderError(Reason.MALFORMED_RESPONSE, "a tool call's name or arguments is not text")
        slot = self._at.get(key)  # None: the latest call
        if slot is None and key is not None and call_id and not name:  # a piece under an index of its own (LocalAI)
            slot = self._by_id.get(call_id)
        elif slot is None and key is not None and not call_id and not name:
            # a piece with neither id nor name under an index no call has — by the spec a call's first fragment names
            # it — is the latest call's: Nebius' and Cerebras' endpoints put a call's later pieces under further
            # indexes (dirac-run/dirac#215), DeepSeek behind a relay a second call's arguments under the next index
            # after its head came under the first call's (agno-agi/agno#8880). Each was a call without a name:
            # malformed_response, the whole answer and its calls asked of the next model
            slot = self._at.get(None)
        if (slot is None or (call_id and slot["id"] and call_id != slot["id"] and (name or not slot["name"]))
                or (name and slot["name"] and ((name != slot["name"] and slot["args"]) or id(slot) in self._listed
                                               or _another_whole_call(slot["args"], args)))):
            slot = {"id": "", "name": "", "args": ""}
            self.calls.append(slot)
        self._at[key] = self._at[None] = slot
        self._listed.add(id(slot))
        if call_id and not slot["id"]:  # the first id a call is given stays its id (Poolside's change after it)
            slot["id"] = call_id
            self._by_id.setdefault(call_id, slot)
        if isinstance(extra := frag.get("extra_content"), dict) and extra:
            self.extras[id(slot)] = extra
        if name and name != slot["name"]:
            slot["name"] += name
        if isinstance(args, dict):
            if slot["args"]:
                raise ProviderError(Reason.MALFORMED_RESPONSE, "tool call arguments are partly text, partly an object")
            slot["args"] = json.dumps(args)
        elif args is not None:
            slot["args"] += args
            if args:
                self._pieces.setdefault(id(slot), []).append(args)

    def signed(self) -> dict[str, dict[str, Any]]:
        """The ``extra_content`` of each call that came with one, by call id."""
        return {c["id"]: self.extras[id(c)] for c in self.calls if c["id"] and id(c) in self.extras}

    def __iter__(self) -> Iterator[ToolCall]:
        given: dict[str, int] = {}
        for c in self.calls:
            if not c["name"]:
                raise ProviderError(Reason.MALFORMED_RESPONSE, "tool call without a name")
            seen = given[c["id"]] = given.get(c["id"], 0) + 1
            if seen > 1 and c["id"]:  # an id another call of this answer has (Xinference)
                c["id"] += f"_{seen}"
            call = tool_call(c["name"], c["args"], c["id"])
            if call.raw is not None and (resent := _resent(self._pieces.get(id(c), []))) is not None:
                call = ToolCall(c["name"], resent, c["id"])
            yield call


def _another_whole_call(before: str, args: Any) -> bool:
    """Does a named fragment whose arguments are a whole object, after a call whose arguments are another whole object,
    begin a call of its own? Gemini sends each of its parallel calls in a chunk of its own, whole, with no ``index``
    (brainlid/langchain#620: "Gemini emits each parallel call in its own SSE chunk, and its parts carry no index") and,
    through some relays, no id (openai/openai-agents-python#1959: "the call_id ... is empty"); relays over it give each
    ``index`` 0 (su-kaka/gcli2api#406, hermes-agent#62940). Read as one call's pieces, all but the last call were
    lost (:func:`_resent` kept the last object): a wrong answer passed on as right. The same object again is Mistral's
    resend of one call, and ``{}`` Gemini's placeholder before the arguments (both :func:`_resent`)."""
    if before[-1:] != "}" or not (isinstance(args, dict) or (isinstance(args, str) and args[-1:] == "}")):
        return False  # the usual piece of a call (a few characters) is not an object's end: no parse
    now, then = args if isinstance(args, dict) else try_loads(args), try_loads(before)
    return type(now) is dict and type(then) is dict and bool(then) and now != then


def _resent(pieces: list[str]) -> dict[str, Any] | None:
    """The arguments of a call whose pieces do not join into JSON because the server sent them again whole: each
    piece the arguments so far (DeepSeek's and Qianfan's cumulative mode, hermes-agent#35718), a ``{}`` placeholder
    then the arguments (Gemini's endpoint, autogen#7549), or the whole arguments twice (Mistral's and GLM-style
    servers, opencode#17339). The last piece, when it is an object and each earlier one is a start of it or an
    object of its own; else None (the joined pieces are malformed, as before)."""
    last = try_loads(pieces[-1]) if pieces else NOT_JSON
    if not isinstance(last, dict):
        return None
    for piece in pieces[:-1]:
        if not pieces[-1].startswith(piece) and not isinstance(try_loads(piece), dict):
            return None
    return last


def _glued(payload: str, held: int) -> dict[str, Any] | None:
    """The whole event after another answer's cut-off one, or None. Z.ai's GLM streams now and then flush a stale,
    cut-off event glued to the next, on one line — ``data: {"id":"…","created":…,"object":"chat.cdata: {…}``
    (zai-org/GLM-5#66, opencode#7692, #8282, #23442, kilocode#9432) — or on the line before it (opencode#25858): SSE
    reads either as one event whose data is not JSON, and the answer was malformed_response. The fragment is another
    answer's (its own ``id``, a ``created`` minutes older, cut before any content): the event after it is read and the
    fragment dropped. A fragment of this answer's own (its id or time, or neither to tell) is lost content: None.
    ``held``: the length of the data lines before this one (the fragment, when it stands on a line of its own)."""
    if held:
        fragment, tail = payload[:held], payload[held + 1:]
    else:
        at = payload.rfind("data:")
        if at <= 0:
            return None
        fragment, tail = payload[:at], payload[at + 5:]
    data = try_loads(tail)
    if type(data) is not dict or fragment.lstrip()[:1] != "{":
        return None
    said_id, said_time = _FRAGMENT_ID.search(fragment), _FRAGMENT_TIME.search(fragment)
    if (said_id is None or said_time is None or said_id.group(1) == data.get("id")
            or int(said_time.group(1)) == data.get("created")):
        return None  # every chunk of one answer has its id and time (OpenAI's reference): this answer's own
    log.debug("a cut-off event of another answer before this one's: its %d characters dropped", len(fragment))
    return data


#: what a chunk's delta may hold for :func:`_several` to join it with others: text, tool-call pieces, a legacy
#: ``function_call``'s pieces, and the ``audio`` an omni model speaks beside its text (read past, as in a chunk alone)
_TEXT_DELTA = frozenset({"role", "content", "reasoning_content", "reasoning", "tool_calls", "function_call", "audio"})


def _several(payload: str) -> dict[str, Any] | None:
    """Chunks written back to back in one event, ``{…}{…}`` (openai-python#663: "the api returns a single response
    with two chunks inside of it", each a ``chat.completion.chunk`` of a few characters), as one chunk: their texts
    joined in order, their tool-call pieces listed in order (as :class:`_ToolCalls` reads pieces one after another),
    the last finish reason and usage. The answer was malformed_response — with tool calls too until the tenth fault
    hunt: each call's pieces are its name, then its arguments a few characters at a time, the chunks most often
    written in one flush. None when a chunk holds anything else."""
    decoder, objects, at, text = json.JSONDecoder(), [], 0, payload.strip()
    while at < len(text):
        try:
            obj, at = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            return None
        if type(obj) is not dict:
            return None
        objects.append(obj)
        while at < len(text) and text[at].isspace():
            at += 1
    if len(objects) < 2:
        return None
    said: dict[str, list[str]] = {"content": [], "reasoning_content": []}
    pieces: list[Any] = []
    finish, usage = None, None
    for obj in objects:
        choices = obj.get("choices")
        if obj.get("error") or type(choices) is not list or len(choices) > 1:
            return None
        for choice in choices:
            delta = choice.get("delta") if type(choice) is dict else None
            if type(delta) is not dict or not _TEXT_DELTA.issuperset(k for k, v in delta.items() if v is not None):
                return None  # OpenAI's chunks carry "refusal": null beside the text
            for key, piece in (("content", delta.get("content")),
                               ("reasoning_content", delta.get("reasoning_content") or delta.get("reasoning"))):
                if piece is not None and type(piece) is not str:
                    return None
                said[key].append(piece or "")
            if (frags := delta.get("tool_calls")) is not None:
                pieces.extend(frags if type(frags) is list else [frags])
            elif legacy := delta.get("function_call"):
                pieces.append(_legacy_piece(legacy))
            finish = choice.get("finish_reason") or finish
        usage = obj.get("usage") or usage
    joined: dict[str, Any] = {key: "".join(parts) for key, parts in said.items() if any(parts)}
    if pieces:
        joined["tool_calls"] = pieces
    return {**objects[0], "choices": [{"index": 0, "delta": joined, "finish_reason": finish}], "usage": usage}


#: where an error object opens in an event's data that is not JSON as a whole
_ERROR_OPENS = re.compile(r'\{\s*"error"\s*:')


def _error_after(payload: str) -> dict[str, Any] | None:
    """The server's error object that ends an event's data after something that is not JSON with it: written
    straight after a chunk (``{…}{"error": …}``, openai-python#663's glue) or after a chunk cut short
    (``{"id":"…","choi{"error": …}``), compact or pretty-printed over the lines after (Gemini's ``{`` / ``  "error":
    {`` / ``    "code": 503,`` …, OmniRoute#4177, bifrost#5262; :meth:`StreamResponse._event_batches` gives those
    lines as data), in Gemini's array or not. The answer was malformed_response — never asked again, the model
    counted broken — where the server said why it stopped (an overload, a rate limit). None when no error object
    ends the data."""
    decoder = json.JSONDecoder()
    for opened in _ERROR_OPENS.finditer(payload):
        try:
            obj, end = decoder.raw_decode(payload, opened.start())
        except (ValueError, RecursionError):
            continue
        if type(obj) is dict and obj.get("error") and payload[end:].strip() in ("", "]"):
            return obj
    return None


class _Odd(Enum):
    """What :func:`_odd_event` made of an event's data that is not JSON as it came."""

    SKIP = "skip"
    END = "end"
    HOLD = "hold"
    DATA = "data"


def _odd_event(payload: str, held: str, limit: int) -> tuple[_Odd, Any]:
    """An event's data that is not JSON as it came (``payload``, the data lines ``held`` before it joined in front),
    read as the servers that send it mean it — the chat stream's and the text-completion stream's alike: SKIP (a
    keep-alive comment passed on as data; None), END (``[DONE]`` framed twice; None), DATA with the object meant, or
    HOLD with the text so far (a JSON document over several data lines, completed by the lines after). Raises the
    server's error said in words, and malformed_response for data that can never become JSON."""
    data: Any = NOT_JSON
    if not held and payload.lstrip()[:1] == ":":
        # a keep-alive comment a proxy passed on as data ("data: : OPENROUTER PROCESSING": mnfst/llm-gateway#2053): no
        # JSON starts so. It was held, joined to the next event and the answer refused as malformed at the first
        # pause of its upstream
        return _Odd.SKIP, None
    if not held and payload[:5] == "data:":
        # "data: data: {...}": a server that framed its events twice (shimmy#26, aprender#2015)
        payload = payload[5:].strip()
        if payload == "[DONE]":
            return _Odd.END, None
        data = try_loads(payload)
    if data is NOT_JSON and (glued := _glued(payload, len(held))) is not None:
        data = glued
    if data is NOT_JSON and not held and (several := _several(payload)) is not None:
        data = several
    if data is NOT_JSON and (error := _error_after(payload)) is not None:
        data = error
    if data is NOT_JSON and not held and (failed := said_error(payload)) is not None:
        raise failed  # "data: error: <message>": the server's error in words (http.SAID_ERROR)
    if data is NOT_JSON:  # a JSON document over several data lines (pretty-printed)?
        if held and try_loads(payload[len(held) + 1:]) is not NOT_JSON:
            loads(held, "SSE data")  # no: the held line is broken on its own (raises)
        if len(payload) > limit:
            loads(payload, "SSE data")  # raises
        return _Odd.HOLD, payload
    return _Odd.DATA, data


def _legacy_piece(legacy: Any) -> dict[str, Any]:
    """A legacy ``function_call`` delta (``{"name", "arguments"}``, pieces of one call: OpenAI's shape before ``tools``)
    as a piece of the one call it is, for :class:`_ToolCalls`. Servers still send it for ``tools``: functionary's
    vLLM server (MeetKai/functionary#243: ``function_call`` and ``tool_calls: null``, ``finish_reason:
    "function_call"``), llama-cpp-python's function-calling chat formats (both, MeetKai/functionary#156), gateways and
    proxies (QwenLM/qwen-code#6240). Read only where no ``tool_calls`` came beside it."""
    return {"index": 0, "function": legacy}


def _listed_error(data: Any) -> dict[str, Any] | None:
    """Gemini's error in its array form (``[{"error": {…}}]``: its stream without ``alt=sse`` is one JSON array, and
    a relay that copies the upstream's bytes passes the error on so, bifrost#5262) as the error object; None for
    anything else."""
    if type(data) is list and len(data) == 1 and type(data[0]) is dict and data[0].get("error"):
        return data[0]
    return None


#: the id and the time a cut-off event was made, which tell another answer's (``{"id":"2026043020405529…",
#: "created":1777552855,…``: GLM writes both first)
_FRAGMENT_ID = re.compile(r'"id"\s*:\s*"([^"]+)"')
_FRAGMENT_TIME = re.compile(r'"created"\s*:\s*(\d{1,15})\b')


def _joined(texts: list[str]) -> Chunk:
    """The text deltas of one read as one chunk that counts them all.

    Chunks on the hot path are made with positional arguments (kind, text, tool_call, usage, stop_reason,
    pieces): a class called with keywords gets them as a dict built for the call, ~850 instructions more a
    chunk (issue #15)."""
    if len(texts) == 1:
        return Chunk("text", texts[0])
    return Chunk("text", "".join(texts), None, None, "", len(texts))

#: where OpenAI-compatible servers listen by default: llama.cpp's llama-server, LM Studio, vLLM
COMMON_ENDPOINTS = ("http://127.0.0.1:8080", "http://127.0.0.1:1234", "http://127.0.0.1:8000")
_SERVERS = {"llamacpp": "llama.cpp server", "vllm": "vLLM", "organization_owner": "LM Studio"}


class _Lister(StrEnum):
    """A server whose /v1/models is the whole of what it answers (any other name is a 404), by its name in a
    sentence."""

    VLLM = "vLLM"
    OLLAMA = "Ollama"
    LM_STUDIO = "LM Studio"


#: what else fixes an id a server does not list, after "write models.X.model: ID"
_LISTER_FIX = {_Lister.VLLM: " (vLLM's --served-model-name sets a shorter one)",
               _Lister.OLLAMA: ", or `ollama pull {model}` on that server",
               _Lister.LM_STUDIO: ", or download and load '{model}' in LM Studio"}


def _ollama_name(model_id: str) -> str:
    """An Ollama model name as Ollama matches it: no case, ``:latest`` implied."""
    name = model_id.lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _ollama_namespace(model_id: str) -> str:
    """The ``owned_by`` Ollama's /v1/models gives an id: ``model.ParseName(id).Namespace`` (ollama openai/openai.go
    ``ToListCompletion``) — "library" for ``llama3.2:latest``, the user for ``me/x:1b`` or
    ``hf.co/me/x:Q4_K_M``."""
    parts = model_id.rsplit(":", 1)[0].split("/")
    return parts[-2] if len(parts) >= 2 else "library"


def _listing_owner(entries: list[dict[str, Any]]) -> _Lister | None:
    """Which server listed ``entries``, where its listing is authoritative, else None.

    - vLLM: every ``owned_by`` is "vllm" (vllm/entrypoints/openai/protocol.py ``ModelCard``); another name is a 404
      (serving_engine.py ``_check_model``).
    - Ollama: every id carries its tag (``name:tag``, as Ollama lists them) and ``owned_by`` is its namespace
      (:func:`_ollama_namespace`); another name is a 404 "model 'x' not found".
    - LM Studio: ``owned_by`` "organization_owner" (lmstudio-ai/lms#416), two or more models listed: another name
      is a 404 "Model \"x\" not found. Please specify a valid model." (letta-ai/letta#1876); with one model it
      answers any name with that one (lmstudio-bug-tracker#619), so one listed says nothing."""
    owners = [e.get("owned_by") for e in entries]
    ids = [e.get("id") for e in entries]
    if all(o == "vllm" for o in owners):
        return _Lister.VLLM
    if all(isinstance(i, str) and ":" in i.rsplit("/", 1)[-1] and o == _ollama_namespace(i)
           for i, o in zip(ids, owners, strict=True)):
        return _Lister.OLLAMA
    if len(entries) >= 2 and all(o == "organization_owner" for o in owners):
        return _Lister.LM_STUDIO
    return None


def _positive(*values: Any) -> int | None:
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0), None)


def _file_size(model_id: str, endpoint: str) -> int | None:
    """The size of the GGUF file a server on this machine lists its model by: ``python -m llama_cpp.server`` without
    ``--model_alias`` lists the ``--model`` path as the id (``{"id": "/models/x.gguf", "owned_by": "me"}``) and no
    size, so ``init --detect`` wrote no ``memory_gb`` and ``plan`` could only say "set memory_gb" of a file right
    there. None for a relative path (the server's own directory), another machine's, or no file."""
    if not model_id.lower().endswith(".gguf") or not os.path.isabs(model_id):
        return None
    if not on_this_machine(urlsplit(endpoint).hostname or ""):
        return None
    try:
        return os.path.getsize(model_id) or None
    except OSError:
        return None


def _served(entry: dict[str, Any], endpoint: str) -> ServedModel | None:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        return None
    meta = _mapping(entry.get("meta"))
    params = _positive(meta.get("n_params"))
    return ServedModel(
        model_id=model_id, endpoint=endpoint,
        server=_SERVERS.get(str(entry.get("owned_by")), "OpenAI-compatible server"),
        size_bytes=_positive(meta.get("size")) or _file_size(model_id, endpoint),
        parameters_b=params / 1e9 if params else None,
        trained_context=_positive(meta.get("n_ctx_train"), entry.get("context_length")),
        served_context=_positive(entry.get("max_model_len")),
    )


#: seconds for llama-server's /props after its listing answered
SLOTS_TIMEOUT = 1.0


async def _slots(endpoint: str, headers: dict[str, str] | None = None) -> ServerParallel | None:
    """How many requests llama-server runs at once: ``total_slots`` in its ``GET /props`` (tools/server/README.md:
    "the total number of slots for process requests (defined by `--parallel` option)"); None from a server without
    ``/props`` (vLLM, LM Studio, llama_cpp.server) or one that does not answer it within :data:`SLOTS_TIMEOUT` (the
    listing took its share of ``init --detect``'s budget). ``init --detect`` wrote ``max_concurrent: 1`` whatever the
    server ran."""
    async with contextlib.aclosing(make_client(server_root(endpoint), headers)) as root:
        try:
            status, props = await root.request_json("GET", "/props", timeout=SLOTS_TIMEOUT)
        except ProviderError:
            return None
    slots = _positive(props.get("total_slots")) if status == 200 and isinstance(props, dict) else None
    return (ServerParallel(slots, f"total_slots {slots} in llama-server's /props, its --parallel",
                           server="llama-server") if slots else None)


#: the server's context in its refusal's words ("This model's maximum context length is 2048 tokens. However, …")
_WINDOW = re.compile(r"maximum context length is \d+ tokens")

_VERSION_SEGMENT = re.compile(r"^v\d+(?:(?:alpha|beta)\d*)?$")


@functools.lru_cache(maxsize=64)  # asked per request (issue #15): a dict lookup after the first
def versioned(endpoint: str) -> bool:
    """The endpoint already names the API version, so the request paths go below it: ``…/v1`` (most servers,
    Groq's ``/openai/v1``, OpenRouter's ``/api/v1``) and Gemini's ``/v1beta/openai``. Only a bare server address
    gets ``/v1`` added — Gemini's base had ``/v1/chat/completions`` appended and every request was a 404. Azure
    OpenAI's deployment URL (``/openai/deployments/NAME``) names its version in its query (``?api-version=``): the
    paths go below it too (learn.microsoft.com, azure/ai-services/openai/reference: ``POST
    https://{endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=2024-10-21``), as does any
    endpoint whose query names an ``api-version`` (Azure AI Foundry's model inference, ``…/models?api-version=…``)."""
    url = urlsplit(endpoint)
    parts = url.path.split("/")
    return (any(_VERSION_SEGMENT.match(part) for part in parts) or _azure_deployment(parts)
            or "api-version=" in url.query.lower())


def models_path(endpoint: str) -> str:
    """Where the server at ``endpoint`` lists its models: below the version the endpoint names (:func:`versioned`)."""
    return "/models" if versioned(endpoint) else "/v1/models"


def _azure_deployment(parts: list[str]) -> bool:
    """The path is Azure OpenAI's ``/openai/deployments/NAME``."""
    return len(parts) >= 4 and parts[-3:-1] == ["openai", "deployments"] and bool(parts[-1])


def azure(endpoint: str) -> bool:
    """Is ``endpoint`` an Azure OpenAI resource (which takes the key as ``api-key``): one of its hosts, or its
    deployment path behind a name of one's own (a gateway, a private endpoint's DNS name)?"""
    url = urlsplit(endpoint)
    return (url.hostname or "").rstrip(".").lower().endswith(AZURE_HOSTS) or _azure_deployment(url.path.split("/"))


#: the data-plane route listing an Azure resource's deployments, the names a chat takes as its model, each with the
#: model it serves; the api-version that still serves it (langflow#14509; model-hotel#506, "as of 2026-07-18 the last
#: api-version serving the listing")
AZURE_DEPLOYMENTS = "/openai/deployments?api-version=2023-03-15-preview"
#: where the key for listing them is read: openai-python's AzureOpenAI client reads this variable when given no key
AZURE_KEY_ENV = "AZURE_OPENAI_API_KEY"
#: deployments of models that cannot chat and are not embedding models either: images, speech, video
_NOT_TEXT = re.compile(r"dall-e|gpt-image|whisper|tts|transcribe|realtime|sora", re.IGNORECASE)


async def _azure_deployments(endpoint: str) -> list[ServedModel]:
    """What an Azure OpenAI resource serves: its deployments (``init --detect --endpoint https://NAME.openai.azure.com
    /openai/v1``). The v1 API's ``/models`` answers Azure's whole catalog — 331 base models, none callable until
    deployed, and the deployments' own names nowhere in it (model-hotel#506; the REST reference's "Models - List":
    "all models that are accessible by the Azure OpenAI resource") — and without the key it is a 401. Asked with the
    key (:data:`AZURE_KEY_ENV`, as ``api-key``), the deployments come with the model each serves: one still being
    created is left out, an embedding model's is marked so (it cannot chat), one of images or speech is left out. Each
    is served from the cloud (``remote``), at the resource's v1 API, its deployment name the model."""
    url = urlsplit(endpoint)
    origin = f"{url.scheme}://{url.netloc.rpartition('@')[2]}"
    key = clean_secret(os.environ.get(AZURE_KEY_ENV))
    client = make_client(origin, {"api-key": key} if key else None)
    try:
        status, data = await client.request_json("GET", AZURE_DEPLOYMENTS, timeout=FACT_TIMEOUT)
    finally:
        await client.aclose()
    if status in (401, 403):
        raise ProviderError(Reason.AUTH_ERROR, f"{origin} refused to list its deployments (HTTP {status}): "
                            + (f"is {AZURE_KEY_ENV} this resource's key?" if key else f"set {AZURE_KEY_ENV}"))
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ProviderError(Reason.MALFORMED_RESPONSE, f"{origin}{AZURE_DEPLOYMENTS} is not a deployment list")
    found = []
    for entry in data["data"]:
        name, model = (entry.get("id"), entry.get("model")) if isinstance(entry, dict) else (None, None)
        if not isinstance(name, str) or not name or entry.get("status", "succeeded") != "succeeded":
            continue
        model = model if isinstance(model, str) else ""
        if _NOT_TEXT.search(model):
            continue
        embedding = bool(re.search(r"embed", model, re.IGNORECASE))
        found.append(ServedModel(model_id=name, endpoint=f"{origin}/openai/v1", server="Azure OpenAI",
                                 family=model, remote=True, capabilities=frozenset(
                                     {ServerCapability.EMBEDDING if embedding else ServerCapability.COMPLETION})))
    return found


class OpenAIProvider(HttpProvider):
    sends_prompts = True
    default_endpoint = DEFAULT_ENDPOINT

    def answer_path(self) -> str | None:
        return models_path(self.endpoint)

    @classmethod
    def endpoints_to_try(cls) -> tuple[str, ...]:
        return COMMON_ENDPOINTS

    @classmethod
    async def served_models(cls, endpoint: str) -> list[ServedModel]:
        """``/v1/models`` (llama-server adds ``meta`` with the parameter count and trained context,
        vLLM ``max_model_len``); an Azure resource's deployments (:func:`_azure_deployments`)."""
        if azure(endpoint):
            return await _azure_deployments(endpoint)
        client = make_client(endpoint)
        path = models_path(endpoint)
        try:
            status, data = await client.request_json("GET", path, timeout=FACT_TIMEOUT)
        finally:
            await client.aclose()
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ProviderError(Reason.MALFORMED_RESPONSE, f"{shown_url(joined(endpoint, path))} " + (
                "is not a model list" if status == 200 else f"answered HTTP {status}, not a model list"))
        found = [m for e in data["data"] if isinstance(e, dict) and (m := _served(e, endpoint)) is not None]
        parallel = await _slots(endpoint) if found else None
        return [dataclasses.replace(m, parallel=parallel) for m in found] if parallel else found

    def base_profile(self) -> ModelProfile:
        qwen = "qwen" in self.model_id.lower()
        return ModelProfile(thinking_switch=ThinkingSwitch.QWEN_SOFT if qwen else ThinkingSwitch.NONE)

    def client_headers(self) -> dict[str, str]:
        """The key as a bearer token; to an Azure OpenAI resource as ``api-key``, the header its API reference names
        for a key on both of its shapes, the deployment URL and the v1 API (the bearer there is a Microsoft Entra ID
        token: a key sent so was a 401 on every request; LiteLLM's azure provider sends ``api-key`` likewise)."""
        key = self.config.api_key()
        if not key:
            return {}
        return {"api-key": key} if azure(self.endpoint) else {"authorization": f"Bearer {key}"}

    #: OpenAI's bound on one embeddings call (its API reference: "any array must be 2048 dimensions or less", "the
    #: sum of all tokens across inputs in a single request" at most 300,000)
    embed_batch = BatchLimit(2048, 300_000)

    #: learned: the server refuses ``stream_options`` (sent for the usage chunk), e.g. Mistral's API
    _refuses_stream_options = False

    #: learned: the server refuses ``parallel_tool_calls`` (OpenAI's o-series, OpenRouter for a model no upstream of
    #: which takes it): a request for at most one call goes without it, the gateway keeping the first call
    _refuses_parallel_flag = False
    #: learned: the sampling fields the server refuses for this model, until ``LEARNED_FOR`` after its last refusal
    #: (providers/sampling.py)
    _sampling_refused: RefusedFields | None = None
    #: requests asked without a sampling field whose value the server refused (that request's only), the fields and
    #: the server's words, by ``id`` of the request, for :meth:`left_out` (the last :data:`_ONCE_KEPT`)
    _refused_once: OrderedDict[int, tuple[ChatRequest, frozenset[str], str]] | None = None

    def _refused_sampling(self) -> frozenset[str]:
        """The sampling fields not sent to this model's server: those it refused within ``LEARNED_FOR``."""
        known = self._sampling_refused
        if known is None:
            return _NONE_REFUSED
        if (fields := known.standing()) is None:
            self._sampling_refused = None
            return _NONE_REFUSED
        return fields

    def _refuse_sampling(self, refused: frozenset[str]) -> None:
        known = self._sampling_refused
        self._sampling_refused = (RefusedFields(refused, time.monotonic()) if known is None or known.standing() is None
                                  else known.more(refused))

    def _refit_for(self, request: ChatRequest) -> Refit | None:
        """The refit of one request's calls where it carries sampling fields: a refused value is left out of this
        request alone, and remembered for :meth:`left_out`; None: the client's own (:meth:`_without_refused`)."""
        if not sampled(request):
            return None

        def refit(error: ProviderError, body: dict[str, Any]) -> dict[str, Any] | None:
            return self._without_refused(error, body, request)
        return refit
    #: learned: the server takes the seed as Mistral's ``random_seed`` (providers/sampling.py)
    _random_seed = False
    #: learned: the server takes tool-call ids of nine letters and digits only (Mistral's)
    _nine_char_ids = False
    #: learned: the server refuses an assistant turn without ``reasoning_content`` (DeepSeek's thinking mode)
    _reasoning_back = False
    #: learned: the model's chat template refuses a system message that is not the first (Qwen's)
    _system_first = False
    #: learned: the server refuses ``suffix`` on /v1/completions; FIM goes to its /infill (llama-server's)
    _infill: HttpClient | None = None
    #: learned: this server's empty event stream is a prompt past its context (llama_cpp.server's: asked whole once,
    #: it said so), the words it said then
    _empty_said: str | None = None
    #: what the server attached to its tool calls, by call id, sent back with them (:data:`MAX_SIGNED_CALLS` kept)
    _extras: OrderedDict[str, dict[str, Any]] | None = None

    def _keep_extras(self, extras: dict[str, dict[str, Any]]) -> None:
        """Gemini 3 through its OpenAI-compatible endpoint signs each tool call (``extra_content: {"google":
        {"thought_signature": …}}``) and refuses the next turn if the signature does not come back with the call: 400
        "Function call is missing a thought_signature in functionCall parts" (discuss.ai.google.dev/t/109823,
        ai.google.dev/gemini-api/docs/thought-signatures). A Message keeps no such field: every tool loop's second
        turn on Gemini 3 was a bad_request. Kept here by call id, and sent back with the call."""
        if self._extras is None:
            self._extras = OrderedDict()
        for call_id, extra in extras.items():
            self._extras[call_id] = extra
            self._extras.move_to_end(call_id)
        while len(self._extras) > MAX_SIGNED_CALLS:
            self._extras.popitem(last=False)

    def _without_refused(self, error: ProviderError, body: dict[str, Any], request: ChatRequest | None = None
                         ) -> dict[str, Any] | None:
        """``body`` refitted to what the server refused, or None (another refusal). Learned, as ``probe`` would: asked
        again at once, and later requests go so from the start.

        ``stream_options`` refused: Mistral's API answers it 422 "Extra inputs are not permitted" (loc
        ``body.stream_options.include_usage``: openai-agents-python#442, avante.nvim#2347), Azure's older API versions
        "Unrecognized request argument supplied: stream_options", xAI "Argument not supported on this model". Every
        request to such a server was refused: a model never used. Sent without it (the usage is then the server's own
        last chunk, or estimated).

        Tool-call ids refused: Mistral's API (and vLLM serving Mistral models) takes ids of exactly nine letters and
        digits (mistral-common's validator: "Tool call id was call_0_0 but must be a-z, A-Z, 0-9, with a length of
        9."). A conversation begun on another model (OpenAI's ``call_…``, Anthropic's ``toolu_…``, the ids made up
        for Ollama's calls) was refused on every turn: Mistral could not take it over. The ids are sent as nine
        characters derived from each (the same every turn, so a call and its result still pair)."""
        if error.reason is not Reason.BAD_REQUEST:
            return None
        if "parallel_tool_calls" in body and ("parallel_tool_calls" in error.message
                                              or _NO_ENDPOINT_FOR_PARAMETERS in error.message):
            # OpenAI's o-series: 400 "Unsupported parameter: 'parallel_tool_calls' is not supported with this model."
            # (fast-agent#279, semantic-kernel#10365, tensorzero#2805); OpenRouter's 404 "No endpoints found that can
            # handle the requested parameters." for a model none of whose upstreams lists it. The one-call ask is a
            # courtesy (the gateway keeps the first call whatever comes): asked again at once without it, learned
            if not self._refuses_parallel_flag:
                self._refuses_parallel_flag = True
                log.info("model %s: the server refuses parallel_tool_calls; asking without it from now on", self.name)
            return {k: v for k, v in body.items() if k != "parallel_tool_calls"}
        if "stream_options" in error.message and "stream_options" in body:
            if not self._refuses_stream_options:
                self._refuses_stream_options = True
                log.info("model %s: the server refuses stream_options; asking without it from now on", self.name)
            return {k: v for k, v in body.items() if k != "stream_options"}
        if not self._random_seed and (renamed := seed_renamed(error.message, body)) is not None:
            # Mistral's API refuses ``seed`` as an extra input: its seed is ``random_seed`` (providers/sampling.py)
            self._random_seed = True
            log.info("model %s: the server refuses seed; sending it as random_seed from now on", self.name)
            return renamed
        if MISTRAL_SEED in body and MISTRAL_SEED in error.message:
            # not even as random_seed: left out, as any refused seed
            self._refuse_sampling(frozenset({"seed"}))
            log.info("model %s: the server refuses random_seed; asking without a seed from now on", self.name)
            return {k: v for k, v in body.items() if k != MISTRAL_SEED}
        if (refused := refused_fields(error.message, body)) and request is not None and value_refused(error.message):
            # the value refused, not the field (vLLM's "top_p must be in (0, 1], got 0.0."): this request is asked
            # again at once without it, and the next sends the field as its client gives it (providers/sampling.py).
            # The repetition penalty's value, refused under one of its names, is refused under the other too
            if refused & _PENALTY_NAMES:
                refused |= _PENALTY_NAMES
            self._left_out_once(request, refused, error.message)
            log.info("model %s: the server refuses the value of %s; asking this request without it", self.name,
                     ", ".join(sorted(refused)))
            return {k: v for k, v in body.items() if k not in refused}
        if refused:
            # a client's seed, top_p or penalty the server will not take (providers/sampling.py): asked again at
            # once without it, learned; the routing log says it was left out (left_out)
            self._refuse_sampling(refused)
            log.info("model %s: the server refuses %s; asking without it from now on", self.name,
                     ", ".join(sorted(refused)))
            return {k: v for k, v in body.items() if k not in refused}
        if "Missing `reasoning_content`" in error.message or "reasoning_content is missing" in error.message:
            # DeepSeek's thinking mode (and Kimi's) with tools: "Missing `reasoning_content` field in the assistant
            # message at message index 1" (api-docs.deepseek.com/guides/thinking_mode) — every tool conversation's
            # second turn was refused. Sent with each assistant turn's thinking where modelyard kept it, else empty
            messages = body.get("messages")
            if not isinstance(messages, list) or not any(
                    isinstance(m, dict) and m.get("role") == "assistant" and "reasoning_content" not in m
                    for m in messages):
                return None
            if not self._reasoning_back:
                self._reasoning_back = True
                log.info("model %s: the server wants reasoning_content on assistant turns; sending it from now on",
                         self.name)
            return {**body, "messages": [{**m, "reasoning_content": ""} if isinstance(m, dict)
                                         and m.get("role") == "assistant" and "reasoning_content" not in m else m
                                         for m in messages]}
        if SYSTEM_FIRST_WORDS.search(error.message) and (later := system_first(body.get("messages"))):
            if not self._system_first:
                self._system_first = True
                log.info("model %s: its chat template takes a system message only first; later ones go as user "
                         "messages from now on", self.name)
            return {**body, "messages": later}
        if "missing a thought_signature" in error.message:
            # a tool turn Gemini did not make (another model's, or one from before a restart): Google documents a
            # stand-in for such histories, "skip_thought_signature_validator", on the first call of each step
            # (ai.google.dev/gemini-api/docs/thought-signatures). This turn is asked again with it
            return _unsigned_calls_stood_in(body)
        if "with a length of 9" in error.message and "id" in error.message:
            refitted = _nine_char_ids(body)
            if refitted is None:
                return None
            if not self._nine_char_ids:
                self._nine_char_ids = True
                log.info("model %s: the server takes tool-call ids of 9 letters and digits; sending such from now on",
                         self.name)
            return refitted
        return None

    def _seed_field(self, request: ChatRequest) -> str:
        """The seed's name in this server's body: Mistral's ``random_seed`` on its API's hosts or once learned. Looked
        up only for a request that has a seed: the endpoint's host is parsed for it (``urlsplit``, ~100 bytecodes a
        request that asked for no seed, issue #15)."""
        if request.seed is None:
            return "seed"
        return MISTRAL_SEED if self._random_seed or mistral_api(self.endpoint) else "seed"

    def _left_out_once(self, request: ChatRequest, fields: frozenset[str], words: str) -> None:
        kept = self._refused_once
        if kept is None:
            kept = self._refused_once = OrderedDict()
        known = kept.get(id(request))
        if known is not None and known[0] is request:
            fields |= known[1]
        kept[id(request)] = (request, fields, words)
        while len(kept) > _ONCE_KEPT:  # a request that never got to left_out (it failed after): not kept for good
            kept.popitem(last=False)

    def left_out(self, request: ChatRequest) -> str:
        once = None
        if self._refused_once and (kept := self._refused_once.pop(id(request), None)) is not None \
                and kept[0] is request:
            once = kept[1], kept[2]
        refused = self._refused_sampling()
        return left_out(request, refused, once) if refused or once is not None else ""

    def _path(self) -> str:
        return "/chat/completions" if versioned(self.endpoint) else "/v1/chat/completions"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = _messages(request.messages, self._reasoning_back, self._extras)
        if self._nine_char_ids:
            messages = _nine_char_messages(messages)
        if self._system_first:
            messages = system_first(messages) or messages
        switch = thinking_switch(self.profile, request.thinking)
        if switch:
            for m in reversed(messages):
                if m["role"] == "user":
                    m["content"] += switch
                    break
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self._refuses_stream_options:
            del body["stream_options"]
        if request.tools:
            body["tools"] = openai_tools(request.tools)
            if request.single_tool_call and not self._refuses_parallel_flag:
                # the client takes at most one call (its parallel_tool_calls: false, Anthropic's
                # disable_parallel_tool_use): passed on, so the model writes one instead of calls the gateway drops.
                # OpenAI's API reference documents it; vLLM's ChatCompletionRequest and llama-server
                # (``parallel_tool_calls``, common/chat) take it, Groq and OpenRouter list it among their parameters,
                # Ollama's /v1 ignores a field it does not know. A server that refuses it is learned
                # (_without_refused)
                body["parallel_tool_calls"] = False
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        put_sampling(request, body, self._refused_sampling(), self._seed_field(request))
        if request.json_schema:
            # the client's strict where its API says one (ChatRequest.json_strict), else exactly
            strict = request.json_strict if request.json_strict is not None else True
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": request.json_schema, "strict": strict}}
        elif request.json_output:
            body["response_format"] = {"type": "json_object"}
        return body

    def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        if request.prompt is not None:
            return self._prompted(request, timeouts)
        return self._stream(request, timeouts, join=False)

    def joined(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        if request.prompt is not None:
            return self._prompted(request, timeouts)
        return self._stream(request, timeouts, join=True)

    async def _stream(self, request: ChatRequest, timeouts: Timeouts, *, join: bool, streamed: bool = True
                      ) -> AsyncGenerator[Chunk, None]:
        calls = _ToolCalls()
        usage: Usage | None = None
        data: Any = None  # the last event read: Ollama's failure is told by it (_ollama_failed)
        deltas = 0
        held = ""  # data lines of an event not yet complete JSON
        errored = False  # an "event: error" line came: its data is the server's error
        unsaid = False  # an "event: error" ended with no data: the server's error, without its words
        refused = False  # the model's refusal came (delta.refusal) in place of content
        delta_seen = False  # a choice carried a "delta": the stream's, not a whole answer's "message"
        lone: int | None = None  # the index of the one choice, where the answer's is not 0 (see below)
        said: list[str] | None = [] if request.tools else None  # the text, kept when tools are offered (see below)
        increments = Increments()
        finish = ""
        finished = False
        plain = False  # a text chunk came without a finish reason: this server does not put one on every chunk
        client = self.client  # a property: read once (issue #15)
        body = self.body(request)
        if not streamed:  # asked again whole: see below
            body["stream"] = False
            body.pop("stream_options", None)
        async with client.stream(self._path(), body, timeouts, _extract_error,
                                 limit=self.response_limit, refit=self._refit_for(request)) as resp:
            # a server that ignores stream: true (or a proxy that buffers) sends the whole completion as JSON:
            # its choices carry "message" where a stream's carry "delta", and the loop reads either
            if resp.is_json:
                batches = resp.whole_json()
            else:
                batches = resp.sse_batches("an event stream")
                resp.quiet_if_empty = streamed
            async for events in batches:  # a list per read (issue #15)
                # joined (a buffered answer): the text deltas of one read go on as one chunk (issue #15). They
                # arrived together, so the time bounds see the same, and each chunk costs a step through every
                # layer above. A stream to a client keeps one chunk per delta, as the server sent them
                texts: list[str] = []
                try:
                    for field, payload in events:
                        if field != "data":
                            if field == "event":
                                errored = payload.strip() == "error"  # SSE's own error event
                            elif not field and errored:  # the event ended without data (http.DISPATCHED): its
                                errored, unsaid = False, True  # type ends with it, the events after are the answer's
                            continue  # event names, ids, retry hints
                        if errored:
                            raise error_field(payload)
                        if payload == "[DONE]" or payload.strip() == "[DONE]":
                            finished = True
                            break
                        if held:  # SSE: the data lines of one event are one text, joined by newlines
                            payload = held + "\n" + payload
                        try:  # try_loads, its usual case inline (a call fewer per event, issue #15)
                            data = orjson_loads(payload)
                        except ValueError:
                            data = try_loads(payload)
                        if data is NOT_JSON:  # the usual JSON event pays no check below (issue #15)
                            odd, data = _odd_event(payload, held, self.response_limit)
                            if odd is _Odd.END:
                                finished = True
                                break
                            if odd is not _Odd.DATA:  # a comment skipped, or a document not yet whole held
                                held, data = data or "", NOT_JSON
                                continue
                        held = ""
                        if not isinstance(data, dict):
                            if data is None:  # "data: null" between the reasoning and the answer (AgentRouter's
                                continue  # relay of Claude, Kilo-Org/kilocode#3083): says nothing. The answer was
                                # refused as malformed_response, a good one lost and never asked again
                            if (data := _listed_error(data)) is None:
                                raise ProviderError(Reason.MALFORMED_RESPONSE, "SSE data is not an object")
                        if data.get("error"):  # OpenAI, vLLM, llama.cpp and OpenRouter report mid-stream errors so
                            kind, message = _extract_error(data)
                            err = data["error"]
                            raise stream_error(kind, message, err.get("code") if isinstance(err, dict) else None)
                        if ((reported := data.get("usage")) is not None and type(reported) is dict
                                and _COUNTED.intersection(reported)):
                            # a usage object that counts neither side is no count: MiniMax's on every chunk,
                            # {"total_tokens": 0, "total_characters": 0} (MiniMax-M2.5#2), logged the answer as 0
                            # tokens in and out where the estimate below was kept
                            usage = _counted(reported) or usage
                            if usage is not None and "timings" in data:  # llama-server's, on its usage chunk
                                _timed_by_server(usage, data["timings"])
                        if len(data) == 1 and loading_status(data):  # llama-swap's loading status, not the model's
                            continue  # thinking (llama_swap.py)
                        choices = data.get("choices")
                        if finish and reported is not None and not choices:  # the usage chunk, after the last
                            resp.answered = True
                        if choices is None:
                            if data.get("error_code") or data.get("object") == "error":
                                raise _bare_error(data)
                            if (minimax := _base_resp_error(data)) is not None:
                                raise minimax
                            continue  # a usage-only or keep-alive object
                        if not isinstance(choices, list):
                            raise ProviderError(Reason.MALFORMED_RESPONSE, f"choices is a {type(choices).__name__}")
                        for choice in choices:
                            if not isinstance(choice, dict):
                                raise ProviderError(Reason.MALFORMED_RESPONSE, "a choice is not an object")
                            index = choice.get("index")
                            if lone is not None:  # the choice read from the start: the others are not its words
                                if index != lone:  # (n > 1 whose choice 1 came first: openai-python#3709)
                                    continue
                            elif index and type(index) is int:
                                # n > 1 (a client's n passed on by a proxy, a server's default): the answer is choice
                                # 0; no index (Gemini's endpoint) is choice 0. But a lone choice numbered otherwise is
                                # the answer: Gemini's through LiteLLM, "index": 1 (litellm#3678). Skipped, the whole
                                # answer was read as nothing — unusable_reply, a good answer asked of the next model
                                if delta_seen or any(
                                        type(other) is dict and not other.get("index") for other in choices):
                                    continue
                                lone = index
                            if (delta := choice.get("delta")) is not None:
                                delta_seen = True
                            if not delta:
                                # a whole answer's "message"; after deltas, a snapshot of all they said, sent again
                                # as the stream's last chunk (hermes-browser-extension#11): read, it said the answer
                                # twice. Its finish reason still counts
                                delta = {} if delta_seen else choice.get("message") or {}
                            if not isinstance(delta, dict):
                                raise ProviderError(Reason.MALFORMED_RESPONSE, "a choice's delta is not an object")
                            # content_parts, with its two usual cases inline: nothing, or a plain string (issue #15)
                            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                            if reasoning is None:
                                reasoning = ""
                            elif type(reasoning) is not str:
                                reasoning, _ = content_parts(reasoning, "delta.reasoning_content")
                            text = delta.get("content")
                            thought = ""
                            if text is None:
                                # Structured Outputs' refusal: the model declined, in words, with content null
                                # (ChatCompletionChunk ``delta.refusal``, ``message.refusal`` whole). It was read as
                                # nothing: an empty stop, refused as unusable and asked of the next model. A policy
                                # answer, passed on as Anthropic's refusal is (the gateway says content_filter)
                                text = delta.get("refusal") or ""
                                if text:
                                    refused = True
                            if type(text) is not str:
                                text, thought = content_parts(text, "delta.content")
                            if reasoning or thought:
                                if texts:
                                    yield _joined(texts)
                                    texts = []
                                yield Chunk("thinking", reasoning + thought)
                            if text and (text := increments.new(text)):  # cumulative.py: snapshots as deltas
                                deltas += 1
                                if said is not None:
                                    said.append(text)
                                if join:
                                    texts.append(text)
                                else:
                                    yield Chunk("text", text)
                            if frags := delta.get("tool_calls"):
                                calls.listed(frags if isinstance(frags, list) else [frags])
                            elif not text and (legacy := delta.get("function_call")):
                                # the call in OpenAI's legacy shape (content null beside it): it was dropped, the
                                # answer refused as unusable ("function_call" with no call) and asked elsewhere
                                calls.add(frags := _legacy_piece(legacy))
                            if finish and (text or reasoning or thought or frags):
                                # a finish reason the answer went on after: not its end, nor this server's habit to
                                # put one on the last chunk only (HttpClient.finish_last)
                                resp.answered = resp.may_be_whole = client.finish_last = False
                            if (stop := choice.get("finish_reason")) and stop != _NO_FINISH:
                                finish = str(stop)
                                native = choice.get("native_finish_reason")  # OpenRouter's: the upstream's own
                                if finish in _FAILED or (type(native) is str and native in _FAILED):
                                    raise _failed(choice, finish if finish in _FAILED else str(native))
                                if finish in _MALFORMED_CALL:
                                    raise ProviderError(Reason.UNUSABLE_REPLY, "the model's tool call was malformed "
                                                        f"or refused (finish_reason '{finish}'): no call to make")
                                if usage is None:  # read where the chunk that ends the answer is: no cost
                                    usage = _usage_beside(data, choice)  # on the chunks before it
                                # the answer is whole: what more comes is waited for briefly (StreamResponse.
                                # _after_answer). Not on a chunk that carries the answer too: servers that put a
                                # finish reason on every chunk (LiteLLM relaying Gemini, litellm#2195; its Gemini
                                # tool-call fragments, litellm#31634) go on after it, and a pause longer than the
                                # grace cut their answer there, passed on as whole — and taught the client the
                                # 0.5 s grace, which cut each later answer at its next pause. The usual last chunk
                                # carries nothing, or the usage chunk follows. A server whose earlier text came
                                # without a finish reason put this one on its last text chunk (vLLM before
                                # vllm#36944, vllm#35705): the end, unless more text comes within the grace — with no
                                # usage chunk or [DONE] after it, on a connection held open (bifrost#6784), it was
                                # lost to the idle bound and asked of the next model
                                # — or learned so from this server's earlier answers (HttpClient.finish_last): a
                                # one-chunk answer waited 80% of the idle bound on every request
                                resp.answered = not (reasoning or thought or frags) and (
                                    not text or plain or client.finish_last is True)
                                # a whole answer in one chunk, its finish reason on it, then neither usage nor
                                # [DONE] on a connection held open (bifrost#6784) was lost to the idle bound: it may
                                # be whole, and ends when nothing more comes just short of that bound — as Bifrost
                                # ends a stream gone silent after a finish reason (bifrost#7115)
                                resp.may_be_whole = not (reasoning or thought or frags)
                            elif text:
                                plain = True
                except Exception:
                    if texts:  # what came before the failure is delivered first, as one delta at a time was
                        yield _joined(texts)
                    raise
                if texts:
                    yield _joined(texts)
                if finished:
                    break
            if finished and usage is None:  # a usage chunk after [DONE]? (_usage_after_done)
                usage = await _usage_after_done(events, batches)
        if held and not resp.ended_in_line:
            loads(held, "SSE data")  # data lines that never became JSON (raises)
        # else the body ended inside the event (a relay that closed its answer cleanly when its upstream broke
        # mid-line; a body delimited by the close): discarded, as SSE says of an event the body ends inside. It was
        # malformed_response — never asked again, the model counted broken, a whole answer whose usage chunk was cut
        # lost — where a reset at the same byte was a dropped connection (or, after the finish reason, the answer)
        if not finished and not finish:
            if resp.empty:
                # an event stream framed empty, nothing said: llama_cpp.server's answer to a prompt past its context
                # (the error is raised inside its stream, after the 200). It was malformed_response — a health
                # failure of a model that is well, with nothing of why. Asked once more whole, the server says it
                # (a 400 "This model's maximum context length is 256 tokens. However, you requested 437 tokens
                # (429 in the messages, 8 in the completion)"): a bad_request, or a max_tokens the router clamps;
                # a server that answers whole then is read as any whole answer. Once it has said so, its empty
                # stream is read as that refusal at once: the second request cost its time (the prompt tokenized
                # again) on every over-context prompt. llama-cpp-python refuses only a prompt that fills the context
                # on its own (a max_tokens past the room it cuts), so nothing is lost that a refit could have saved
                if self._empty_said is not None:
                    raise ProviderError(Reason.BAD_REQUEST, "an empty event stream, which this server sends for a "
                                        f"prompt past its context (asked whole once, it said: {self._empty_said})")
                try:
                    async for chunk in self._stream(request, timeouts, join=join, streamed=False):
                        yield chunk
                except ProviderError as exc:
                    if exc.reason is Reason.BAD_REQUEST and CONTEXT_WORDS.search(exc.message):
                        window = _WINDOW.search(exc.message)  # that prompt's counts would mislead later ones
                        self._empty_said = window.group(0) if window else exc.message
                    raise
                return
            if unsaid:  # not a connection that broke: the server said it failed (NestJS leaves an error's data out
                # when it has no message, bayes-platform#639)
                raise ProviderError(Reason.STREAM_ERROR, "the server sent an error event without data, then ended "
                                    "the stream")
            if (failed := _ollama_failed(data)) is not None:  # it was connection_dropped, Ollama's error unsaid
                raise failed
            raise ProviderError(Reason.CONNECTION_DROPPED, "stream ended without [DONE]" + (
                ", cut off in the middle of a line" if resp.ended_in_line else ""))
        if rest := increments.rest():  # a held delta, the stream ended there (cumulative.py)
            if said is not None:
                said.append(rest)
            yield Chunk("text", rest)
        if finish and plain and client.finish_last is None:
            client.finish_last = True  # its text came without a finish reason, the reason at the end: learned
        if finish in CALL_STOPS and not calls.calls:
            written = said is not None and any(mark in "".join(said) for mark in CALL_MARKS)
            finish = without_call(self.name, finish, said is not None, written)  # raises when the call is lost
        if calls.extras:
            self._keep_extras(calls.signed())
        for call in calls:
            yield Chunk("tool_call", "", call)
        if usage is None:
            # Some servers (llama_cpp.server) send no usage when streaming: they stream one token per
            # delta, and the prompt is estimated as everywhere else. An estimate beats logging zero.
            usage = Usage(request_tokens(request), deltas)
        yield Chunk("usage", "", None, usage)  # positional: see _joined
        if refused and finish in ("stop", ""):
            finish = "refusal"
        yield Chunk("done", "", None, None, finish)  # "" when the server never said why: shapes.checked judges


    def prompt_body(self, request: ChatRequest) -> dict[str, Any]:
        """A :class:`TextPrompt` as OpenAI's legacy ``POST /v1/completions`` takes it (``prompt``, ``suffix``,
        ``max_tokens``, ``temperature``, ``stream``, ``stream_options``: platform.openai.com/docs/api-reference/
        completions/create); vLLM, llama.cpp's server, LM Studio and Ollama's ``/v1`` apply no chat template there."""
        prompt = request.prompt
        assert prompt is not None
        body: dict[str, Any] = {"model": self.model_id, "prompt": prompt.text, "stream": True}
        if not self._refuses_stream_options:
            body["stream_options"] = {"include_usage": True}
        if prompt.suffix:
            body["suffix"] = prompt.suffix
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        put_sampling(request, body, self._refused_sampling(), self._seed_field(request))
        return body

    async def _prompted(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """A text completion, from ``/v1/completions``; a FIM one (with a ``suffix``) from llama-server's own
        ``/infill`` once the server has refused ``suffix`` there (providers/llama_infill.py)."""
        if request.prompt is not None and request.prompt.suffix:
            if self._infill is not None:
                async for chunk in infill(self._infill, request, timeouts, self.response_limit):
                    yield chunk
                return
            try:
                async for chunk in self._completed(request, timeouts):
                    yield chunk
            except ProviderError as exc:
                if not refuses_suffix(exc):
                    raise
                self._infill = make_client(server_root(self.endpoint), self.client_headers())
                log.info("model %s: the server takes no suffix on /v1/completions; asking /infill for "
                         "fill-in-the-middle from now on", self.name)
                async for chunk in infill(self._infill, request, timeouts, self.response_limit):
                    yield chunk
            return
        async for chunk in self._completed(request, timeouts):
            yield chunk

    #: the chat template family read from llama-server's /props ``chat_template`` (providers/chat_template.py)
    _family: tuple[str | None] | None = None

    async def template_family(self) -> str | None:
        """The config's ``template``, else the family of the template llama-server's ``GET /props`` answers
        (tools/server/README.md: "chat_template - the model's original Jinja2 prompt template", the GGUF's
        ``tokenizer.chat_template``); another server (no /props) says nothing. Asked once; an unreachable server is
        asked again next time."""
        if self.config.template is not None:
            return self.config.template
        if self._family is None:
            root = make_client(server_root(self.endpoint), self.client_headers())
            try:
                status, props = await root.request_json("GET", "/props", timeout=FACT_TIMEOUT)
            except ProviderError:
                return None
            finally:
                await root.aclose()
            template = props.get("chat_template") if status == 200 and isinstance(props, dict) else None
            self._family = (family_of(template) if isinstance(template, str) else None,)
        return self._family[0]

    def server_gone(self) -> None:
        super().server_gone()
        self._family = None  # another server, or another model, may come back on the address
        self._sampling_refused = None  # likewise a server that takes the fields this one refused

    async def aclose(self) -> None:
        await super().aclose()
        if self._infill is not None:
            await self._infill.aclose()
            self._infill = None

    async def _completed(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """A text completion's SSE stream (``text_completion`` objects, ``choices[0].text``, ``data: [DONE]``), or
        the whole object from a server that ignores ``stream``: the same checks as a chat stream's, fewer shapes."""
        path = "/completions" if versioned(self.endpoint) else "/v1/completions"
        usage: Usage | None = None
        data: Any = None  # the last event read (_ollama_failed)
        finish, finished, errored, pieces = "", False, False, 0
        held = ""  # data lines of an event not yet complete JSON (see _stream)
        plain = False  # a text chunk came without a finish reason (see _stream)
        lone: Any = None  # the index of the one choice, where it is not 0 (see _stream)
        async with self.client.stream(path, self.prompt_body(request), timeouts, _extract_error,
                                      limit=self.response_limit, refit=self._refit_for(request)) as resp:
            finished = resp.is_json  # a whole answer has no [DONE]
            batches = resp.whole_json() if finished else resp.sse_batches("an event stream")
            async for events in batches:
                for field, payload in events:
                    if field == "event":
                        errored = payload.strip() == "error"  # SSE's own error event: its data is the error
                    if field != "data":
                        continue
                    if errored:
                        raise error_field(payload)
                    if payload.strip() == "[DONE]":
                        finished = True
                        break
                    if held:
                        payload = held + "\n" + payload
                    if (data := try_loads(payload)) is NOT_JSON:
                        if resp.ended_in_line:  # the body ended inside this event: discarded (see _stream)
                            break
                        # read as a chat stream's are: a comment passed on as data, events framed twice, the
                        # server's error in words or glued after a chunk, a document over several data lines. Each
                        # was malformed_response here — never asked again, and a raw prompt has no fallback
                        odd, data = _odd_event(payload, held, self.response_limit)
                        if odd in (_Odd.SKIP, _Odd.HOLD):  # held: the data lines of a document not yet whole
                            held, data = data or "", NOT_JSON
                            continue
                        if odd is _Odd.END:
                            finished = True
                            break
                    held = ""
                    if not isinstance(data, dict):
                        if data is None:  # "data: null" says nothing (see _stream)
                            continue
                        if (data := _listed_error(data)) is None:  # Gemini's error in its array form
                            raise ProviderError(Reason.MALFORMED_RESPONSE, "SSE data is not an object")
                    if data.get("error"):
                        kind, message = _extract_error(data)
                        err = data["error"]
                        raise stream_error(kind, message, err.get("code") if isinstance(err, dict) else None)
                    if type(reported := data.get("usage")) is dict and _COUNTED.intersection(reported):
                        usage = _counted(reported) or usage
                        if usage is not None and "timings" in data:  # llama-server's, beside the usage
                            _timed_by_server(usage, data["timings"])
                    choices = data.get("choices")
                    if finish and reported is not None and not choices:  # the usage chunk, after the last
                        resp.answered = True
                    if choices is None:
                        if data.get("error_code") or data.get("object") == "error":
                            raise _bare_error(data)
                        if (minimax := _base_resp_error(data)) is not None:
                            raise minimax
                        continue
                    if not isinstance(choices, list):
                        raise ProviderError(Reason.MALFORMED_RESPONSE, f"choices is a {type(choices).__name__}")
                    for choice in choices:
                        if not isinstance(choice, dict):
                            raise ProviderError(Reason.MALFORMED_RESPONSE, "a choice is not an object")
                        index = choice.get("index")
                        if lone is not None:  # the choice read from the start: the others are not its words
                            if index != lone:
                                continue
                        elif index:  # n > 1 somewhere on the way: the answer is choice 0 — or the one choice,
                            # numbered otherwise (see _stream)
                            if pieces or any(type(other) is dict and not other.get("index") for other in choices):
                                continue
                            lone = index
                        text = choice.get("text")
                        if text is None:  # a chat-shaped chunk from a server that mixes them up
                            text = (choice.get("delta") or choice.get("message") or {}).get("content") or ""
                        if type(text) is not str:
                            raise ProviderError(Reason.MALFORMED_RESPONSE, "a choice's text is not a string")
                        if text:
                            pieces += 1
                            yield Chunk("text", text)
                            if finish:  # a finish reason the text went on after: not its end
                                resp.answered = resp.may_be_whole = False
                        if (stop := choice.get("finish_reason")) and stop != _NO_FINISH:
                            finish = str(stop)
                            native = choice.get("native_finish_reason")  # OpenRouter's: the upstream's own
                            if finish in _FAILED or (type(native) is str and native in _FAILED):
                                raise _failed(choice, finish if finish in _FAILED else str(native))
                            # its end, read as a chat stream's (_stream): whole at once, or, on a chunk with text
                            # from a server that may put a finish reason on every chunk, once nothing more comes
                            resp.answered, resp.may_be_whole = not text or plain, True
                        elif text:
                            plain = True
                if finished:
                    break
        if held and not resp.ended_in_line:
            loads(held, "SSE data")  # data lines that never became JSON (raises)
        if not finished and not finish:
            if (failed := _ollama_failed(data)) is not None:
                raise failed
            raise ProviderError(Reason.CONNECTION_DROPPED, "stream ended without [DONE]" + (
                ", cut off in the middle of a line" if resp.ended_in_line else ""))
        yield Chunk("usage", "", None, usage or Usage(request_tokens(request), pieces))
        yield Chunk("done", "", None, None, finish)

    async def embeddings(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """``POST /v1/embeddings`` (platform.openai.com/docs/api-reference/embeddings/create; llama-server, vLLM, LM
        Studio, Ollama's ``/v1`` take it too): the texts as a list, ``dimensions`` where the client asked one, floats
        (no ``encoding_format``: its default). The answer's ``data[].embedding`` in ``index`` order, and
        ``usage.prompt_tokens`` (estimated where the server leaves it out)."""
        embed = request.embed
        assert embed is not None
        data = await posted(self.client, "/embeddings" if versioned(self.endpoint) else "/v1/embeddings",
                            request_body(self.model_id, embed), timeouts, _extract_error,
                            body_limit(self.response_limit, embed), "the embeddings answer")
        if data.get("error"):  # an error inside a 200
            kind, message = _extract_error(data)
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            raise refusal(stream_error(kind, message, code))
        if data.get("object") == "error" or data.get("error_code"):
            raise refusal(_bare_error(data))
        usage = data.get("usage")
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        for chunk in answer(ordered(data.get("data"), embed, "data"),
                            tokens if tokens is not None else input_tokens(embed)):
            yield chunk

    async def server_parallel(self) -> ServerParallel | None:
        """A llama-server's ``total_slots`` (:func:`_slots`): `models` and `plan` showed only ``max_concurrent``, and
        4 slots configured against a server started with ``--parallel 1`` queued three requests inside it, unseen,
        their wait counted against the first-token timeout. Asked of a server on this network only (a cloud API has
        no /props); None where it does not say."""
        if not self.config.is_local:
            return None
        return await _slots(self.endpoint, self.client_headers())

    async def memory(self, *, ask_server: bool = True) -> MemoryFacts:
        """The base facts, with the slots a llama-server runs (:meth:`server_parallel`) for `plan`'s notes."""
        facts = await super().memory(ask_server=ask_server)
        if ask_server and (server := await self.server_parallel()) is not None:
            facts = dataclasses.replace(facts, server_parallel=server)
        return facts

    async def not_served(self) -> str | None:
        """A model id the server does not serve, where its listing is the whole of what it answers: `models` said
        'available' and each request was a 404. Judged only for servers whose listing is authoritative
        (:func:`_listing_owner`): vLLM, Ollama's OpenAI endpoint, LM Studio listing two or more models.
        llama-server, llama_cpp.server, TGI (one model, the name ignored), LM Studio with one model loaded
        (lmstudio-bug-tracker#619: any name gets it), LiteLLM (wildcard routes) and unknown servers cannot tell
        (None)."""
        path = models_path(self.endpoint)
        try:
            status, data = await self.client.request_json("GET", path, timeout=FACT_TIMEOUT)
        except ProviderError:
            return None
        entries = [e for e in (data.get("data") if isinstance(data, dict) else None) or [] if isinstance(e, dict)]
        ids = [str(e["id"]) for e in entries if isinstance(e.get("id"), str)]
        if status != 200 or not ids:
            return None
        if self.model_id in ids:
            return ""
        owner = _listing_owner(entries)
        if owner is None:
            return None
        if owner is _Lister.OLLAMA:  # Ollama: `qwen3` is `qwen3:latest`, and names are not case-sensitive
            wanted = _ollama_name(self.model_id)
            if any(_ollama_name(i) == wanted for i in ids):
                return ""
        guess = closest(self.model_id, ids, cutoff=0.5)
        listed = f"{', '.join(ids[:5])}{', …' if len(ids) > 5 else ''}"
        return (f"'{self.model_id}' is not served by the {owner.value} at {shown_url(self.endpoint)}, which answers "
                f"only the names it lists ({listed}): write models.{self.name}.model: {guess or ids[0]}"
                f"{_LISTER_FIX[owner].format(model=self.model_id)}")

    async def context_window(self) -> ContextWindow:
        """From ``/v1/models``: llama.cpp server ``meta.n_ctx_train``, vLLM ``max_model_len``,
        LM Studio and others ``context_length`` (the served window is the server's own setting)."""
        path = models_path(self.endpoint)
        try:
            status, data = await self.client.request_json("GET", path, timeout=FACT_TIMEOUT)
        except ProviderError as exc:
            return ContextWindow(None, self.config.context, f"could not ask the server: {exc.reason}")
        if status != 200 or not isinstance(data, dict):
            return ContextWindow(None, self.config.context, f"{path} answered HTTP {status}")
        for entry in data.get("data") or []:
            if not isinstance(entry, dict) or entry.get("id") != self.model_id:
                continue
            meta = entry.get("meta")
            if not isinstance(meta, dict):
                meta = {}
            for value in (meta.get("n_ctx_train"), entry.get("max_model_len"), entry.get("context_length"),
                          meta.get("context_length")):
                if isinstance(value, int) and value > 0:
                    return ContextWindow(value, self.config.context, f"{path} metadata")
            return ContextWindow(None, self.config.context, f"{path} lists the model without a context length")
        return ContextWindow(None, self.config.context, f"{path} does not list the model")
