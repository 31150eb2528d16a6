"""A client's sampling fields (``seed``, ``top_p``, the penalties, ``top_k``, ``min_p``, ``repeat_penalty``, ``stop``)
in the OpenAI body, and a server's refusal of one of them.

They were dropped at the gateway until they were passed on; passed on, a server that refuses one turned a request
that used to work into a 400: OpenAI's reasoning models ("Unsupported parameter: 'top_p' is not supported with this
model.", the same for both penalties), xAI's grok-3-mini ("Argument not supported on this model: presencePenalty"),
a Mistral model on Azure AI Foundry (422 ``extra_forbidden`` at ``["body", "seed"]``). Such a refusal is of the
field, not of the request: the model is asked again at once without it (:func:`refused_fields`), learned for that
model, and the routing log says what was left out (:func:`left_out`) — the answer is not what the client's knob
would have given, and that is never silent.

A refusal of the *value*, not of the field, is of that request only: vLLM's 400 "top_p must be in (0, 1], got 0.0."
(``{"object": "error", …, "type": "BadRequestError", "code": 400}``: microsoft/TaskWeaver#231, a client's default of
0), TGI's 422 "Input validation error: `top_p` must be > 0.0 and < 1.0" (``"error_type": "validation"``:
argilla-io/synthetic-data-generator#48, a top_p of 1.0). The field was learned as refused, and the model never got the
client's top_p again, whatever value it asked. Now such a request is asked again at once without it, the row says
the value was refused (:func:`value_refused`), and the next request sends the field as the client gives it.

What is learned holds for ``context_refusal.LEARNED_FOR`` (10 minutes) after the server's last refusal, as the context
a server said it has (:class:`RefusedFields`): a server restarted or upgraded in between takes the field again, and
it was left out for the rest of the process.

Mistral's API names its seed ``random_seed`` (docs.mistral.ai, chat completion reference: "The seed to use for random
sampling"; simonw/llm-mistral#2) and refuses ``seed`` as an extra input: the seed went as ``random_seed`` to Mistral's
hosts from the start (:func:`mistral_api`), and to a server whose refusal of ``seed`` is pydantic's "Extra inputs are
not permitted" (Mistral's own shape) once, learned — a seeded run stays repeatable; left out only if that is refused.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelyard.providers.context_refusal import outlived
from modelyard.types import ChatRequest

#: the fields, as the OpenAI body names them
SAMPLING_FIELDS = ("seed", "top_p", "frequency_penalty", "presence_penalty", "top_k", "min_p", "repeat_penalty",
                   "repetition_penalty", "logit_bias", "stop")
#: the repetition penalty's two names, both sent (llama-server's and LM Studio's; vLLM's and SGLang's): a server that
#: refuses one may take the penalty under the other
PENALTY_NAMES = ("repeat_penalty", "repetition_penalty")

#: a field named in a server's words: as sent (OpenAI's ``'top_p'``, pydantic's ``body.seed``) or camelCase (xAI's
#: ``presencePenalty``); whole words only (``random_seed`` is Mistral's own field, not ours)
_NAMED = re.compile(r"(?<![A-Za-z0-9_])(seed|top_?p|frequency_?penalty|presence_?penalty|top_?k|min_?p|repeat_?penalty|"
                    r"repetition_?penalty|logit_?bias|stop)(?![A-Za-z0-9_])", re.IGNORECASE)
_BY_SPELLING = {f.replace("_", ""): f for f in SAMPLING_FIELDS}

#: OpenAI's limit on ``stop``: "Up to 4 sequences"
MAX_STOPS = 4
#: Mistral's name for the seed
MISTRAL_SEED = "random_seed"
#: the words of pydantic's refusal of a field a request model does not have (``extra_forbidden``), Mistral's API's
_EXTRA_INPUT = "Extra inputs are not permitted"


#: words that complain of a field's value, not of the field: vLLM's "top_p must be in (0, 1], got 0.0.", TGI's "`top_p`
#: must be > 0.0 and < 1.0", OpenAI's "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5
#: instead.", vLLM's "token_id(s) [151936] in logit_bias contain out-of-vocab token ids" (token ids of another model's
#: tokenizer: a chain's fallback was the client's model's)
_VALUE_WORDS = re.compile(r"\bmust be\b|\bgot\b|expected a value|out of range|\brange\b|invalid type|above maximum|"
                          r"below minimum|greater than|less than|out-of-vocab|out of vocab", re.IGNORECASE)
#: words that refuse the field whatever its value (OpenAI's "Unsupported parameter", xAI's "Argument not supported",
#: pydantic's "Extra inputs are not permitted", Azure's "Unrecognized request argument"): these win over the above
_FIELD_WORDS = re.compile(r"not supported|unsupported|unrecognized|not permitted|extra inputs|unknown (?:field|param)",
                          re.IGNORECASE)


def value_refused(message: str) -> bool:
    """Whether a refusal that names a sampling field complains of the value sent (that request's), not of the field
    (the model's, learned)."""
    return _VALUE_WORDS.search(message) is not None and _FIELD_WORDS.search(message) is None


@dataclass(frozen=True, slots=True)
class RefusedFields:
    """The sampling fields a server refused for a model, and when it last refused one (``time.monotonic``)."""

    fields: frozenset[str]
    at: float

    def standing(self) -> frozenset[str] | None:
        """The fields, or None once the last refusal is older than ``LEARNED_FOR`` (ask the server again)."""
        return None if outlived(self.at, time.monotonic()) else self.fields

    def more(self, refused: frozenset[str]) -> RefusedFields:
        """These fields with ``refused`` refused just now (the time runs from the last refusal)."""
        return RefusedFields(self.fields | refused, time.monotonic())


def put_native(request: ChatRequest, into: dict[str, Any]) -> None:
    """The client's temperature, seed, top_p, top_k, min_p and repeat_penalty into ``into`` under their own names —
    the keys llama.cpp (llama-cpp-python's keyword arguments, llama-server's ``/infill``) and Ollama's ``options``
    share; the other penalties are each caller's (the OpenAI body's go through :func:`put_sampling`)."""
    if request.temperature is not None:
        into["temperature"] = request.temperature
    if request.seed is not None:
        into["seed"] = request.seed
    if request.top_p is not None:
        into["top_p"] = request.top_p
    if request.top_k is not None:
        into["top_k"] = request.top_k
    if request.min_p is not None:  # Ollama's options.min_p, llama.cpp's min_p
        into["min_p"] = request.min_p
    if request.repeat_penalty is not None:  # Ollama's options.repeat_penalty, llama.cpp's repeat_penalty
        into["repeat_penalty"] = request.repeat_penalty
    if request.stop:  # Ollama's options.stop, llama-cpp-python's and llama-server's ``stop``: the model stops there
        into["stop"] = list(request.stop)


def token_ids(bias: dict[str, float], vocab: int | None = None) -> dict[int, float]:
    """``logit_bias`` keyed by integer token ids, as llama-cpp-python takes it (``Dict[int, float]``: its logit
    processor indexes the scores by each key, so a key that is no id, or one past the vocabulary's ``vocab`` ids, would
    fail the whole answer); those keys are left out (:func:`biases_left_out` says so)."""
    out: dict[int, float] = {}
    for key, bias_of in bias.items():
        key = key.strip()
        if key.isascii() and key.isdigit() and len(key) < 12 and (vocab is None or int(key) < vocab):
            out[int(key)] = bias_of
    return out


def biases_left_out(request: ChatRequest, taken: int | None = None, api: str = "") -> str:
    """For the routing log: the client's ``logit_bias`` not sent, "" when it went whole (or none was given). ``api``:
    the backend's API has no such field (Ollama's, Anthropic's); ``taken``: how many of its keys went (the rest were
    no token ids of the model)."""
    bias = request.logit_bias
    if bias is None or (taken is not None and taken == len(bias)):
        return ""
    if api:
        return not_taken(request, ("logit_bias",), api)
    if not taken:
        return "logit_bias left out: none of its keys is a token id of the model"
    return f"logit_bias: {len(bias) - taken} of its {len(bias)} keys left out, no token ids of the model"


def given(request: ChatRequest) -> list[str]:
    """The sampling fields the client gave, as :func:`put_sampling` puts them (a penalty of 0 is none), in the order of
    :data:`SAMPLING_FIELDS`; the repetition penalty under its first name only."""
    put: dict[str, Any] = {}
    put_sampling(request, put, frozenset())
    return [f for f in SAMPLING_FIELDS if f in put and f != PENALTY_NAMES[1]]


def not_taken(request: ChatRequest, fields: tuple[str, ...], api: str) -> str:
    """For the routing log: those of the client's ``fields`` a backend's API has no field for (Anthropic's seed, min_p,
    penalties and logit_bias; Ollama's logit_bias), "" when none was given — unsent, and never silently."""
    gone = [f for f in given(request) if f in fields]
    return f"{', '.join(gone)} left out: {api} takes none" if gone else ""


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


def sampled(request: ChatRequest) -> bool:
    """Whether :func:`put_sampling` puts any of the request's fields (the penalties at 0 it leaves out): kept beside it,
    so a field added there is asked here too."""
    return (request.seed is not None or request.top_p is not None or bool(request.frequency_penalty)
            or bool(request.presence_penalty) or request.top_k is not None or request.min_p is not None
            or request.repeat_penalty is not None or request.logit_bias is not None or bool(request.stop))


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
    if request.min_p is not None:  # vLLM's, llama-server's and LM Studio's ``min_p``
        body["min_p"] = request.min_p
    if request.repeat_penalty is not None:
        # llama-server's and LM Studio's ``repeat_penalty``; vLLM's and SGLang's ``repetition_penalty`` — each server
        # ignores the other's name, a strict one (OpenAI's) refuses each and is learned (refused_fields)
        body["repeat_penalty"] = body["repetition_penalty"] = request.repeat_penalty
    if request.logit_bias is not None:  # OpenAI's, vLLM's, llama-server's and LM Studio's ``logit_bias``
        body["logit_bias"] = request.logit_bias
    if request.stop:
        # OpenAI's ``stop``: "Up to 4 sequences where the API will stop generating further tokens" (vLLM and
        # llama-server take more; the first 4 go, the gateway cuts at the rest: gateway/stops.py). A server that
        # refuses it (OpenAI's reasoning models: "Unsupported parameter: 'stop' is not supported with this model.")
        # is learned as any refused field, and the gateway's cut still ends the text there
        body["stop"] = request.stop[:MAX_STOPS]
    for field in refused:
        body.pop(field, None)


def refused_fields(message: str, body: dict[str, Any]) -> frozenset[str]:
    """The sampling fields of ``body`` a server's refusal names (none: the refusal is of something else)."""
    named = (_BY_SPELLING.get(m.lower().replace("_", "")) for m in _NAMED.findall(message))
    return frozenset(f for f in named if f is not None and f in body)


def left_out(request: ChatRequest, refused: frozenset[str], once: tuple[frozenset[str], str] | None = None) -> str:
    """What of the client's sampling this model's server was asked without, for the routing log; "" when none.
    ``once``: the fields whose value the server refused for this request, and its words."""
    given: dict[str, Any] = {}
    put_sampling(request, given, frozenset())
    said = []
    value = [f for f in SAMPLING_FIELDS if f in given and once is not None and f in once[0]]
    gone = [f for f in SAMPLING_FIELDS if f in given and f in refused and f not in value]
    if value:
        said.append(f"{', '.join(value)} left out of this request: the model's server refused the value "
                    f"({once[1][:200] if once is not None else ''})")
    for name, other in (PENALTY_NAMES, PENALTY_NAMES[::-1]):
        if name in gone and other in given and other not in gone and other not in value:
            # the penalty went under its other name: not "left out", which it was not
            gone.remove(name)
            said.append(f"repeat_penalty sent as {other} only: the model's server refuses the name {name}")
    if gone:
        said.append(f"{', '.join(gone)} left out: the model's server refuses {'it' if len(gone) == 1 else 'them'}")
    return "; ".join(said)
