"""Write recommended chains into a copy of the user's config, changing only those values.

A careful text patch rather than a YAML round-trip: the position of each ``primary:`` and
``fallbacks:`` value comes from PyYAML's node marks, and only those characters are replaced, so
comments, quoting, key order and indentation everywhere else stay byte-for-byte as the user wrote
them. The result is validated with the config loader before anyone sees it.
"""

from __future__ import annotations

import difflib
import json
import re

import yaml

from modelyard.config.loader import parse_config

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/@+-]*\Z")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(name: str) -> str:
    """A model name as a YAML scalar: plain when safe, else double-quoted (JSON strings are YAML)."""
    return name if _PLAIN.match(name) and name.lower() not in _RESERVED else json.dumps(name)


def _mapping_item(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    return next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _value_end(value: yaml.Node) -> int:
    """Where a value ends in the text (a block sequence's own end mark runs into the next line)."""
    if isinstance(value, yaml.SequenceNode) and not value.flow_style and value.value:
        return _value_end(value.value[-1])
    return value.end_mark.index


def patch_chains(text: str, chains: dict[str, list[str]], source: str = "<config>") -> str:
    """``text`` with each named agent's ``primary``/``fallbacks`` set to ``chains[agent]``."""
    root = yaml.compose(text)
    agents = _mapping_item(root, "agents") if isinstance(root, yaml.MappingNode) else None
    if agents is None or not isinstance(agents[1], yaml.MappingNode):
        raise ValueError("the config has no 'agents:' mapping")
    edits: list[tuple[int, int, str]] = []
    for agent, chain in chains.items():
        item = _mapping_item(agents[1], agent)
        if item is None or not isinstance(item[1], yaml.MappingNode) or not chain:
            continue
        node = item[1]
        primary = _mapping_item(node, "primary")
        fallbacks = _mapping_item(node, "fallbacks")
        flow = "[" + ", ".join(scalar(m) for m in chain[1:]) + "]"
        if primary is None:
            continue  # the loader refuses agents without a primary: nothing sensible to patch
        pkey, pvalue = primary
        edits.append((pvalue.start_mark.index, pvalue.end_mark.index, scalar(chain[0])))
        if fallbacks is not None:
            fkey, fvalue = fallbacks
            colon = text.index(":", fkey.end_mark.index) + 1
            end = max(_value_end(fvalue), colon)
            edits.append((colon, end, " " + flow))
        elif len(chain) > 1:
            line_end = text.find("\n", pvalue.end_mark.index)
            line_end = len(text) if line_end < 0 else line_end
            indent = " " * pkey.start_mark.column
            edits.append((line_end, line_end, f"\n{indent}fallbacks: {flow}"))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    parse_config(text, source)  # never hand out a config the loader would refuse
    return text


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name))
