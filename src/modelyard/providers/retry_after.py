"""The wait a server asks for in ``Retry-After`` and ``retry-after-ms``, in seconds.

``Retry-After`` is seconds or an HTTP date (RFC 9110 §10.2.3). A header sent twice — a proxy that adds its own beside
the upstream's, a framework that sets it again (aaronpowell/httpstatus#153) — reaches a client as one value joined by
commas where the client folds repeated fields (RFC 9110 §5.3; httpx, fetch's ``Headers.get``, a proxy that combines
them before relaying): ``30, 30``. Such a value was read as no wait at all, so the model cooled for the breaker's
second instead of the server's half minute. The first member that is a valid wait now counts.
"""

from __future__ import annotations

import math
from datetime import UTC
from email.utils import parsedate_to_datetime
from time import time


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date; folded: its first valid member), or None."""
    if not value:
        return None
    wait = _one(value)
    if wait is not None or "," not in value:
        return wait
    parts = value.split(",")
    for i, part in enumerate(parts):
        # an IMF-fixdate holds a comma after its weekday ("Wed, 21 Oct 2015 07:28:00 GMT"): try it with the next part
        for member in (part, ",".join(parts[i:i + 2])):
            wait = _one(member)
            if wait is not None:
                return wait
    return None


def _one(value: str) -> float | None:
    """One member: delay-seconds, or an HTTP date in any of its three forms (always GMT, RFC 9110 §5.6.7)."""
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    if value.count(",") > 1:  # a folded list of dates, which the date parser would read in part
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime's form carries no zone; HTTP dates are GMT, not this machine's local time
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time())


def retry_after_ms(value: str | None) -> float | None:
    """``retry-after-ms`` (Azure OpenAI, OpenAI; the official SDKs read it before ``retry-after``): milliseconds, in
    seconds. Without it a 429 that gave only this header cooled for the breaker's few seconds."""
    if not value:
        return None
    try:
        ms = float(value)
    except ValueError:
        return None
    return ms / 1000 if 0 <= ms < float("inf") else None
