"""Error bodies that keep their words under ``msg``, replayed on each wire: the row said only "HTTP 503".

``{"code": 503, "msg": "…"}`` is the envelope of Java and Go services and the gateways built on them — Spring Cloud
Gateway's resilience4j fallback controllers answer ``{"code":503,"msg":"…暂时不可用"}`` ("temporarily unavailable"),
a metering proxy in front of a model ``{"code":503,"msg":"余额不足!","data":{…}}`` — and so do proxies put in front of
a model server. ``msg`` under an ``error`` object comes from relays that rename OpenAI's ``message``. Each wire's own
reader looked only for ``message`` (or ``error``, ``detail``); ``msg``, ``message``, ``detail`` and ``error`` (text or
an object) are now read by one function for every provider (providers/error_words.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling
from tests.integration.test_wire_shapes_round5 import body, detail

WORDS = "upstream model service temporarily unavailable"


@pytest.mark.parametrize("kind", ["openai", "ollama", "anthropic"])
@pytest.mark.parametrize("error", [
    {"code": 503, "msg": WORDS},  # the service envelope
    {"code": 503, "msg": WORDS, "data": None, "success": False},
    {"error": {"code": 503, "msg": WORDS}},  # a relay's error object with OpenAI's message renamed
], ids=["code_msg", "code_msg_data", "error_object_msg"])
async def test_a_503_whose_words_are_under_msg_says_them(kind: str, error: dict[str, Any], servers: dict[str, Any],  # noqa: F811
                                                        tmp_path: Path) -> None:
    refusal = Fault.raw(503, body(error), headers=JSON)
    routed, _ = await route_cooling(kind, servers, tmp_path, refusal, refusal)
    assert outcomes(routed)[-1] == ("backup", "ok", None)
    assert routed.record.attempts[0].reason == "overloaded"
    assert detail(routed) == f"HTTP 503: {WORDS}"
