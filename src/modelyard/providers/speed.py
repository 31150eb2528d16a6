"""Generation speed (tokens/s) as peer tools state it, or none at all.

The server's own timings first: Ollama's ``eval_count / eval_duration`` (docs.ollama.com/api/usage: "how long it took
to generate the output tokens", the figure ``ollama run --verbose`` shows) and llama.cpp's ``timings`` (its server's
``predicted_per_second``: predicted_n over predicted_ms, the decoding alone). Otherwise the client's clock over the
generation span, first token to the end, as ``(tokens - 1) / span`` (paiml/probar#27: an SSE chunk is not a token;
(last - first) / (n - 1)) — and only when there are enough tokens over enough time: an answer that arrives in one
burst (a 5-token reply, an upstream that buffers and flushes, gsanhueza/pi-token-speed#12) has no span to measure, and
dividing by the milliseconds it took to parse read "2978.4 tok/s". Then there is no figure ("—"),
and the medians of ``stats``/``report`` leave the row out rather than average a made-up one in.
"""

from __future__ import annotations

import math
from typing import Any

from modelyard.types import ServerTimes

#: tokens an answer needs for a measured speed: the first and two more, two gaps timed
MIN_TOKENS = 3
#: seconds from the first token to the end an answer needs for a measured speed: below it, the span is the client's
#: own parsing and scheduling of a burst, not the model's decoding
MIN_SPAN_S = 0.1


def measured(tokens: int, span_s: float) -> float | None:
    """Tokens/s over the generation span, or None when the span cannot say (too few tokens, too short a span). No
    count of chunks kept per chunk for it (issue #15): a burst streamed to a client is still one chunk per delta, so
    only its span tells it apart."""
    if tokens < MIN_TOKENS or span_s < MIN_SPAN_S:
        return None
    return (tokens - 1) / span_s


def server_rate(count: Any, duration: Any, unit_s: float) -> float | None:
    """``count`` tokens in ``duration`` (in units of ``unit_s`` seconds) as the server timed them, or None when it
    gave no usable pair (absent, not numbers, zero)."""
    if type(count) is not int or type(duration) not in (int, float) or count < 1 or duration <= 0:
        return None
    try:
        rate = count / (duration * unit_s)
    except (OverflowError, ZeroDivisionError):  # a count past a float's range, a duration that rounds to 0 s
        return None  # (they were internal_error: a good answer lost for a figure beside it)
    return rate if math.isfinite(rate) else None


def llama_timings(timings: Any) -> float | None:
    """llama.cpp's ``timings`` object (llama-server, and Ollama's /v1 since 0.35.1): ``predicted_n`` tokens in
    ``predicted_ms``, which is what its ``predicted_per_second`` states."""
    if type(timings) is not dict:
        return None
    return server_rate(timings.get("predicted_n"), timings.get("predicted_ms"), 1e-3)


#: ns past what a signed 64-bit count holds (292 years): no server timed that, and orjson refuses such an integer
_NS_CAP = 2**63


def _ns(value: Any, unit_ns: float) -> int | None:
    """A stated duration in ns, or None when it is no usable figure (absent, not a number, negative, past 64 bits)."""
    if type(value) not in (int, float):
        return None
    try:
        ns = value * unit_ns
    except OverflowError:  # an integer past a float's range
        return None
    return round(ns) if 0 <= ns < _NS_CAP else None


def ollama_times(data: dict[str, Any]) -> ServerTimes | None:
    """Ollama's own durations on an answer's last line, in ns as it states them (docs.ollama.com/api/usage: "All
    timing values are measured in nanoseconds"), or None when it gave none."""
    times = ServerTimes(_ns(data.get("prompt_eval_duration"), 1), _ns(data.get("eval_duration"), 1),
                        _ns(data.get("load_duration"), 1))
    return None if times == _NONE else times


def llama_times(timings: Any) -> ServerTimes | None:
    """llama.cpp's ``timings``: ``prompt_ms`` (the prompt's evaluation) and ``predicted_ms`` (the decoding), in ns."""
    if type(timings) is not dict:
        return None
    times = ServerTimes(_ns(timings.get("prompt_ms"), 1e6), _ns(timings.get("predicted_ms"), 1e6))
    return None if times == _NONE else times


_NONE = ServerTimes()
