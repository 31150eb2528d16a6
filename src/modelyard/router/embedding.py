"""Embeddings on the chain walk: how long a model may take to send the vectors, and whose vectors may stand in for
whose.

Time: the vectors are an embeddings answer's first and only chunk, and a batch is read whole before any comes: its
time grows with the text in it (Ollama embeds a batch's texts one after another — cbcoutinho/nextcloud-mcp-server#1347
measured a request's wall clock tracking its total text). LiteLLM bounds an embedding call by one per-call ``timeout``
(600 s by default) whatever its size; Ollama's server sets none. Here ``timeouts.first_token`` is given for each
:data:`TOKENS_PER_BOUND` tokens of input — the prompt a chat model reads before its first token within that bound —
so one text waits as a chat does and LangChain's 1,000-text batch gets the time its size needs; the request's
``timeouts.total`` still bounds it all, a hung server included.

Space: vectors of two embedding models are not comparable, and a vector store does not look (litellm#14403 set up a
fallback to "a second instance of ollama", the same model: that is the safe one). The first model of the chain that
may embed fixes the space; a later model answers only if it is the same model (its model id) or the config gives both
one ``embedding_space``, and is otherwise skipped, the row saying why. A model whose last word on vectors was a
refusal fixes nothing, even once the refusal is past its time (providers/refusals.py) and the model, cooling down,
cannot be asked again: it has given no vectors since.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from modelyard.providers import Provider
from modelyard.providers.embed_batches import batch_note
from modelyard.providers.embeddings import input_tokens
from modelyard.types import EmbedInput

#: input tokens each ``timeouts.first_token`` is given for (a chat's prompt up to Ollama's long-time default context,
#: 2,048 tokens — also llama-server's default logical batch — is read within that bound on a model that meets it)
TOKENS_PER_BOUND = 2048


def vectors_bound(first_token: float, embed: EmbedInput) -> float:
    """Seconds the model may take to send all the vectors: ``first_token`` per :data:`TOKENS_PER_BOUND` tokens."""
    return first_token * max(1, math.ceil(input_tokens(embed) / TOKENS_PER_BOUND))


def input_too_long(provider: Provider, tokens: int, embed: EmbedInput) -> str:
    """Why the model's declared ``context`` cannot take the largest input of ``tokens`` ("": it can). A vector needs
    no room for an answer (a chat's 512 held back refused a 1,800-token chunk for a 2,048-token model), and a server
    that cuts a long text to its context (Ollama, unless the client sent ``truncate: false``) takes any: it is asked."""
    context = provider.config.context
    if not context or tokens <= context or (provider.cuts_long_inputs and embed.truncate is not False):
        return ""
    return f"an input (about {tokens} tokens) is longer than its context of {context} tokens"


def _model_id(provider: Provider) -> str:
    return provider.model_id.removesuffix(":latest").lower()


def same_model(a: Provider, b: Provider) -> bool:
    """Whether two models are one model under their model ids (Ollama's ``:latest`` and case aside)."""
    return _model_id(a) == _model_id(b)


def interchangeable(a: Provider, b: Provider) -> bool:
    """Whether two models give vectors of one space: the same model id (Ollama's ``:latest`` and case aside), or the
    same ``embedding_space`` in the config."""
    declared = a.config.embedding_space
    return _model_id(a) == _model_id(b) or (declared is not None and declared == b.config.embedding_space)


def space(provider: Provider) -> str:
    """The model's vector space as the log says it: its ``embedding_space``, else its model id."""
    return provider.config.embedding_space or _model_id(provider)


def _setter(chain: tuple[str, ...], index: int, providers: Mapping[str, Provider]) -> str | None:
    """The first model before ``index`` that may embed: the one whose space the chain's vectors are in."""
    return next((m for m in chain[:index] if providers[m].embeds()), None)


def other_space(chain: tuple[str, ...], index: int, providers: Mapping[str, Provider]) -> str:
    """Why ``chain[index]`` may not answer in place of the chain's embedding model ("": it may)."""
    setter = _setter(chain, index, providers)
    if setter is None:
        return ""
    if interchangeable(providers[setter], providers[chain[index]]):
        return ""
    theirs, mine = space(providers[setter]), space(providers[chain[index]])
    return (f"its vectors are in another space than {setter}'s ({mine!r}, not {theirs!r}): an index mixing them "
            "finds the wrong texts; give both the same embedding_space if they are one model")


def stand_in(chain: tuple[str, ...], index: int, providers: Mapping[str, Provider]) -> str:
    """The note on an answer given in place of the chain's embedding model under another model id ("": none)."""
    setter = _setter(chain, index, providers)
    if setter is None or _model_id(providers[setter]) == _model_id(providers[chain[index]]):
        return ""  # the same model (as interchangeable reads an id): nothing to say
    return f"vectors in place of {setter}'s: the same embedding_space {space(providers[setter])!r}"


def answer_note(chain: tuple[str, ...], index: int, providers: Mapping[str, Provider], calls: int,
                at_once: int = 1) -> str:
    """What the answering attempt's row says of its vectors ("": nothing): whose place they stand in
    (:func:`stand_in`), and the ``calls`` they took (as the provider cut them: not cut again here) where one could
    not carry the request, ``at_once`` at most out together (providers/embed_batches.py)."""
    provider = providers[chain[index]]
    notes = (stand_in(chain, index, providers) if index else "",
             batch_note(calls, provider.batch_limit(), at_once))
    return "; ".join(n for n in notes if n)
