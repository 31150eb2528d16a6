"""Errors that cross layers.

Providers translate every wire-level failure into a :class:`ProviderError` carrying a
:class:`Reason`; the router decides from the reason alone whether to retry, fall back or
cool a model down. Nothing here ever carries a credential: messages are built from status
codes and error *types*, and :func:`redact` scrubs anything that looks like a key.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum


class Reason(StrEnum):
    """Why an attempt did not produce the answer. Stored verbatim in the routing log."""

    QUEUE_TIMEOUT = "queue_timeout"
    #: the model's slots were all busy and ``max_queue`` requests already waited for them: moved on at once
    QUEUE_FULL = "queue_full"
    #: the model's slots live in a shared store (Redis) that cannot be reached, and this process's
    #: conservative share of them is taken or zero
    STATE_UNREACHABLE = "state_unreachable"
    COOLING_DOWN = "cooling_down"
    MISSING_CREDENTIALS = "missing_credentials"
    #: the model's spend in the current day or month reached its ``spend_cap`` (router/spend.py)
    SPEND_CAP = "spend_cap"
    UNAVAILABLE = "unavailable"
    CONNECT_ERROR = "connect_error"
    CONNECT_TIMEOUT = "connect_timeout"
    FIRST_TOKEN_TIMEOUT = "first_token_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    AUTH_ERROR = "auth_error"
    MODEL_MISSING = "model_missing"
    BAD_REQUEST = "bad_request"
    STREAM_ERROR = "stream_error"
    CONNECTION_DROPPED = "connection_dropped"
    MALFORMED_RESPONSE = "malformed_response"
    RESPONSE_TOO_LARGE = "response_too_large"
    UNUSABLE_REPLY = "unusable_reply"
    DEADLINE = "deadline"
    #: the attempt ran into the time kept for the next model of the chain (router/kept.py), its answer coming, but too
    #: slowly to end in the request's time, and nothing of it sent to the client yet: the model's speed, not the
    #: request's time — it counts towards the cooldown as a timeout does (``Kept.cut_short``)
    TOO_SLOW = "too_slow"
    CANCELLED = "cancelled"
    #: the client stopped reading its answer: nothing it was sent was taken for the gateway's bound (its keep-alive,
    #: 75 s), so the gateway closed the connection and stopped the work — a stalled client holds no slot for good
    CLIENT_STALLED = "client_stalled"
    INTERNAL_ERROR = "internal_error"


#: worth another try on the same model after a short backoff
RETRYABLE = frozenset(
    {
        Reason.CONNECT_ERROR,
        Reason.CONNECT_TIMEOUT,
        Reason.RATE_LIMITED,
        Reason.OVERLOADED,
        Reason.SERVER_ERROR,
        Reason.CONNECTION_DROPPED,
        Reason.STREAM_ERROR,
    }
)

#: say something about the model's health (count towards its cooldown). A full queue or a
#: bad request says nothing about whether the model itself is sick.
HEALTH_FAILURES = frozenset(
    {
        Reason.CONNECT_ERROR,
        Reason.CONNECT_TIMEOUT,
        Reason.FIRST_TOKEN_TIMEOUT,
        Reason.IDLE_TIMEOUT,
        Reason.TOO_SLOW,
        Reason.RATE_LIMITED,
        Reason.OVERLOADED,
        Reason.SERVER_ERROR,
        Reason.AUTH_ERROR,
        Reason.MODEL_MISSING,
        Reason.STREAM_ERROR,
        Reason.CONNECTION_DROPPED,
        Reason.MALFORMED_RESPONSE,
        Reason.RESPONSE_TOO_LARGE,
        Reason.INTERNAL_ERROR,
    }
)

#: failures that measure the work asked for rather than the server: the vectors of a batch are an embeddings answer's
#: first and only chunk, so its first-token bound is the whole batch's time (router/embedding.py)
WORK_TIMEOUTS = frozenset({Reason.FIRST_TOKEN_TIMEOUT, Reason.IDLE_TIMEOUT, Reason.TOO_SLOW})


def says_health(reason: str, embeddings: bool) -> bool:
    """Whether a failure counts towards the model's cooldown. A timeout on an embeddings batch says the batch was
    long or the server busy embedding — nothing of the chats the same model serves, which a cooldown would stop
    too; the server's own failures (refused connections, 5xx, garbage, a revoked key) count whatever was asked.
    ``reason``: a :class:`Reason`, or its value as the routing log keeps it."""
    return reason in HEALTH_FAILURES and not (embeddings and reason in WORK_TIMEOUTS)


#: a property of the model, not of the moment (a revoked key, a model not installed on its server):
#: one such failure cools the model down for ``cooldown.max_seconds`` at once
PERSISTENT = frozenset({Reason.AUTH_ERROR, Reason.MODEL_MISSING})


class ModelyardError(Exception):
    """Base of every error modelyard raises on purpose."""


class ConfigError(ModelyardError):
    """A configuration problem, located in a file (and line, where known)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, key: str = ""):
        self.path, self.line, self.key, self.detail = path, line, key, message
        where = path or "<config>"
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


class ProviderError(ModelyardError):
    """One failed call to one model."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        final: bool = False,
        kind_refused: bool = False,
        served_context: int | None = None,
        absent: bool = False,
    ):
        self.reason = reason
        #: the server said it does not have the model (Ollama: not pulled, providers/absence.py): a fact of the setup
        #: that one pull mends, not the model's health — nothing cools; the router skips the model for a while without
        #: asking (Provider.learn_absent), then asks again
        self.absent = absent
        #: the context (tokens) the server said it runs the model with, refusing a prompt past it (llama-server's
        #: ``n_ctx`` beside ``exceed_context_size_error``, providers/context_refusal.py): the router learns it from
        #: here, never from the message's words, which any relay or another server may happen to write
        self.served_context = served_context
        #: the model does not serve this KIND of request (a chat asked of an embedding model, vectors of a chat
        #: model): it says nothing of the model's health — nothing cools, the kind it serves goes on — and the
        #: provider is not asked that kind again (Provider.learn_refusal)
        self.kind_refused = kind_refused
        self.status = status
        self.retry_after = retry_after
        #: the server said the same request would fail again (``x-should-retry: false``): not asked again
        self.final = final
        self.message = redact(message)
        super().__init__(f"{reason}: {self.message}")

    def reworded(self, message: str) -> ProviderError:
        """The same failure in other words (the router's redaction of a key the server echoed), everything else it
        carries kept: made here, beside the fields, so a field added to the error is never dropped by a copy."""
        return ProviderError(self.reason, message, status=self.status, retry_after=self.retry_after, final=self.final,
                             kind_refused=self.kind_refused, served_context=self.served_context, absent=self.absent)

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE and not self.final


def provider_failure(exc: Exception) -> ProviderError:
    """An exception a provider did not translate: data of an unexpected shape is a malformed response,
    anything else an internal error (never a traceback for the caller). Arithmetic on the server's numbers is data's
    too: an integer past a float's range (OverflowError), a duration of 0 (ZeroDivisionError), a document nested
    past the interpreter's depth (RecursionError) — each was internal_error, which says modelyard broke."""
    if isinstance(exc, ProviderError):
        return exc
    reason = (Reason.MALFORMED_RESPONSE if isinstance(exc, KeyError | TypeError | AttributeError | ValueError
                                                      | IndexError | ArithmeticError | RecursionError)
              else Reason.INTERNAL_ERROR)
    return ProviderError(reason, f"{type(exc).__name__}: {exc}")


_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    # the header a key travels in, echoed with it: Anthropic's x-api-key, Azure OpenAI's api-key, Gemini's
    # x-goog-api-key (a relay or a debugging proxy that quotes the request's headers in its error)
    re.compile(r"(?i)((?:x-goog-|x-)?api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+"),
    re.compile(r"\d{6,12}:[A-Za-z0-9_\-]{30,}"),  # Telegram bot tokens
    # keys of the other services a relay may stand for, by their documented prefixes (a key not configured here, so
    # not known to be redacted by value): Google's AIza…, Groq's gsk_, Hugging Face's hf_, xAI's xai-, GitHub's
    # tokens, AWS access key ids
    re.compile(r"\b(?:AIza[0-9A-Za-z_\-]{35}|gsk_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{30,}|xai-[A-Za-z0-9]{20,}"
               r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|AKIA[0-9A-Z]{16})\b"),
]


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove anything that looks like a credential (and any known secret) from ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


def json_problem(exc: ValueError | RecursionError) -> str:
    """Why ``json.loads`` refused a text, for a message. Not every refusal is a JSONDecodeError with
    a ``msg``: an integer longer than Python's 4300-digit limit raises a plain ValueError, nesting deeper
    than the interpreter's recursion limit a RecursionError (a model's ``[[[[...`` is provider data too)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at {exc.pos}"
    return str(exc)


def not_resolved(host: str, error: OSError) -> str:
    """Why a name did not resolve, and what to check: the resolver's words alone ('Name or service not known') do
    not say that it was the name, nor that no network says the same as a typo."""
    return (f"{unresolved(host)} ({error.strerror or error}): a typo in the endpoint's host, or no "
            "network or DNS on this machine")


def unresolved(host: str) -> str:
    """How :func:`not_resolved` begins: a caller that groups addresses by their name finds its own words."""
    return f"the name {host} does not resolve here"
