"""A JSON answer's headers (gateway/responses.py ``JSONBody``, issue #15): listed as Starlette lists them."""

from __future__ import annotations

import pytest

HEADER_SETS = {
    "none": None,
    "the routing headers": {"x-modelyard-request-id": "req_1", "x-modelyard-agent": "bench",
                            "x-modelyard-route": "a ok", "x-modelyard-model": "a"},
    "names in upper case": {"Retry-After": "5", "WWW-Authenticate": "Bearer"},
    "a type of its own": {"Content-Type": "text/plain", "x-a": "1"},
    "a length of its own": {"content-length": "7"},
    "latin-1 text": {"x-a": "caf\u00e9"},
}


@pytest.mark.parametrize("case", list(HEADER_SETS))
@pytest.mark.parametrize("status", [200, 204, 304, 404])
def test_a_json_body_lists_the_headers_starlette_lists(case: str, status: int) -> None:
    from starlette.responses import Response

    from modelyard.gateway.responses import JSONBody

    headers = HEADER_SETS[case]
    body = b"" if status in (204, 304) else b'{"a": 1}'
    assert JSONBody(body, status, headers).raw_headers == \
        Response(body, status, headers, media_type="application/json").raw_headers
