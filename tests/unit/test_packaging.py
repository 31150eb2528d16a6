"""modelyard as users install it: a built wheel, not this checkout.

An editable checkout reads its data files from ``src/`` whether or not the wheel carries them, and imports whatever
happens to be installed beside it; ``pip install modelyard``, ``pipx install modelyard`` and ``uv tool install
modelyard`` get only what the wheel holds and what pyproject declares. setuptools puts a non-Python file in the
wheel only when ``[tool.setuptools.package-data]`` names it (https://setuptools.pypa.io/en/latest/userguide/
datafiles.html); an import of a package that only arrives as another package's dependency breaks when that package
drops it (deptry's DEP003 "transitive dependencies", DEP004 "development dependencies in non-development code",
https://fpgmaas.github.io/deptry/rules-violations/).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "modelyard"
#: building the wheel: setuptools from the index (or pip's cache) into an isolated build environment, then a copy
#: of src/ zipped; about 6 s here, bounded so an unreachable index fails the test instead of hanging it
BUILD_TIMEOUT = 300
#: import roots that are not distributions of their own
NOT_A_DISTRIBUTION = frozenset({"modelyard", "tests", "benchmarks"})


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert found, spec
    return _norm(found.group(1))


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_requirement_name(s) for s in project["dependencies"]}
    extras = {extra: {_requirement_name(s) for s in specs}
              for extra, specs in project.get("optional-dependencies", {}).items()}
    return base, extras


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> Iterator[tuple[str, int, bool]]:
    """(import root, line, at module top) for each import run when the module runs (not under TYPE_CHECKING)."""
    def walk(node: ast.AST, top: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for other in child.orelse:
                    yield from walk_one(other, top)
                continue
            yield from walk_one(child, top)

    def walk_one(node: ast.AST, top: bool) -> Iterator[tuple[str, int, bool]]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno, top
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.module.split(".")[0], node.lineno, top
        else:
            # a def's or lambda's body runs later: an import there is lazy; an if/try at module level still runs
            inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from walk(node, inner)

    yield from walk(tree, True)


def _third_party_imports() -> Iterator[tuple[str, str, int, bool]]:
    """(distribution, where, line, at module top) for every third-party import in src/modelyard."""
    owners = packages_distributions()
    for path in sorted(PACKAGE.rglob("*.py")):
        for root, line, top in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if root in sys.stdlib_module_names or root in NOT_A_DISTRIBUTION or root == "__future__":
                continue
            dists = owners.get(root)
            assert dists, f"{path.relative_to(ROOT)}:{line} imports {root}, which no installed distribution provides"
            yield _norm(dists[0]), f"{path.relative_to(ROOT)}:{line}", line, top


def test_every_third_party_import_is_declared_in_pyproject() -> None:
    """A module modelyard imports is named in its dependencies (or an extra), not left to arrive with another
    package: numpy (replay/collect.py, at module top), scipy and threadpoolctl (the classifier), markdown-it-py
    (the Telegram formatter, at module top), httpx2 (MCP over HTTP) and pydantic-core were imported but declared
    nowhere — each came only as a dependency of scikit-learn, rich, mcp or pydantic (deptry DEP003)."""
    base, extras = _declared()
    declared = base.union(*extras.values())
    missing = sorted({f"{dist} ({where})" for dist, where, _, _ in _third_party_imports() if dist not in declared})
    assert not missing, f"imported but declared nowhere in pyproject.toml: {missing}"


def test_nothing_at_module_top_needs_an_extra() -> None:
    """Importing any modelyard module needs only the base dependencies: a distribution that only an extra
    (``local``: llama-cpp-python) or the dev tools bring is imported inside the function that uses it, where
    its absence becomes the message naming the extra (test_without_local_extra.py), not an ImportError at
    startup (deptry DEP004). On main numpy (replay/), markdown-it-py (frontends/telegram_format.py) and
    pydantic-core (config/schema.py) were imported at module top without being base dependencies."""
    base, _ = _declared()
    at_top = sorted(f"{dist} ({where})" for dist, where, _, top in _third_party_imports() if top and dist not in base)
    assert not at_top, f"imported at module top but not a base dependency: {at_top}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of this checkout (setuptools writes build/ and egg-info beside
    the sources it builds: never into the working tree)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache"))
    out = work / "dist"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env, cwd=work)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    (built,) = out.glob("modelyard-*.whl")
    return built


def _shipped_data_files() -> list[str]:
    """Every file under src/modelyard that is not Python source: each is there to be read at run time."""
    return sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*")
                  if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts)


def test_the_wheel_holds_every_data_file(wheel: Path) -> None:
    """Guard test (the wheel of main already held them all): the example configs, the dashboard page, the bench
    starter suite, the routing tuning sets and py.typed are in the wheel, and so is every module."""
    names = set(zipfile.ZipFile(wheel).namelist())
    data = _shipped_data_files()
    assert {"modelyard/examples/default.yaml", "modelyard/gateway/static/dashboard.html",
            "modelyard/bench/starter.yaml", "modelyard/py.typed"} <= set(data)
    modules = sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py"))
    assert [n for n in [*data, *modules] if n not in names] == []


#: what the package opens at run time, each through the function that opens it, run against the unzipped wheel
_READERS = """
import sys
import modelyard
assert modelyard.__file__.startswith(sys.argv[1]), modelyard.__file__
from importlib import resources
from modelyard import paths
from modelyard.agents import fitted, memory
from modelyard.bench.suite import starter_text
from modelyard.config.loader import load_config
load_config(paths.embedded_default_config())
load_config(paths.example_file("reference-mac64.yaml"))
assert "agents:" in starter_text()
assert resources.files("modelyard.gateway").joinpath("static/dashboard.html").read_bytes().startswith(b"<!doctype")
for name in memory.TUNING_SETS:
    assert memory._tuning_set(name), name
assert fitted._sources()
assert resources.files("modelyard").joinpath("py.typed").is_file()
print("read all")
"""


def test_what_the_package_reads_is_read_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    """Guard test (passed on main): each data file is opened by the code that opens it, from the unzipped wheel
    with src/ out of sys.path — a file left out of package-data shows up here as the error a user would get."""
    unzipped = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unzipped)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(unzipped),
           "HOME": str(tmp_path), "MODELYARD_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", _READERS, str(unzipped)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "read all"
