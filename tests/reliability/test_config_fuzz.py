"""Random YAML never crashes config loading: it is either a Config or a ConfigError with a location."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.config import parse_config
from modelyard.errors import ConfigError
from modelyard.paths import embedded_default_config

BASE = yaml.safe_load(embedded_default_config().read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=12)


def check(text: str) -> None:
    try:
        parse_config(text, "fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check(text)


@settings(max_examples=300, deadline=None)
@given(path=st.lists(st.sampled_from(["models", "agents", "defaults", "log", "chat", "writer", "qwen-coder-0.5b",
                                      "claude-haiku", "timeouts", "primary", "fallbacks", "max_concurrent",
                                      "price", "queue", "tools", "telegram"]), min_size=1, max_size=4),
       value=values)
def test_mutated_default_config(path: list[str], value: object) -> None:
    """Replace one node of the real default config with random data."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    node = data
    for key in path[:-1]:
        if not isinstance(node, dict):
            break
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value
    check(yaml.safe_dump(data, allow_unicode=True))
