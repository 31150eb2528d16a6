"""An embeddings request larger than one call to the model's server may carry, sent in several and answered as one.

Servers bound a call: OpenAI's ``/v1/embeddings`` takes at most 2,048 inputs and 300,000 tokens summed over them
(platform.openai.com/docs/api-reference/embeddings/create: "any array must be 2048 dimensions or less … we cap the
maximum value for the sum of all tokens across inputs in a single request to 300,000"); others less — Hugging Face's
text-embeddings-inference 32 unless started with more (``--max-client-batch-size``; a 422 ``{"error": "batch size 64 >
maximum allowed batch size 32", "error_type": "Validation"}``, its router's ``format!("batch size {batch_size} >
maximum allowed batch size {}")``; huggingface/text-embeddings-inference#378), Gemini's OpenAI-compatible endpoint 100
(400 "BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch", geldata/gel#9032). A client's
batch past the bound was sent whole and refused as a bad request: the chain's next model (another vector space, most
often none: skipped) or a 400. Here the texts go in calls within the model's bound (``max_embed_batch``, else its
provider's documented one), each answer checked as a whole one is (providers/embeddings.py), and the vectors joined
in order with the tokens summed. The calls go at once on as many of the model's slots as are free when the request
starts (:class:`Lanes`, lent by the router: never one a queued request waits for, never past ``max_concurrent``), the
rest one after another on the attempt's own slot — they were all one after another, and a 10,000-text index build on
a server with four slots took four times as long as it had to. Where the server states its bound in the refusal (both
above do), the calls are asked again at once within it, and the model's later requests go so. A call that fails fails
the attempt — the calls still out are cancelled and their slots given back, no part of the answer is kept —: the next
model embeds every text again, so no answer mixes two models' vectors or misses some.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from modelyard.errors import ProviderError, Reason
from modelyard.providers.embeddings import checked_vectors
from modelyard.providers.shapes import malformed
from modelyard.providers.side_by_side import GiveBack, side_by_side
from modelyard.tokens import embed_input_tokens
from modelyard.types import ChatRequest, Chunk, EmbedInput, Usage


@dataclasses.dataclass(frozen=True, slots=True)
class BatchLimit:
    """The most one embeddings call may carry: ``texts`` inputs, ``tokens`` (estimated) in all; None: no bound."""

    texts: int | None = None
    tokens: int | None = None
    #: ``texts`` is what the server said, refusing more (:func:`embedded`)
    said: bool = False


def batches(embed: EmbedInput, limit: BatchLimit) -> list[EmbedInput]:
    """``embed``'s texts in order, cut into calls within ``limit`` (a text alone past the token bound goes alone:
    whether the server takes it is the server's to say)."""
    most_texts, most_tokens = limit.texts, limit.tokens
    if most_texts is None and most_tokens is None:
        return [embed]
    parts: list[EmbedInput] = []
    start, tokens = 0, 0
    for i, text in enumerate(embed.texts):
        size = embed_input_tokens(text) if most_tokens is not None else 0
        if i > start and ((most_texts is not None and i - start >= most_texts)
                          or (most_tokens is not None and tokens + size > most_tokens)):
            parts.append(dataclasses.replace(embed, texts=embed.texts[start:i]))
            start, tokens = i, 0
        tokens += size
    parts.append(dataclasses.replace(embed, texts=embed.texts[start:]))
    return parts


def batch_note(count: int, limit: BatchLimit, at_once: int = 1) -> str:
    """What the routing log's attempt says of a request sent in ``count`` calls, at most ``at_once`` of them out
    together ("": one call)."""
    if count <= 1:
        return ""
    bounds = [f"{limit.texts:,} texts" if limit.texts is not None else "",
              f"{limit.tokens:,} tokens" if limit.tokens is not None else ""]
    said = " (the server's own bound, stated when it refused more)" if limit.said else ""
    how = "one after another" if at_once <= 1 else f"{min(at_once, count)} at once on the model's free slots"
    return f"embedded in {count} calls of at most {' and '.join(b for b in bounds if b)}, {how}{said}"


class Lanes(Protocol):
    """More of the model's slots for one request's calls, beyond the one its attempt holds (the router's: the
    model's ``max_concurrent`` and queue are its to keep)."""

    async def take(self) -> bool:
        """One more slot if one is free now — never one a queued request waits for; False: none."""
        ...

    async def give_back(self) -> None:
        """Return a slot :meth:`take` gave."""
        ...


class Batched(Protocol):
    """What :func:`embedded` asks of the model's provider: its bound on a call, and a bound its server stated."""

    def batch_limit(self) -> BatchLimit: ...

    def refused_batch(self, most: int) -> None: ...


#: a server's refusal of a call of more texts than it takes, stating how many it does: text-embeddings-inference's
#: "batch size 70 > maximum allowed batch size 32", Gemini's "at most 100 requests can be in one batch"
_SAID_BOUND = re.compile(r"maximum allowed batch size (\d+)|at most (\d+) requests can be in one batch")


def said_bound(message: str) -> int | None:
    """The count of texts a refusal says one call may carry (None: another refusal)."""
    found = _SAID_BOUND.search(message)
    if found is None:
        return None
    most = int(found.group(1) or found.group(2))
    return most if most > 0 else None


async def embedded(call: Callable[[ChatRequest], AsyncGenerator[Chunk, None]], request: ChatRequest,
                   model: Batched, lanes: Lanes | None = None) -> AsyncGenerator[Chunk, None]:
    """The vectors of ``request.embed``'s texts, in as many calls as the model's bound needs (at once on the slots
    ``lanes`` lends, the rest in turn), joined in order: one ``embedding`` chunk, the summed ``usage``, ``done`` — the
    stream one call gives. A server that refuses a call as past its batch size and says its size is asked again at
    once within it, and later requests go so (learned per model, as a stated output limit is)."""
    embed = request.embed
    assert embed is not None
    limit = model.batch_limit()
    parts = batches(embed, limit)
    try:
        vectors, tokens = await _collected(call, request, parts, lanes)
    except ProviderError as exc:
        most = said_bound(exc.message) if exc.reason is Reason.BAD_REQUEST else None
        if most is None or (limit.texts is not None and most >= limit.texts) or most >= len(embed.texts):
            raise  # another refusal, or a bound already kept: asking again would be refused again
        model.refused_batch(most)
        parts = batches(embed, model.batch_limit())
        vectors, tokens = await _collected(call, request, parts, lanes)
    # ``pieces``: the calls the vectors took, for the routing log's note (router/embedding.py answer_note)
    yield Chunk("embedding", vectors=vectors, pieces=len(parts))
    yield Chunk("usage", usage=Usage(tokens, 0))
    yield Chunk("done", stop_reason="stop")


Part = tuple[list[list[float]], int]


async def _one(call: Callable[[ChatRequest], AsyncGenerator[Chunk, None]], request: ChatRequest,
               part: EmbedInput) -> Part:
    """One call's vectors, its answer checked as a whole answer is, and its tokens."""
    vectors: list[list[float]] = []
    tokens = 0
    chunks = checked_vectors(call(dataclasses.replace(request, embed=part)), part)
    try:
        async for chunk in chunks:
            if chunk.kind == "embedding":  # checked: exactly one, a vector per text of the part
                vectors = list(chunk.vectors or ())
            elif chunk.kind == "usage" and chunk.usage is not None:
                tokens += chunk.usage.input_tokens
    finally:
        await chunks.aclose()  # a call cancelled because another failed is closed now, not when collected
    return vectors, tokens


async def _collected(call: Callable[[ChatRequest], AsyncGenerator[Chunk, None]], request: ChatRequest,
                     parts: list[EmbedInput], lanes: Lanes | None) -> tuple[list[list[float]], int]:
    """Every part's vectors in order, and their tokens summed: one call at a time on the attempt's slot, and one
    more at a time on each slot ``lanes`` lends. The first call that fails fails them all (the others cancelled)."""
    answers = await side_by_side(len(parts), lambda i: _one(call, request, parts[i]),
                                 _lent(lanes) if lanes is not None else None)
    vectors: list[list[float]] = []
    tokens = 0
    for n, (got, counted) in enumerate(answers, 1):
        if vectors and got and len(got[0]) != len(vectors[0]):
            raise malformed(f"call {n} of {len(answers)} gave vectors {len(got[0])} long, the first "
                            f"{len(vectors[0])}: two widths in one answer")
        vectors.extend(got)
        tokens += counted
    return vectors, tokens


async def _lent(lanes: Lanes) -> AsyncGenerator[GiveBack, None]:
    """Each slot ``lanes`` lends, as what gives it back, for as long as it lends one."""
    while await lanes.take():
        yield lanes.give_back
