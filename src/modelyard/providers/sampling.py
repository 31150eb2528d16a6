"""A client's sampling fields (``seed``, ``top_p``, ``frequency_penalty``, ``presence_penalty``) in the OpenAI body,
and a server's refusal of one of them.

They were dropped at the gateway until they were passed on; passed on, a server that refuses one turned a request
that used to work into a 400: OpenAI's reasoning models ("Unsupported parameter: 'top_p' is not supported with this
model.", the same for both penalties), xAI's grok-3-mini ("Argument not supported on this model: presencePenalty"),
a Mistral model on Azure AI Foundry (422 ``extra_forbidden`` at ``["body", "seed"]``). Such a refusal is of the
field, not of the request: the model is asked again at once without it (:func:`refused_fields`), learned for that
model, and the routing log says what was left out (:func:`left_out`) — the answer is not what the client's knob
would have given, and that is never silent.

Mistral's API names its seed ``random_seed`` (docs.mistral.ai, chat completion reference: "The seed to use for random
sampling"; simonw/llm-mistral#2) and refuses ``seed`` as an extra input: the seed went as ``random_seed`` to Mistral's
hosts from the start (:func:`mistral_api`), and to a server whose refusal of ``seed`` is pydantic's "Extra inputs are
not permitted" (Mistral's own shape) once, learned — a seeded run stays repeatable; left out only if that is refused.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from modelyard.types import ChatRequest

#: the fields, as the OpenAI body names them
SAMPLING_FIELDS = ("seed", "top_p", "frequency_penalty", "presence_penalty", "top_k")

#: a field named in a server's words: as sent (OpenAI's ``'top_p'``, pydantic's ``body.seed``) or camelCase (xAI's
#: ``presencePenalty``); whole words only (``random_seed`` is Mistral's own field, not ours)
_NAMED = re.compile(r"(?<![A-Za-z0-9_])(seed|top_?p|frequency_?penalty|presence_?penalty|top_?k)(?![A-Za-z0-9_])",
                    re.IGNORECASE)
_BY_SPELLING = {f.replace("_", ""): f for f in SAMPLING_FIELDS}

#: Mistral's name for the seed
MISTRAL_SEED = "random_seed"
#: the words of pydantic's refusal of a field a request model does not have (``extra_forbidden``), Mistral's API's
_EXTRA_INPUT = "Extra inputs are not permitted"


def put_native(request: ChatRequest, into: dict[str, Any]) -> None:
    """The client's temperature, seed, top_p and top_k into ``into`` under their own names — the keys llama.cpp
    (llama-cpp-python's keyword arguments, llama-server's ``/infill``) and Ollama's ``options`` share; the penalties
    are each caller's (the OpenAI body's go through :func:`put_sampling`)."""
    if request.temperature is not None:
        into["temperature"] = request.temperature
    if request.seed is not None:
        into["seed"] = request.seed
    if request.top_p is not None:
        into["top_p"] = request.top_p
    if request.top_k is not None:
        into["top_k"] = request.top_k


def mistral_api(endpoint: str) -> bool:
    """Is ``endpoint`` Mistral's own API (api.mistral.ai, codestral.mistral.ai), whose seed is ``random_seed``?"""
    host = (urlsplit(endpoint).hostname or "").rstrip(".").lower()
    return host == "mistral.ai" or host.endswith(".mistral.ai")


def seed_renamed(message: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """``body`` with its ``seed`` as Mistral's ``random_seed``, when ``message`` is pydantic's refusal of ``seed`` as
    an extra input (Mistral's 422 ``body.seed: Extra inputs are not permitted``); None otherwise."""
    if "seed" not in body or _EXTRA_INPUT not in message or "seed" not in refused_fields(message, body):
        return None
    return {(MISTRAL_SEED if k == "seed" else k): v for k, v in body.items()}


def put_sampling(request: ChatRequest, body: dict[str, Any], refused: frozenset[str],
                 seed_field: str = "seed") -> None:
    """The client's sampling fields into ``body``, but those the server refuses; the seed under ``seed_field``
    (:data:`MISTRAL_SEED` for Mistral's API). The penalties at 0, every server's default, are left out (LangChain's
    OpenAI LLM sends 0 on every request, and not every endpoint takes them)."""
    if request.seed is not None and "seed" not in refused:
        # OpenAI's, vLLM's, llama-server's and Ollama's /v1 ``seed``; Mistral's ``random_seed``
        body[seed_field] = request.seed
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.frequency_penalty:
        body["frequency_penalty"] = request.frequency_penalty
    if request.presence_penalty:
        body["presence_penalty"] = request.presence_penalty
    if request.top_k is not None:  # vLLM's, llama-server's and LM Studio's ``top_k``; OpenAI's own refuses it
        body["top_k"] = request.top_k
    for field in refused:
        body.pop(field, None)


def refused_fields(message: str, body: dict[str, Any]) -> frozenset[str]:
    """The sampling fields of ``body`` a server's refusal names (none: the refusal is of something else)."""
    named = (_BY_SPELLING.get(m.lower().replace("_", "")) for m in _NAMED.findall(message))
    return frozenset(f for f in named if f is not None and f in body)


def left_out(request: ChatRequest, refused: frozenset[str]) -> str:
    """What of the client's sampling this model's server was asked without, for the routing log; "" when none."""
    given: dict[str, Any] = {}
    put_sampling(request, given, frozenset())
    gone = [f for f in SAMPLING_FIELDS if f in given and f in refused]
    if not gone:
        return ""
    return f"{', '.join(gone)} left out: the model's server refuses {'it' if len(gone) == 1 else 'them'}"
