"""Usage from a provider's usage object (providers/shapes.py ``usage_from``): plain int counts taken as they
are (issue #15: without a ``token_count`` call each), every other shape counted as ``token_count`` counts it."""

from __future__ import annotations

import pytest

from modelyard.providers.shapes import token_count, usage_from
from modelyard.types import Usage

VALUES = [0, 7, 10**9, 10**9 + 1, -1, True, False, None, "12", " 3 ", "x", 4.0, float("nan"), 1e30, [], {}]


@pytest.mark.parametrize("given", VALUES)
@pytest.mark.parametrize("made", [5, -2, "7", None, True])
def test_counts_are_token_counts(given: object, made: object) -> None:
    usage = usage_from({"prompt_tokens": given, "completion_tokens": made}, "prompt_tokens", "completion_tokens")
    assert usage == Usage(token_count(given), token_count(made))
    assert type(usage.input_tokens) is int and type(usage.output_tokens) is int  # never a bool passed through


def test_no_usage_object_is_none() -> None:
    assert usage_from(None, "a", "b") is None and usage_from([1], "a", "b") is None
    assert usage_from({}, "a", "b") == Usage(0, 0)
