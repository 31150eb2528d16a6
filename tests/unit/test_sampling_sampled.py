"""``sampling.sampled`` says whether ``put_sampling`` puts anything, for every field of a request.

OpenAIProvider asks it per request (a refit that remembers a refused value is made only where the request carries
sampling fields). It was a condition of its own in openai.py, naming each field: every field added to put_sampling
(top_k, then min_p and repeat_penalty this session) had to be added there too. The test names no field: it sets each
of ChatRequest's optional fields in turn.
"""

from __future__ import annotations

import dataclasses

import pytest

from modelyard.providers.sampling import put_sampling, sampled
from modelyard.types import ChatRequest, Message

OPTIONAL = [f.name for f in dataclasses.fields(ChatRequest) if f.default is None]
#: the optional fields that hold a list (``stop``): set to that many sequences, not to the number
LISTS = {f.name for f in dataclasses.fields(ChatRequest) if f.default is None and str(f.type).startswith("list")}


@pytest.mark.parametrize("name", OPTIONAL)
@pytest.mark.parametrize("value", [0, 0.5, 3])
def test_sampled_is_whether_put_sampling_puts_a_field(name: str, value: float) -> None:
    given = ["\n"] * int(value) if name in LISTS else value
    request = dataclasses.replace(ChatRequest([Message("user", "hi")]), **{name: given})
    body: dict[str, object] = {}
    put_sampling(request, body, frozenset())
    assert sampled(request) is bool(body), (name, value, body)


def test_a_request_without_sampling_fields_is_not_sampled() -> None:
    assert not sampled(ChatRequest([Message("user", "hi")]))
