"""A model's output-token limit: known per model, or read from a refusal.

Clients such as Cline and Continue send ``max_tokens`` far past a model's output limit (100k,
or the context size). Passed on as is, a cloud API answers 400 and the router falls back — a
cloud-first agent silently answers from a local model. The router clamps to the limit known here
(as OpenRouter does); when a backend still refuses with a recognisable "too large", the limit is
read from its words and the request asked once more (the rare path: the common one only compares).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: Anthropic's documented maximum output per model family (docs "Models overview"); longest prefix first
ANTHROPIC_MAX_OUTPUT: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-5", 64000), ("claude-opus-4-1", 32000), ("claude-opus-4", 32000),
    ("claude-sonnet-4", 64000), ("claude-haiku-4", 64000), ("claude-3-7-sonnet", 64000),
    ("claude-3-5-haiku", 8192), ("claude-3-5-sonnet", 8192), ("claude-3-haiku", 4096), ("claude-3-opus", 4096),
)


def anthropic_max_output(model_id: str) -> int | None:
    """The documented output limit of an Anthropic model id (None: a model not listed, learned on refusal)."""
    name = model_id.lower()
    return next((limit for prefix, limit in ANTHROPIC_MAX_OUTPUT if name.startswith(prefix)), None)


@dataclass(frozen=True, slots=True)
class Refusal:
    """``limit``: the ``max_tokens`` the backend would take; ``per_model``: a limit of the model (kept for
    later requests), not one that depends on this prompt's length (vLLM's context minus input)."""

    limit: int
    per_model: bool


# Anthropic: "max_tokens: 200000 > 64000, which is the maximum allowed number of output tokens for claude-…"
_ANTHROPIC = re.compile(r"max_tokens:\s*\d+\s*>\s*(\d+), which is the maximum allowed number of output tokens")
# OpenAI: "max_tokens is too large: 100000. This model supports at most 16384 completion tokens, whereas …"
_OPENAI = re.compile(r"supports at most (\d+) completion tokens")
# vLLM (0.6+): "'max_tokens' or 'max_completion_tokens' is too large: 100000. This model's maximum context
# length is 32768 tokens and your request has 12 input tokens (100000 > 32768 - 12)."
_VLLM = re.compile(r"is too large: \d+\..*\(\d+ > (\d+) - (\d+)\)", re.S)
# vLLM before, and OpenAI-compatible servers copying OpenAI's old wording: "This model's maximum context length
# is 6048 tokens. However, you requested 6616 tokens (568 in the messages, 6048 in the completion)."
_CONTEXT = re.compile(r"maximum context length is (\d+) tokens\. However, you requested \d+ tokens "
                      r"\((\d+) in the messages, \d+ in the completion\)")


# vLLM now (its renderer) and what fronts it (Bedrock's and Cloudflare's OpenAI-compatible endpoints): "This model's
# maximum context length is 32768 tokens. However, you requested 8192 output tokens and your prompt contains at least
# 24577 input tokens, for a total of at least 32769 tokens."
_VLLM_NOW = re.compile(r"maximum context length is (\d+) tokens\. However, you requested \d+ output tokens and your "
                       r"prompt contains (?:at least )?(\d+) input tokens")
# SGLang (and newer vLLM builds behind some hosts): "Requested token count exceeds the model's maximum context length
# of 262144 tokens. You requested a total of 263925 tokens: 199925 tokens from the input messages and 64000 tokens
# for the completion." (counts as floats, "524300.0", from relays that pass them through JSON numbers)
_SGLANG = re.compile(r"maximum context length of (\d+) tokens\. You requested a total of [\d.]+ tokens: (\d+)(?:\.0)? "
                     r"tokens from the input messages")


# Hugging Face TGI (its /v1 too): "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given:
# 6 `inputs` tokens and 4091 `max_new_tokens`" — a 422, or inside a 200 stream as ``{"error": …, "error_type":
# "validation"}`` (huggingface_hub's tests/test_inference_client.py replays one); the room is 4096 - 6
_TGI = re.compile(r"`max_new_tokens` must be <= (\d+)\. Given: (\d+) `inputs` tokens")


#: a request larger by itself than the model's tokens-per-minute allowance, which counts the prompt *and* the
#: request's ``max_tokens``: OpenAI's 429 "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested
#: 342389." (vanna-ai/vanna-flask#11) and Groq's 413 "Request too large for model `llama-3.1-8b-instant` in organization
#: `org_…` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 12328, please reduce your message
#: size and try again." (``type: "tokens"``, ``code: "rate_limit_exceeded"``: HunorLaczko/ha-groq-cloud-api#27,
#: elizaOS/eliza#4040; a one-word request refused for its 32k ``max_tokens``: zeeyado/koassistant.koplugin#106). No wait
#: makes it pass; a smaller ``max_tokens`` may. Groq's "Rate limit reached … Limit 6000, Used 5034, Requested 1443.
#: Please try again in 4.77s" is a real rate limit: not these words
ALLOWANCE_WORDS = re.compile(r"Request too large for .{1,300}? on tokens per min(?:ute)? \(TPM\): Limit (\d+), "
                             r"Requested (\d+)", re.S)


def refused_limit(message: str, asked: int | None = None) -> Refusal | None:
    """The output limit a backend's "max_tokens too large" error states, or None (another error, or a
    prompt that alone fills the context: no max_tokens would help). ``asked``: the ``max_tokens`` sent, which a
    tokens-per-minute refusal counts in its "Requested" (:data:`ALLOWANCE_WORDS`)."""
    if asked is not None and (m := ALLOWANCE_WORDS.search(message)):
        limit = int(m.group(1)) - max(int(m.group(2)) - asked, 0)  # the allowance less the prompt's share
        return Refusal(limit, False) if limit > 0 else None
    if ("max_tokens" not in message and "maximum context length" not in message and "completion tokens" not in message
            and "max_new_tokens" not in message):
        return None
    if m := _ANTHROPIC.search(message) or _OPENAI.search(message):
        limit = int(m.group(1))
        return Refusal(limit, True) if limit > 0 else None
    if m := (_VLLM.search(message) or _CONTEXT.search(message) or _VLLM_NOW.search(message) or _SGLANG.search(message)
             or _TGI.search(message)):
        limit = int(m.group(1)) - int(m.group(2))
        return Refusal(limit, False) if limit > 0 else None
    return None


#: what a ``max_tokens`` is clamped to where neither the model's output limit nor its context is known: a client's
#: 10**30 (or 2**63) went as it came, to servers that read it into a fixed-size integer — Ollama's ``num_predict`` is a
#: Go ``int`` (encoding/json refuses a number past it: "cannot unmarshal number … of type int", a 400), llama-server's
#: ``n_predict`` a 32-bit one. No model writes 2**31 tokens in one answer
MOST_TOKENS = 2**31 - 1
#: why a budget was clamped (:func:`clamped`), where the limit was not the model's stated output limit
BY_CONTEXT = "the model's context"
BY_WIRE = "the most any server is sent"
BY_LEARNED = "the context its server said it has"


def clamp_limit(max_output: int | None, context: int | None, said: int | None = None) -> tuple[int, str]:
    """What the router clamps a ``max_tokens`` to, and why: the model's output limit (its config's ``max_output``,
    the table above, or a refusal's), else its context (no answer is longer) — the one its server said it has
    refusing a prompt (``said``, providers/context_refusal.py) where that is smaller than the config's or the config
    declares none —, else :data:`MOST_TOKENS`."""
    if max_output:
        return max_output, ""
    if said and (not context or said < context):
        return said, BY_LEARNED
    if context:
        return context, BY_CONTEXT
    return MOST_TOKENS, BY_WIRE


def clamped(asked: int, limit: int, why: str = "") -> str:
    """The note an answering attempt carries (routing log ``detail``, route header, route line). Worded for both
    limits it is used for: the model's output limit, and the room a prompt leaves in the context (vLLM's, SGLang's,
    the embedded model's) — "the model's output limit" was wrong for the second. ``why``: another limit's words
    (:data:`BY_CONTEXT`, :data:`BY_WIRE`). A number past 20 digits is said by its size (a client's 10**4000 would
    have been a 4 KB route header)."""
    shown = str(asked) if asked < 10**20 else f"~10^{math.floor(math.log10(asked))}"
    return f"max_tokens {shown} clamped to {limit}, {why or 'the most the model takes'}"
