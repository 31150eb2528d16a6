"""A YAML merge (``<<:``) whose anchor is one value, when the merge is written as a list (``<<: [*a, *b]``).

YAML's merge key takes "a mapping or a sequence of mappings" (yaml.org/type/merge.html). PyYAML refuses a merge of
one value with two wordings (lib/yaml/constructor.py ``flatten_mapping``): "expected a mapping or list of mappings for
merging" for ``<<: *a``, and "expected a mapping for merging, but found scalar" for an item of ``<<: [*a, …]`` — both
at the anchor's mark, where nothing is wrong. The first was said at the merge's line, with what an anchor to merge
must hold; the list's form still named the anchor's line and said nothing more (the list form is the usual one in
Docker Compose files, whose ``x-`` blocks the config now takes).
"""

from __future__ import annotations

import pytest

from modelyard.config.loader import ConfigError, parse_config


@pytest.mark.parametrize("merge", ["[*a]", "[*b, *a]"])
def test_a_merge_list_holding_one_value_is_said_at_the_merge(merge: str) -> None:
    text = (f"x-a: &a ollama\nx-b: &b {{provider: ollama}}\nmodels:\n  local:\n    <<: {merge}\n    model: x\n"
            "agents:\n  chat: {primary: local}\n")
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="config.yaml")
    said = str(raised.value)
    assert said.startswith("config.yaml:5: not valid YAML: expected a mapping for merging"), said
    assert "&NAME must be on keys and values" in said, said
