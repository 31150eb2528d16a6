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


@pytest.mark.parametrize("line", ['notes: "Plan: &then check"', "notes: 'Q: &A'", 'title: "R&D: &more"'])
def test_an_unknown_key_whose_text_holds_an_ampersand_is_no_anchor(line: str) -> None:
    """An unknown top-level key whose value is text holding ": &" (quoted: a plain value may not hold ": ") defines no
    anchor (yaml.org/spec/1.2.2 §6.9.2: an anchor is a node property, before the node, not inside a quoted scalar):
    it was said to be "a block kept to be merged elsewhere" and told to move under an x- name."""
    text = f"{line}\nmodels:\n  local: {{provider: ollama, model: x}}\nagents:\n  chat: {{primary: local}}\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="config.yaml")
    said = str(raised.value)
    key = line.split(":", 1)[0]
    assert f"unknown key '{key}'" in said and "merged" not in said and "x-" not in said, said


@pytest.mark.parametrize("line", ["defaults-ollama: &ollama {provider: ollama}", "'odd: key': &o {provider: ollama}",
                                  "base:   &b", "base: &b  # the shared settings"])
def test_an_unknown_key_defining_an_anchor_is_told_to_go_under_x(line: str) -> None:
    """A guard (right before this test was written) of the anchor said for what it is."""
    text = f"{line}\nmodels:\n  local: {{provider: ollama, model: x}}\nagents:\n  chat: {{primary: local}}\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="config.yaml")
    assert "a block kept to be merged elsewhere (<<: *name) goes under a name starting with x-" in str(raised.value)
