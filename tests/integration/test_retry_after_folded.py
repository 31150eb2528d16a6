"""``Retry-After`` as it reaches a client behind proxies: repeated and folded, or in an HTTP date's other forms.

RFC 9110 §5.3: a recipient may combine a field sent more than once into one value, the members joined by ", " — what
httpx's and fetch's ``Headers.get`` return, and what a proxy that combines fields before relaying sends on. A server
or a proxy in front of it that sets ``Retry-After`` beside the upstream's sends it twice (aaronpowell/httpstatus#153:
a 429 with a custom ``Retry-After`` came back with the header doubled). RFC 9110 §10.2.3: the value is delay-seconds
or an HTTP-date, and §5.6.7: an HTTP-date is GMT in all three of its forms (IMF-fixdate, RFC 850's, asctime's — the
last names no zone). Each case failed on the old code: the model cooled for the breaker's second, not the four the
server asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON
from tests.integration.test_wire_shapes_round3 import route_cooling

RATE_LIMITED = json.dumps({"error": {"message": "Rate limit reached", "type": "requests", "code": "429"}})


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's local time 5 h 30 min off GMT: a date read as local time is then hours off."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _in(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(time.time()) + seconds, UTC)


def _imf(seconds: int) -> str:
    return format_datetime(_in(seconds), usegmt=True)  # "Mon, 30 Nov 2026 13:20:05 GMT"


def _asctime(seconds: int) -> str:
    return _in(seconds).strftime("%a %b %e %H:%M:%S %Y")  # "Mon Nov 30 13:20:05 2026": no zone, GMT by definition


@pytest.mark.parametrize("value", [
    lambda: "4, 4",  # the same header twice, folded (RFC 9110 §5.3)
    lambda: "4,4",
    lambda: "soon, 4",  # a member that is no wait, then one that is: the first valid one counts
    lambda: f"{_imf(5)}, {_imf(5)}",  # two IMF-fixdates folded: each holds a comma of its own
    lambda: f"4, {_imf(60)}",  # the upstream's and a proxy's: the first
    lambda: _asctime(5),  # asctime's form, which names no zone
], ids=["seconds", "seconds-no-space", "junk-then-seconds", "dates", "seconds-then-date", "asctime"])
async def test_a_folded_or_zoneless_retry_after_is_honoured(value: Any, servers: dict[str, Any],  # noqa: F811
                                                            tmp_path: Path, far_from_utc: None) -> None:
    _, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        429, RATE_LIMITED, headers={**JSON, "retry-after": value()}))
    assert 3 < cooling <= 5, cooling


def test_what_is_no_wait_stays_none() -> None:
    """Values that say no wait are not made into one: ``inf`` was read as a wait without end (the model cooled for
    ``cooldown.max_retry_after``, an hour), ``nan`` as no wait at all."""
    from modelyard.providers.http import parse_retry_after

    assert [parse_retry_after(v) for v in ("", ",", "soon", "soon, later", "inf", "nan")] == [None] * 6
    assert parse_retry_after("-3") == 0.0
