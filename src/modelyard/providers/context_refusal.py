"""A server's real context, read from its refusal of a prompt past it, and kept for the next requests.

llama-server refuses a prompt that does not fit a slot's context before it evaluates anything, and says both counts:
``{"error": {"code": 400, "message": "request (8708 tokens) exceeds the available context size (8192 tokens), try
increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 8708, "n_ctx": 8192}}``
(arbs-io/github-copilot-llm-gateway#73; the type and the two fields since ggml-org/llama.cpp#15780, whose builds
answered it with a 500; server-context.cpp refuses when the prompt's tokens reach the slot's ``n_ctx``). Nothing of
it was kept: every long request of an agent was sent there first, refused, then given to the next model — on a CPU
the refusal costs the prompt's tokenization each time. The context is learned per model (one server and model id,
as the other facts learned of a server), until the server is seen gone or for :data:`LEARNED_FOR` after its last
refusal: a llama-server restarted between two requests with a larger ``--ctx-size`` is never seen gone, and its
learned context kept the long prompts away from it for the whole process. Past that time the next long prompt is
sent there again: taken, or refused and learned anew (one refusal per model per ten minutes at most).
"""

from __future__ import annotations

from dataclasses import dataclass

#: seconds a learned context holds after the server's last refusal (then asked again)
LEARNED_FOR = 600.0

#: llama-server's ``type`` for the refusal (server-common.cpp ``format_error_response``)
EXCEED_CONTEXT = "exceed_context_size_error"

def outlived(at: float, now: float) -> bool:
    """A fact learned of a server from its refusal at ``at`` (``time.monotonic``) no longer holds at ``now``: the
    server may have been restarted or upgraded since (:data:`LEARNED_FOR`). Every fact learned so expires alike: the
    context here, the sampling fields a server refuses (providers/sampling.py)."""
    return now - at >= LEARNED_FOR


def context_words(message: str, n_prompt: object, n_ctx: object) -> str:
    """The server's message with the counts its error object carries beside it (the older wording, "the request
    exceeds the available context size, try increasing it", names neither), for the routing log and the client.
    What the router learns is :func:`refused_context`'s, carried on the error (``ProviderError.served_context``)."""
    if _counts(n_prompt, n_ctx) is None:
        return message
    return f"{message} (the server's context: {n_ctx} tokens, the prompt's {n_prompt})"


def _counts(n_prompt: object, n_ctx: object) -> int | None:
    """``n_ctx`` when both counts are llama-server's fields as it writes them (whole numbers, a positive context)."""
    if type(n_ctx) is not int or type(n_prompt) is not int or n_ctx <= 0 or n_prompt < 0:
        return None
    return n_ctx


def refused_context(body: object) -> int | None:
    """The context an error body says the server runs the model with, refusing a prompt past it: llama-server's
    ``{"error": {"type": "exceed_context_size_error", "n_prompt_tokens": …, "n_ctx": …}}``; None for any other body."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or err.get("type") != EXCEED_CONTEXT:
        return None
    return _counts(err.get("n_prompt_tokens"), err.get("n_ctx"))


@dataclass(frozen=True, slots=True)
class LearnedContext:
    """``n_ctx``: the context the server said it has for one request; ``refused_at``: the smallest prompt it refused,
    in modelyard's own estimate (:mod:`modelyard.tokens`) — a prompt as long is not sent again whatever the estimate
    makes of ``n_ctx`` (it runs high for English, low for some code); ``at``: when it was last refused
    (``time.monotonic``)."""

    n_ctx: int
    refused_at: int
    at: float

    def after(self, n_ctx: int, refused_at: int, at: float) -> LearnedContext:
        """This fact with one more refusal folded in: the server's latest context, the smaller refused prompt under
        the same context (another context is another server: its own refusal stands alone)."""
        return LearnedContext(n_ctx, min(self.refused_at, refused_at) if n_ctx == self.n_ctx else refused_at, at)

    def stale(self, now: float) -> bool:
        """Held past :data:`LEARNED_FOR`: the server may have been restarted with another context since."""
        return outlived(self.at, now)
