"""The lease keeper (``router/shared/keeper.py``) runs on a thread of its own beside the event loop and reads the
link and the model states across it. It reads them through a public seam (``RedisLink.running``, ``keep_calls``,
``RedisState.keep_call``) that says what is safe to read from another thread — before, it reached into six private
fields of both (``link._loop``, ``link._closing``, ``state._remote``, ``state._slots``…), which a change to either
class could break without a test or a type checker noticing the thread."""

from __future__ import annotations

import ast
from pathlib import Path

import modelyard.router.shared.keeper as keeper


def test_the_lease_keeper_reads_no_private_field_of_another_object() -> None:
    tree = ast.parse(Path(keeper.__file__).read_text())
    reached = sorted({f"{ast.unparse(node.value)}.{node.attr}" for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                      and not node.attr.startswith("__")
                      and not (isinstance(node.value, ast.Name) and node.value.id == "self")})
    assert reached == [], f"the keeper reads private fields across its thread: {reached}"
