"""A new backend is one module plus one registration (issue 13.1).

The toy backend (tests/plugins/toy_backend.py) is registered the way a plugin is — through
``register_provider``, the function its entry point ends up in, or through a real
``modelyard.providers`` entry point in a subprocess — and then `ask` (the router), `probe`,
`check`, `plan` and `warmup` work with it, with no change anywhere in modelyard. The last
tests keep it that way: ``ops/`` never branches on a provider's type, ``providers/`` never
imports from above itself.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.helpers import parse_source
from tests.plugins.toy_backend import DECODING_TOKENS_PER_S, SHAPE, ToyProvider
from typer.testing import CliRunner

import modelyard
from modelyard import registry
from modelyard.cli import app
from modelyard.config import load_config, parse_config
from modelyard.errors import ConfigError
from modelyard.ops.plan import GB
from modelyard.ops.warmup import default_interval
from modelyard.providers import build_provider, provider_class, register_provider, unregister_provider
from modelyard.runtime import open_runtime

SRC = Path(modelyard.__file__).parent
REPO = SRC.parent.parent


@pytest.fixture
def toy() -> Iterator[None]:
    register_provider("toy", ToyProvider)
    yield
    unregister_provider("toy")


def toy_config(tmp_path: Path, provider: str = "toy") -> Path:
    data = {
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"toy-small": {"provider": provider, "model": "toy-1", "max_concurrent": 2, "context": 4096,
                                 "keep_alive": "20m"}},
        "agents": {"chat": {"primary": "toy-small", "thinking": True},
                   "engineer": {"primary": "toy-small", "tools": {"files": "read", "workspace": str(tmp_path)}}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_router_serves_it_and_ask_shows_the_route(toy, tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["ask", "--config", str(toy_config(tmp_path)), "--agent", "chat", "--json",
                                   "hello there"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    assert (answer["answer"], answer["model"], answer["outcome"]) == ("toy says: hello there", "toy-small", "ok")
    assert [(a["model"], a["provider"], a["outcome"]) for a in answer["route"]["attempts"]] == \
        [("toy-small", "toy", "ok")]
    assert answer["route"]["tokens_out"] == 4  # the toy counts words


def test_probe_measures_it_and_check_accepts_it_for_a_tool_agent(toy, tmp_path: Path) -> None:
    path = toy_config(tmp_path)
    runner = CliRunner()
    probed = runner.invoke(app, ["probe", "--config", str(path), "--json", "--timeout", "10"])
    assert probed.exit_code == 0, probed.output
    (result,) = json.loads(probed.output)
    assert result["provider"] == "toy"
    assert {name: c["status"] for name, c in result["checks"].items()} == {
        "reachable": "pass", "tools": "pass", "thinking": "pass", "json": "pass", "ttft_ms": "pass",
        "tokens_per_s": "pass", "context": "pass"}
    assert result["checks"]["tools"]["detail"] == "structured call get_weather(city='Paris')"
    assert result["checks"]["context"]["value"] == 8192
    # its answer comes in one burst: the speed is the one it states, not a client's timing of no span
    assert result["checks"]["tokens_per_s"]["value"] == DECODING_TOKENS_PER_S
    assert result["checks"]["context"]["detail"] == "toy model card; configured 4096"

    checked = runner.invoke(app, ["check", "--config", str(path), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["findings"] == []


def test_plan_counts_its_weights_and_kv_cache(toy, tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["plan", "--config", str(toy_config(tmp_path)), "--json", "--ram", "16"])
    assert out.exit_code == 0, out.output
    (m,) = json.loads(out.output)["models"]
    assert (m["model"], m["weights_gb"], m["weights_source"]) == ("toy-small", 1.0, "toy model card")
    # 4 layers × 2 KV heads × 64 dims × K,V × f16 = 2048 bytes per token, 4096 tokens × 2 slots
    assert SHAPE.bytes_per_token() == 2048
    assert m["kv_gb"] == pytest.approx(2048 * 4096 * 2 / GB)
    assert m["kv_source"] == "4 layers × 2 KV heads × 64 dims, 4096 ctx × 2"
    assert m["role"] == "Primary for all agents"


def test_warmup_loads_it_and_keep_warm_follows_its_keep_alive(toy, tmp_path: Path) -> None:
    path = toy_config(tmp_path)
    out = CliRunner().invoke(app, ["warmup", "--config", str(path)])
    assert out.exit_code == 0, out.output
    assert "✓ toy-small:" in out.output
    runtime = open_runtime(path)
    try:
        assert default_interval(runtime) == 600  # half of its 20m keep-alive
    finally:
        runtime.log.close()


async def test_its_facts_through_the_provider_interface(toy, tmp_path: Path) -> None:
    model = load_config(toy_config(tmp_path)).models["toy-small"].model_copy(update={"model": "toy-fresh"})
    provider = build_provider("toy-small", model)
    assert type(provider) is ToyProvider and provider_class("toy") is ToyProvider
    assert await provider.loaded() is False
    await provider.warmup()
    assert await provider.loaded() is True
    window = await provider.context_window()
    assert (window.trained, window.served) == (8192, 4096)


def test_config_lists_it_among_known_providers_and_names_file_line_key(toy) -> None:
    text = "models:\n  m:\n    provider: toyy\nagents:\n  a:\n    primary: m\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="my.yaml")
    assert str(caught.value) == ("my.yaml:3: models.m.provider: unknown provider 'toyy' "
                                 "(known providers: anthropic, llamacpp, ollama, openai, toy) (did you mean 'toy'?)")


def test_unregistered_it_is_unknown() -> None:
    with pytest.raises(ConfigError, match=r"known providers: anthropic, llamacpp, ollama, openai\)"):
        parse_config("models:\n  m:\n    provider: toy\nagents:\n  a:\n    primary: m\n")


def plugin_dist(root: Path, target: str = "tests.plugins.toy_backend:ToyProvider") -> None:
    """An installed distribution as pip leaves it: a dist-info with an entry point, on sys.path."""
    info = root / "modelyard_toy-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: modelyard-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[modelyard.providers]\ntoy = {target}\n")


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": f"{SRC.parent}:{REPO}:{tmp_path / 'site'}", "MODELYARD_DATA_DIR": str(tmp_path / "data"),
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_an_installed_plugin_is_found_through_its_entry_point(tmp_path: Path) -> None:
    plugin_dist(tmp_path / "site")
    path = toy_config(tmp_path)
    planned = run_cli(tmp_path, "plan", "--config", str(path), "--json", "--ram", "16")
    assert planned.returncode == 0, planned.stderr
    (m,) = json.loads(planned.stdout)["models"]
    assert (m["model"], m["weights_source"]) == ("toy-small", "toy model card")

    bad = toy_config(tmp_path, provider="nope")
    refused = run_cli(tmp_path, "plan", "--config", str(bad))
    assert refused.returncode == 2
    assert "models.toy-small.provider: unknown provider 'nope' (known providers: anthropic, llamacpp, ollama, " \
           "openai, toy)" in refused.stderr


def test_a_broken_plugin_is_named_not_fatal(tmp_path: Path) -> None:
    plugin_dist(tmp_path / "site", target="no_such_module_anywhere:Provider")
    refused = run_cli(tmp_path, "plan", "--config", str(toy_config(tmp_path)))
    assert refused.returncode == 2
    assert "unknown provider 'toy'" in refused.stderr
    assert "plugin 'toy' failed to load: ModuleNotFoundError" in refused.stderr
    working = run_cli(tmp_path, "plan", "--config", str(toy_config(tmp_path, provider="ollama")), "--json")
    assert working.returncode == 0, working.stderr


def test_hosted_comes_from_the_registration() -> None:
    for name in ("ollama", "openai", "anthropic", "llamacpp"):
        assert registry.backend(name).hosted is provider_class(name).hosted
    assert registry.is_hosted("anthropic") and not registry.is_hosted("ollama")


# -- the shape that keeps it one module ------------------------------------------------------

BUILTIN = {"ollama", "openai", "anthropic", "llamacpp"}


def modules(package: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((SRC / package).rglob("*.py")):
        yield path, parse_source(path)


def test_ops_never_asks_which_backend_it_is() -> None:
    found = []
    for path, tree in modules("ops"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in BUILTIN:
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.Compare) and any(
                    isinstance(side, ast.Attribute) and side.attr == "provider"
                    for side in (node.left, *node.comparators)):
                found.append(f"{path.name}:{node.lineno}: compares .provider")
    assert found == []


def test_providers_and_config_import_nothing_above_them() -> None:
    above = ("modelyard.ops", "modelyard.router", "modelyard.ledger", "modelyard.runtime", "modelyard.agents",
             "modelyard.gateway", "modelyard.frontends", "modelyard.cli")
    upward = []
    for package, forbidden in (("providers", above), ("config", (*above, "modelyard.providers"))):
        for path, tree in modules(package):
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                upward += [f"{package}/{path.name}: {n}" for n in names if n.startswith(forbidden)]
    assert upward == []
