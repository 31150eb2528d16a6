"""A text holding lone UTF-16 surrogates reaches the fast path and is routed, not a traceback.

Python hands command-line bytes that are not text in the file-system encoding over as lone surrogates (PEP 383:
`modelyard route café` typed on a Latin-1 terminal gives 'caf\\udce9'), and a JSON string may carry a lone
``\\udXXX`` escape (RFC 8259 §8.2 allows it; Python's json keeps it). The encoders' tokenizers take UTF-8, which
cannot hold one: `route` ended in UnicodeEncodeError from agents/word_ids.py.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from modelyard.agents.orchestrator import Orchestrator
from modelyard.cli import app
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

CONFIG = str(embedded_default_config())


@pytest.mark.parametrize("text", [
    "caf\udce9 how do I sort a list of dicts by a key in python",  # a Latin-1 byte, escaped (PEP 383)
    "écris un po\udcc3me sur la mer",  # a UTF-8 sequence cut short
    "日本語で説明してください\ud800",  # a lone high surrogate from a JSON escape, in a message in another language
])
def test_the_fast_path_decides_a_text_with_a_lone_surrogate(text: str) -> None:
    orchestrator = Orchestrator.from_config(load_config(CONFIG))
    assert orchestrator is not None
    decision = orchestrator.decide_fast(text)
    assert decision.agent in orchestrator.targets and 0.0 <= decision.confidence <= 1.0
    # the same decision as the text with U+FFFD in the surrogate's place: nothing else about the text changed
    clean = orchestrator.decide_fast(text.translate({c: "\ufffd" for c in range(0xD800, 0xE000)}))
    assert (decision.agent, decision.confidence) == (clean.agent, clean.confidence)


def test_route_takes_a_word_that_is_not_utf8_and_says_so() -> None:
    result = CliRunner().invoke(app, ["route", "caf\udce9 how do I sort a list in python", "--json", "-c", CONFIG])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["agent"] in out["scores"]
    assert "0xe9" in result.stderr and "were sent as '\ufffd'" in result.stderr
