"""One bench call to one model, straight through its provider: no chain, no fallback, no cooldown.

The production bounds still apply (first token, idle, total from the config) and transient failures
get the configured bounded retry, so "retries by reason" and "errors by reason" mean what they mean
in the routing log. Every attempt's tokens count towards the cost, like the router bills them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass, field

from modelyard.config.schema import Retries, Timeouts
from modelyard.errors import ProviderError, Reason, provider_failure
from modelyard.providers import Provider
from modelyard.types import ChatRequest, ChatResponse, Usage

_FIRST = ("text", "thinking", "tool_call")


@dataclass
class Call:
    response: ChatResponse | None
    error: ProviderError | None
    #: seconds from the last attempt's start to its first text/thinking/tool-call chunk
    ttft: float | None
    #: seconds of the last attempt
    service: float
    #: seconds of every attempt and pause: what the agent would have waited
    wall: float
    retries: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)


async def call_model(provider: Provider, request: ChatRequest, tm: Timeouts, retries: Retries) -> Call:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    deadline = t0 + tm.total
    counts: Counter[str] = Counter()
    usage = Usage()
    for n in range(retries.attempts + 1):
        start = loop.time()
        response = ChatResponse(model=provider.name)
        try:
            ttft = await _attempt(provider, request, tm, deadline, response)
        except ProviderError as exc:
            usage += response.usage
            pause = exc.retry_after if exc.retry_after is not None else retries.backoff * 2**n
            if (exc.retryable and n < retries.attempts and pause <= retries.max_wait
                    and loop.time() + pause < deadline):
                counts[str(exc.reason)] += 1
                await asyncio.sleep(pause)
                continue
            now = loop.time()
            return Call(None, exc, None, now - start, now - t0, counts, usage)
        usage += response.usage
        now = loop.time()
        return Call(response, None, ttft, now - start, now - t0, counts, usage)
    raise AssertionError("unreachable: the last attempt returns")


async def _attempt(provider: Provider, request: ChatRequest, tm: Timeouts, deadline: float,
                   response: ChatResponse) -> float | None:
    """Stream one answer into ``response`` under the first-token, idle and total bounds; returns TTFT."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    ttft: float | None = None
    got_any = False
    try:
        async with asyncio.timeout_at(min(start + tm.first_token, deadline)) as bound:
            async with aclosing(provider.chunks(request, tm)) as chunks:  # checked, as the router sees them
                async for chunk in chunks:
                    got_any = True
                    if ttft is None and chunk.kind in _FIRST:
                        ttft = loop.time() - start
                    bound.reschedule(min(loop.time() + tm.idle, deadline))
                    response.add(chunk)
    except TimeoutError:
        if loop.time() >= deadline:
            raise ProviderError(Reason.DEADLINE, f"no complete answer within {tm.total:g}s") from None
        if not got_any:
            raise ProviderError(Reason.FIRST_TOKEN_TIMEOUT, f"no first token within {tm.first_token:g}s") from None
        raise ProviderError(Reason.IDLE_TIMEOUT, f"stream silent for {tm.idle:g}s") from None
    except (ProviderError, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise provider_failure(exc) from None
    return ttft
