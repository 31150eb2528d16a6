"""Which models can take a prompt: the one rule for "message too long".

A prompt too long for one model is that model's limit, not the request's fault. The router skips
such a model (reason ``bad_request``, no cooldown: the model is fine) and tries the next one in the
chain, which may have a larger context; the request fails as a bad request only when no model of
the chain can take it. Front-ends refuse a message up front by the same rule — never one that some
model of the chain would take — and trim history to what the smallest model able to take the
message can read, so the primary keeps serving long conversations.

Declared contexts (``models.NAME.context``) count, with the estimate of :mod:`modelyard.tokens`, and in the
router the context a server said it has when it refused a prompt (llama-server's ``exceed_context_size_error``,
providers/context_refusal.py). A model without either is assumed to take anything; its server's own refusal (HTTP
400, llama.cpp's context error) is a ``bad_request`` that falls back the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelyard.config.schema import Config, ModelConfig
from modelyard.providers.context_refusal import LearnedContext

#: room kept for the answer when neither the request nor the agent sets ``max_tokens``
DEFAULT_ANSWER_TOKENS = 512


def answer_room(context: int, max_tokens: int | None) -> int:
    """Tokens of a context kept free for the answer: ``max_tokens``, else 512, at most half the context
    (a large ``max_tokens`` caps the answer; it does not make every prompt too long)."""
    return min(max_tokens or DEFAULT_ANSWER_TOKENS, context // 2)


def prompt_budget(model: ModelConfig, max_tokens: int | None) -> int | None:
    """The most prompt tokens ``model`` takes with room left for the answer (None: no declared context)."""
    if not model.context:
        return None
    return model.context - answer_room(model.context, max_tokens)


def too_long_for(model: ModelConfig, prompt_tokens: int, max_tokens: int | None) -> str | None:
    """Why ``model`` cannot take a prompt of ``prompt_tokens`` (estimated), or None when it can."""
    if not model.context:
        return None
    return _past(model.context, prompt_tokens, max_tokens, "its context")


def _past(context: int, prompt_tokens: int, max_tokens: int | None, whose: str) -> str | None:
    room = answer_room(context, max_tokens)
    if prompt_tokens <= context - room:
        return None
    return (f"the prompt (about {prompt_tokens} tokens) does not fit {whose} of {context} tokens "
            f"with {room} left for the answer")


def too_long_as_learned(learned: LearnedContext, prompt_tokens: int, max_tokens: int | None) -> str | None:
    """Why a model whose server refused a prompt past its context (providers/context_refusal.py) cannot take this
    one, or None: one as long as the prompt it refused, or past the context it said it has by the rule a declared
    context follows."""
    if prompt_tokens >= learned.refused_at:
        return (f"its server refused a prompt of about {learned.refused_at} tokens as past its context of "
                f"{learned.n_ctx} (exceed_context_size_error): this one, about {prompt_tokens}, is not sent there")
    return _past(learned.n_ctx, prompt_tokens, max_tokens, "the context its server said it has")


@dataclass(frozen=True, slots=True)
class Fit:
    """How a prompt of ``tokens`` fits the models some agents may use."""

    tokens: int
    #: models that can take it (a model with no declared context always can)
    fitting: tuple[str, ...]
    #: the largest prompt budget among those models (None: none declares a context)
    largest: int | None
    #: the smallest prompt budget among the fitting models that declare one: what a prompt should stay
    #: within so that every model able to take this message can still read the whole of it
    room: int | None

    @property
    def too_long(self) -> bool:
        """No model can take it: the one case in which a message is refused."""
        return not self.fitting


def fit(config: Config, agents: Iterable[str], tokens: int) -> Fit:
    """How a prompt of ``tokens`` fits the chains of ``agents`` (each with its own ``max_tokens``)."""
    fitting: dict[str, None] = {}
    budgets: list[int] = []
    room: int | None = None
    for agent in agents:
        cfg = config.agents[agent]
        for name in cfg.chain:
            model = config.models.get(name)
            if model is None:
                continue
            budget = prompt_budget(model, cfg.max_tokens)
            if budget is not None:
                budgets.append(budget)
            if budget is None or tokens <= budget:
                fitting[name] = None
                if budget is not None:
                    room = budget if room is None else min(room, budget)
    return Fit(tokens, tuple(fitting), max(budgets) if budgets else None, room)
