"""The import graph flows one way: config → types → providers → router → ledger → runtime →
agents/ops → gateway/front-ends → CLI. A module may import its own layer and the layers below,
never above; the top-level packages form no cycle. (Imports inside functions count too: a
deferred import is still a dependency.)"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import parse_source

SRC = Path(__file__).resolve().parents[2] / "src" / "modelyard"

#: bottom first; packages in one layer may import each other as long as no cycle forms
LAYERS: list[set[str]] = [
    {"types", "tokens", "errors", "outcomes", "paths", "installer", "registry", "__init__"},
    {"config"},
    {"providers"},
    {"router"},
    {"ledger"},
    {"runtime"},
    {"agents", "ops", "replay", "bench"},
    {"gateway", "frontends"},
    {"cli", "__main__", "console"},
]
LAYER = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _imports() -> list[tuple[str, int, str]]:
    """(importing file, line, imported top-level package) for every modelyard import."""
    out = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(parse_source(path)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            out += [(rel, node.lineno, n.split(".")[1]) for n in names if n.startswith("modelyard.")]
    return out


def _package(rel: str) -> str:
    return rel.split("/")[0].removesuffix(".py")


def test_every_package_has_a_layer() -> None:
    packages = {_package(p.relative_to(SRC).as_posix()) for p in SRC.rglob("*.py")}
    assert packages <= set(LAYER), f"place these in LAYERS: {sorted(packages - set(LAYER))}"


def test_no_import_points_up() -> None:
    upward = [f"{rel}:{line} ({_package(rel)}) imports modelyard.{target}"
              for rel, line, target in _imports() if LAYER[target] > LAYER[_package(rel)]]
    assert not upward, "imports against the flow:\n" + "\n".join(upward)


def test_packages_form_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for rel, _, target in _imports():
        if target != _package(rel):
            graph.setdefault(_package(rel), set()).add(target)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    cycles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a)})
    assert not cycles, f"packages importing each other: {cycles}"
