"""`modelyard warmup`, `keep_warm` for serve mode, and `modelyard install-service` renderings."""

from __future__ import annotations

import asyncio
import plistlib
import shlex
from pathlib import Path

import pytest
import yaml
from tests.fakes import OllamaServer
from tests.helpers import make_config
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.ops.warmup import default_interval, keep_warm, warm_all, warmable
from modelyard.providers.base import parse_duration
from modelyard.runtime import open_runtime
from modelyard.types import ChatRequest, Message


def config_file(tmp_path: Path, ollama_url: str, dead_url: str | None = None) -> Path:
    models = {
        "qwen": {"provider": "ollama", "model": "qwen3:8b", "endpoint": ollama_url, "keep_alive": "30m"},
        "haiku": {"provider": "anthropic", "api_key_env": "NO_SUCH_KEY_ANYWHERE", "price": {"input": 1, "output": 5}},
    }
    if dead_url:
        models["gone"] = {"provider": "ollama", "model": "gone:1b", "endpoint": dead_url}
    data = {"log": {"path": str(tmp_path / "log.sqlite3")}, "models": models,
            "agents": {"chat": {"primary": "qwen", "fallbacks": ["haiku"]}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def preloads(server: OllamaServer) -> list[dict]:
    return [r.json for r in server.requests_to("/api/chat") if r.json.get("messages") == []]


def test_warmup_cli_loads_local_models_with_their_keep_alive(tmp_path: Path) -> None:
    with OllamaServer(["qwen3:8b"]) as ollama:
        out = CliRunner().invoke(app, ["warmup", "--config", str(config_file(tmp_path, ollama.url))])
        assert out.exit_code == 0, out.output
        assert ollama.loaded_models == ["qwen3:8b"]
        assert [b["keep_alive"] for b in preloads(ollama)] == ["30m"]
    assert "✓ qwen:" in out.output
    assert "haiku" not in out.output  # cloud models are never "warmed"


def test_warmup_says_which_local_models_it_leaves_to_their_server(tmp_path: Path) -> None:
    """A llama-server model (`init --detect`) was left out of warmup's lines in silence: it read as forgotten."""
    path = config_file(tmp_path, "http://127.0.0.1:9")
    data = yaml.safe_load(path.read_text())
    data["models"] = {"server": {"provider": "openai", "model": "qwen.gguf", "endpoint": "http://127.0.0.1:9"},
                      "haiku": data["models"]["haiku"]}
    data["agents"]["chat"]["primary"] = "server"
    path.write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(app, ["warmup", "--config", str(path)])
    assert out.exit_code == 0, out.output
    assert "no local models to warm up" in out.output
    assert "not warmed up here: server (its server loads its model itself)" in out.output
    assert "haiku" not in out.output


def test_warmup_of_named_models_that_load_nothing_does_not_say_they_were_warmed(tmp_path: Path) -> None:
    """`warmup server haiku` printed "✓ server: 0.0s" and "✓ haiku: 0.0s": their providers load nothing (an
    OpenAI-compatible server loads its model itself; a cloud model has nothing to load), so nothing was warmed."""
    with OllamaServer(["qwen3:8b"]) as ollama:
        path = config_file(tmp_path, ollama.url)
        data = yaml.safe_load(path.read_text())
        data["models"]["server"] = {"provider": "openai", "model": "qwen.gguf", "endpoint": "http://127.0.0.1:9"}
        path.write_text(yaml.safe_dump(data))
        out = CliRunner().invoke(app, ["warmup", "qwen", "server", "haiku", "--config", str(path)])
        assert ollama.loaded_models == ["qwen3:8b"]
    assert out.exit_code == 0, out.output
    assert "✓ qwen:" in out.output and "✓ server" not in out.output and "✓ haiku" not in out.output
    assert "not warmed up here: server (its server loads its model itself)" in out.output
    assert "not warmed up: haiku (a cloud model: nothing to load)" in out.output


def test_warmup_reports_a_model_that_cannot_load_and_exits_1(tmp_path: Path) -> None:
    with OllamaServer(["qwen3:8b"]) as ollama, OllamaServer() as dead:
        dead_url = dead.url
    # both servers are stopped now; restart only the good one on its port
    ollama.start()
    try:
        out = CliRunner().invoke(app, ["warmup", "--config", str(config_file(tmp_path, ollama.url, dead_url))])
    finally:
        ollama.stop()
    assert out.exit_code == 1
    assert "✓ qwen:" in out.output
    assert "✗ gone:" in out.output and "connect_error" in out.output


async def test_keep_warm_reloads_models_until_cancelled(tmp_path: Path) -> None:
    with OllamaServer(["qwen3:8b"]) as ollama:
        runtime = open_runtime(config_file(tmp_path, ollama.url))
        assert default_interval(runtime) == 15 * 60  # half of the 30m keep_alive
        assert warmable(runtime.router.providers) == ["qwen"]
        results = []
        task = asyncio.create_task(keep_warm(runtime, 0.05, on_result=results.append))
        try:
            for _ in range(200):
                await asyncio.sleep(0.01)
                if len(results) >= 1:
                    break
            assert ollama.loaded_models == ["qwen3:8b"]
            ollama.unload("qwen3:8b")  # Ollama's keep_alive ran out
            for _ in range(200):
                await asyncio.sleep(0.01)
                if ollama.loaded_models:
                    break
            assert ollama.loaded_models == ["qwen3:8b"]
            assert len(preloads(ollama)) >= 2 and all(r.ok for r in results)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await runtime.aclose()


async def test_keep_warm_loads_an_embedding_model_through_embed(tmp_path: Path, caplog) -> None:
    """An Ollama embedding model in the config (an agent Open WebUI's RAG embeds with) refuses a chat, the empty
    preload too (400 '"nomic-embed-text" does not support chat', Ollama's capability check); Ollama loads it on an
    embed with no input (ollama#6401). Was: every keep-warm round failed with a warning, the model never loaded."""
    path = config_file(tmp_path, "http://127.0.0.1:9")
    data = yaml.safe_load(path.read_text())
    with OllamaServer(["qwen3:8b", "nomic-embed-text"], chat_models=["qwen3:8b"]) as ollama:
        data["models"]["qwen"]["endpoint"] = ollama.url
        data["models"]["embedder"] = {"provider": "ollama", "model": "nomic-embed-text", "endpoint": ollama.url,
                                      "keep_alive": "30m"}
        data["agents"]["rag"] = {"primary": "embedder"}
        path.write_text(yaml.safe_dump(data))
        runtime = open_runtime(path)
        results = []
        task = asyncio.create_task(keep_warm(runtime, 0.05, on_result=results.append))
        try:
            for _ in range(300):
                await asyncio.sleep(0.01)
                if sum(r.model == "embedder" for r in results) >= 3:
                    break
            embedder = [r for r in results if r.model == "embedder"]
            assert len(embedder) >= 3 and all(r.ok for r in embedder), [r.detail for r in embedder]
            assert sorted(ollama.loaded_models) == ["nomic-embed-text:latest", "qwen3:8b"]
            loads = [r.json for r in ollama.requests_to("/api/embed")]
            assert loads and all(b == {"model": "nomic-embed-text", "keep_alive": "30m"} for b in loads)
            # the chat preload is tried once: learned, later rounds go to /api/embed at once
            assert [b["model"] for b in preloads(ollama)].count("nomic-embed-text") == 1
            assert not [r for r in caplog.records if "keep-warm embedder failed" in r.getMessage()]
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await runtime.aclose()


def test_interval_and_duration_parsing() -> None:
    assert [parse_duration(x) for x in ("30m", "1h", "90s", "45", "", None, "-1")] == [1800, 3600, 90, 45, None,
                                                                                       None, None]
    cfg = make_config({"q": {"provider": "ollama"}}, {"a": {"primary": "q"}}, gateway={"keep_alive_interval": 120})
    runtime = open_runtime(config=cfg)
    try:
        assert default_interval(runtime) == 120
    finally:
        runtime.log.close()


@pytest.mark.model
async def test_warm_all_loads_the_embedded_llamacpp_model(default_model: Path) -> None:
    from modelyard.providers import build_provider
    from modelyard.providers.llamacpp import _models

    cfg = make_config({"q": {"provider": "llamacpp", "context": 4096}}, {"a": {"primary": "q"}})
    providers = {"q": build_provider("q", cfg.models["q"])}
    (result,) = await warm_all(providers)
    assert result.ok, result.detail
    assert (str(default_model), 4096, providers["q"].threads, -1) in _models  # type: ignore[attr-defined]
    assert await providers["q"].loaded() is True


def test_install_service_systemd_unit(tmp_path: Path) -> None:
    config = tmp_path / "my config.yaml"
    config.write_text("")
    out = CliRunner().invoke(app, ["install-service", "--platform", "linux", "--dir", str(tmp_path / "units"),
                                   "--config", str(config)])
    assert out.exit_code == 0, out.output
    unit = (tmp_path / "units" / "modelyard.service").read_text()
    lines = unit.splitlines()
    pre = next(line for line in lines if line.startswith("ExecStartPre="))
    start = next(line for line in lines if line.startswith("ExecStart="))
    assert pre.startswith("ExecStartPre=-/") and pre.endswith(f"warmup --config '{config}'")
    assert start.startswith("ExecStart=/") and start.endswith(f"serve --config '{config}'")
    assert "Restart=on-failure" in lines and "WantedBy=default.target" in lines
    assert any(line.startswith("EnvironmentFile=-") and line.endswith(".config/modelyard/env") for line in lines)
    assert f"wrote {tmp_path / 'units' / 'modelyard.service'}" in out.output
    assert "systemctl --user enable --now modelyard.service" in out.output


def test_install_service_launchd_plist(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["install-service", "--platform", "macos", "--dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    path = tmp_path / "dev.modelyard.serve.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "dev.modelyard.serve"
    assert plist["RunAtLoad"] is True
    shell, flag, script = plist["ProgramArguments"]
    assert (shell, flag) == ("/bin/sh", "-c")
    warm, serve = script.index(" warmup"), script.index("; exec ")
    assert warm < serve and script.rstrip().endswith(" serve")
    assert f"launchctl load -w {path}" in out.output


@pytest.mark.parametrize(("platform", "name", "restart"), [
    ("linux", "modelyard.service", ["systemctl --user daemon-reload", "systemctl --user restart modelyard.service"]),
    ("macos", "dev.modelyard.serve.plist", ["launchctl unload {path}", "launchctl load -w {path}"]),
])
def test_install_service_again_with_a_change_says_how_the_running_one_takes_it(tmp_path: Path, platform: str,
                                                                               name: str, restart: list[str]) -> None:
    """Installed, enabled, then installed again for another config: it printed `systemctl --user enable --now` again,
    which starts nothing when the unit already runs (systemd/systemd#31541; ansible-modules-core#1673: "it ignores
    it and keeps the old one"), and `launchctl load` of a loaded agent keeps the old one — the service served the old
    config until the next boot. Now: the restart that applies the new file; the same file again is said unchanged."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("")
    second.write_text("")
    units = tmp_path / "units"

    def install(config: Path) -> str:
        out = CliRunner().invoke(app, ["install-service", "--platform", platform, "--dir", str(units),
                                       "--config", str(config)])
        assert out.exit_code == 0, out.output
        return " ".join(out.output.split())

    assert "enable it with" in install(first)
    path = units / name
    again = install(second)
    assert str(second) in path.read_text()
    assert "it replaced the service file installed before" in again and "enable it with" not in again, again
    for line in restart:
        assert line.format(path=path) in again, again
    same = install(second)
    assert "unchanged" in same and "restart" not in same, same


def test_install_service_dry_run_writes_nothing(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["install-service", "--platform", "linux", "--dir", str(tmp_path), "--dry-run"])
    assert out.exit_code == 0
    assert "[Service]" in out.output and list(tmp_path.iterdir()) == []
    bad = CliRunner().invoke(app, ["install-service", "--platform", "windows", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown platform" in bad.output


def test_install_service_with_a_config_that_does_not_load_says_so(tmp_path: Path) -> None:
    """It wrote the service in silence, exit 0, and serve then failed at every start (Restart=on-failure)."""
    broken = tmp_path / "typo.yaml"
    broken.write_text("models:\n  m:\n    provider: ollama\n    max_concurent: 1\nagents:\n  chat:\n    primary: m\n")
    for args in (["--config", str(broken)], ["--config", str(tmp_path / "missing.yaml")]):
        out = CliRunner().invoke(app, ["install-service", "--platform", "linux", "--dir", str(tmp_path / "u"), *args])
        assert out.exit_code == 0, out.output  # written all the same: the config may come later
        assert "warning:" in out.output and "will fail at every start" in out.output, out.output
    assert "unknown key 'max_concurent'" in out.output or "file not found" in out.output


def _systemd_environment(unit: str) -> dict[str, str]:
    """The Environment= assignments as systemd reads them (double quotes, backslash escapes, %% → %)."""
    out = {}
    for line in unit.splitlines():
        if line.startswith("Environment="):
            for word in shlex.split(line.removeprefix("Environment=")):
                name, _, value = word.partition("=")
                out[name] = value.replace("%%", "%")
    return out


def test_install_service_keeps_the_variables_that_move_config_and_log(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed from a shell with MODELYARD_CONFIG/MODELYARD_DATA_DIR set and XDG_CONFIG_HOME moved, the
    service must use that config and log, and read its keys from the env file beside that config."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / 'data "100%" dir'
    monkeypatch.setenv("MODELYARD_CONFIG", "relative.yaml")
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MODELYARD_STATE", "redis://127.0.0.1:6379/0")
    out = CliRunner().invoke(app, ["install-service", "--platform", "linux", "--dir", str(tmp_path / "units")])
    assert out.exit_code == 0, out.output
    unit = (tmp_path / "units" / "modelyard.service").read_text()
    env = _systemd_environment(unit)
    assert env["MODELYARD_CONFIG"] == str(tmp_path / "relative.yaml")  # absolute: the service's cwd is not ours
    assert env["MODELYARD_DATA_DIR"] == str(data)
    assert env["MODELYARD_STATE"] == "redis://127.0.0.1:6379/0"
    assert env["XDG_CONFIG_HOME"] == str(tmp_path / "xdg")
    keys = tmp_path / "xdg" / "modelyard" / "env"
    assert f"EnvironmentFile=-{keys}" in unit.splitlines()
    assert f"API keys go in {keys}" in " ".join(out.output.split())
    dry = CliRunner().invoke(app, ["install-service", "--platform", "linux", "--dry-run"])
    assert f"# would write {tmp_path / 'xdg' / 'systemd' / 'user' / 'modelyard.service'}" in dry.output

    out = CliRunner().invoke(app, ["install-service", "--platform", "macos", "--dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    plist = plistlib.loads((tmp_path / "dev.modelyard.serve.plist").read_bytes())
    variables = plist["EnvironmentVariables"]
    assert variables["MODELYARD_CONFIG"] == str(tmp_path / "relative.yaml")
    assert variables["MODELYARD_DATA_DIR"] == str(data) and variables["PATH"].startswith("/opt/homebrew/bin")
    assert shlex.quote(str(keys)) in plist["ProgramArguments"][2]


def test_install_service_keeps_a_redis_password_out_of_the_service_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's several-hosts example sets MODELYARD_STATE=redis://:$REDIS_PASSWORD@…; install-service then
    wrote that password into the unit (and the plist) in plain text. It goes in the env file, like API keys."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MODELYARD_STATE", "redis://:s3cret-pw@10.0.0.5:6379/0")
    for platform, written in (("linux", "modelyard.service"), ("macos", "dev.modelyard.serve.plist")):
        out = CliRunner().invoke(app, ["install-service", "--platform", platform, "--dir", str(tmp_path / platform)])
        assert out.exit_code == 0, out.output
        assert "s3cret-pw" not in (tmp_path / platform / written).read_text()
        said = " ".join(out.output.split())
        assert "MODELYARD_STATE carries a password" in said and str(tmp_path / "xdg" / "modelyard" / "env") in said


def test_a_key_only_in_the_service_env_file_is_pointed_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README: API keys go in the env file the service reads. Then `modelyard ask` or `models` in a shell said only
    'environment variable X is not set' beside a key the person had just written down: now it says where it is."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MODELYARD_TEST_ENV_FILE_KEY", raising=False)
    env_file = tmp_path / "xdg" / "modelyard" / "env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("# keys\nexport MODELYARD_TEST_ENV_FILE_KEY=sk-ant-at-home\n")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"haiku": {"provider": "anthropic", "api_key_env": "MODELYARD_TEST_ENV_FILE_KEY"},
                   "other": {"provider": "anthropic", "api_key_env": "MODELYARD_TEST_NOWHERE_KEY"}},
        "agents": {"chat": {"primary": "haiku", "fallbacks": ["other"]}}}))
    shown = CliRunner().invoke(app, ["models", "--no-reach", "--config", str(config)], env={"COLUMNS": "400"})
    assert shown.exit_code == 3, shown.output  # both models unavailable: none can answer
    text = " ".join(shown.output.split())
    assert (f"haiku: unavailable: environment variable MODELYARD_TEST_ENV_FILE_KEY is not set (it is in {env_file}, "
            "which the service reads; this process does not: `set -a; . ") in text, shown.output
    assert ("other: unavailable: environment variable MODELYARD_TEST_NOWHERE_KEY is not set: "
            "`export MODELYARD_TEST_NOWHERE_KEY=<the key>` in the shell that runs modelyard "
            "(models.other.api_key_env names it; modelyard reads no .env file) ") in text + " ", text


def test_install_service_says_the_log_password_in_this_shell_does_not_reach_the_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A team keeps the PostgreSQL password in PGPASSWORD, as the README says; install-service wrote the unit without
    a word, and the service's serve could not forward a row ('password authentication failed') — a newcomer's walk."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PGPASSWORD", "pg-s3cret")
    config = tmp_path / "team.yaml"
    config.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3"), "url": "postgresql://modelyard@10.0.0.5:5432/modelyard"},
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
        "agents": {"chat": {"primary": "m"}}}))
    out = CliRunner().invoke(app, ["install-service", "--config", str(config), "--platform", "linux",
                                   "--dir", str(tmp_path / "unit")])
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert (f"PGPASSWORD (for log.url) is set in this shell, but the service does not get it: add the line "
            f"PGPASSWORD=… to {tmp_path / 'xdg' / 'modelyard' / 'env'}") in said, said
    assert "pg-s3cret" not in said and "pg-s3cret" not in (tmp_path / "unit" / "modelyard.service").read_text()
    monkeypatch.delenv("PGPASSWORD")
    quiet = CliRunner().invoke(app, ["install-service", "--config", str(config), "--platform", "linux",
                                     "--dir", str(tmp_path / "unit2")])
    assert "PGPASSWORD" not in quiet.output


async def test_keep_warm_never_adds_a_request_past_max_concurrent(tmp_path: Path, caplog) -> None:
    """serve's keep-warm sent its preload while both of a model's 2 slots were in use: Ollama saw 3 requests of a
    model configured for 2 (OLLAMA_NUM_PARALLEL-sized; the extra one queues in Ollama, or loads a second runner).
    A model with requests in flight, or one that answered within its keep-alive, is warm: no preload, said at debug
    level; otherwise the preload takes a slot like any request. Under load the fake's peak stays at 2 (it was 3)."""
    path = config_file(tmp_path, "http://127.0.0.1:9")
    data = yaml.safe_load(path.read_text())
    with OllamaServer(["qwen3:8b"], reply_text=" ".join(f"w{i}" for i in range(12)), chunk_interval=0.03) as ollama:
        data["models"]["qwen"].update(endpoint=ollama.url, max_concurrent=2)
        path.write_text(yaml.safe_dump(data))
        runtime = open_runtime(path)
        results: list = []
        caplog.set_level("DEBUG", logger="modelyard.warmup")

        async def ask() -> None:
            stream = runtime.router.stream("chat", ChatRequest(messages=[Message("user", "count")]))
            async for _ in stream:
                pass
            assert stream.record.model == "qwen", stream.record.attempts

        task = asyncio.create_task(keep_warm(runtime, 0.02, on_result=results.append))
        try:
            for _ in range(300):  # the first round preloads (nothing in flight, nothing answered yet)
                await asyncio.sleep(0.01)
                if results:
                    break
            first = len(preloads(ollama))
            assert first >= 1
            for _ in range(3):  # both slots busy, keep-warm rounds every 20 ms meanwhile
                await asyncio.gather(ask(), ask())
            busy_rounds = len(preloads(ollama)) - first
            await asyncio.sleep(0.1)  # answered within its keep-alive (30m): still nothing to preload
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await runtime.aclose()
        assert ollama.max_in_flight_by_model["qwen3:8b"] <= 2, ollama.max_in_flight_by_model
        assert busy_rounds == 0 and len(preloads(ollama)) == first, (first, busy_rounds, len(preloads(ollama)))
    said = [r.getMessage() for r in caplog.records if "keep-warm qwen skipped" in r.getMessage()]
    assert any("in flight" in m for m in said) and any("answered since the last round" in m for m in said), said


async def test_keep_warm_preloads_a_model_idle_past_its_keep_alive_through_a_slot(tmp_path: Path) -> None:
    """An idle model is preloaded again each round (its answers older than its keep-alive): the skip is only for a
    model in use. The preload holds one of its slots meanwhile, so a request then finds one slot fewer."""
    path = config_file(tmp_path, "http://127.0.0.1:9")
    data = yaml.safe_load(path.read_text())
    with OllamaServer(["qwen3:8b"]) as ollama:
        data["models"]["qwen"].update(endpoint=ollama.url, max_concurrent=1, keep_alive="1s")
        path.write_text(yaml.safe_dump(data))
        runtime = open_runtime(path)
        state = runtime.pool["qwen"]
        await state.acquire(1.0)  # a request holds the only slot: the round is skipped, not queued past it
        results: list = []
        task = asyncio.create_task(keep_warm(runtime, 0.05, on_result=results.append))
        try:
            await asyncio.sleep(0.3)
            assert preloads(ollama) == [] and results == []
            await state.release()
            for _ in range(300):
                await asyncio.sleep(0.01)
                if len(results) >= 2:
                    break
            assert len(results) >= 2 and all(r.ok for r in results), results
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await runtime.aclose()
