"""--write-config changes only the chain values and keeps everything else byte for byte."""

from __future__ import annotations

import pytest

from modelyard.bench.patch import patch_chains, unified_diff
from modelyard.config import parse_config
from modelyard.errors import ConfigError

CONFIG = """\
# my setup — comments stay
models:
  a: {provider: ollama}          # local
  b: {provider: ollama}
  "c d": {provider: ollama}
agents:
  chat:
    primary: "a"   # the quick one
    fallbacks:
      - b          # old fallback
      - "c d"
    consumers: [user]
  writer:
    description: Writes.
    primary: b
  utility:
    primary: a
    fallbacks: []   # none yet
    max_tokens: 64
"""


def test_only_the_chains_change() -> None:
    new = patch_chains(CONFIG, {"chat": ["b", "c d"], "writer": ["a", "b"], "utility": ["b", "a"]})
    cfg = parse_config(new)
    assert cfg.agents["chat"].chain == ["b", "c d"]
    assert cfg.agents["writer"].chain == ["a", "b"]
    assert cfg.agents["utility"].chain == ["b", "a"] and cfg.agents["utility"].max_tokens == 64
    assert "# my setup — comments stay" in new and "# the quick one" in new
    assert "a: {provider: ollama}          # local" in new
    def others(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.lstrip().startswith(("primary:", "fallbacks:", "- "))]

    assert others(new) == others(CONFIG)  # every other line, comments included, byte for byte
    assert unified_diff(CONFIG, new, "old", "new").startswith("--- old\n+++ new\n")
    assert '    primary: b   # the quick one\n    fallbacks: ["c d"]\n    consumers: [user]\n' in new
    assert "    description: Writes.\n    primary: a\n    fallbacks: [b]\n" in new
    assert "    primary: b\n    fallbacks: [a]   # none yet\n    max_tokens: 64\n" in new


def test_a_single_model_chain_empties_the_fallbacks_and_nothing_else_moves() -> None:
    new = patch_chains(CONFIG, {"chat": ["a"]})
    assert '    primary: a   # the quick one\n    fallbacks: []\n    consumers: [user]\n' in new
    assert new.replace('primary: a   # the quick one\n    fallbacks: []', "X") == CONFIG.replace(
        'primary: "a"   # the quick one\n    fallbacks:\n      - b          # old fallback\n      - "c d"', "X")


def test_the_result_is_validated() -> None:
    with pytest.raises(ConfigError, match="unknown model 'zzz'"):
        patch_chains(CONFIG, {"chat": ["zzz"]})
