"""Ollama's ``keep_alive``, read as Ollama reads it, for every endpoint that takes it (``/api/chat``,
``/api/generate``, ``/api/embed``): a value Ollama would refuse is refused here too, named, on each of them."""

from __future__ import annotations

import re
from typing import Any

from modelyard.gateway.wire import BadRequest

#: a Go duration string that is zero ("0", "0s", "0m0s": time.ParseDuration's, which api.Duration reads a string with)
ZERO_DURATION = re.compile(r"[+-]?(?:0+(?:\.0*)?(?:ns|us|µs|μs|ms|s|m|h))+|[+-]?0+")
#: a Go duration string as time.ParseDuration takes it: "0" alone, or numbers each with its unit ("1h30m", "-1m")
_GO_DURATION = re.compile(r"[+-]?(?:0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_GO_PART = re.compile(r"([0-9.]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def check_keep_alive(value: Any) -> None:
    """``keep_alive`` as Ollama reads it (api/types.go ``Duration.UnmarshalJSON``): a number of seconds, or a string
    ``time.ParseDuration`` takes (past int64 nanoseconds it overflows); any other is Ollama's 400 ("time: invalid
    duration", "unsupported duration type"). Was ignored: "5 minutes" meant nothing and nobody was told."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return
    if isinstance(value, str) and _GO_DURATION.fullmatch(value) is not None and sum(
            float(n) * _UNIT_NS[u] for n, u in _GO_PART.findall(value)) < 2**63:
        return
    raise BadRequest(f"keep_alive: invalid duration {value!r:.60} (a number of seconds, or a duration such as \"5m\", "
                     "\"1h30m\" or \"-1m\", as Ollama reads it)", "keep_alive")
