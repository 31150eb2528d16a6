"""`modelyard probe` and `modelyard check` against loopback fakes of Ollama, OpenAI-compatible and
Anthropic servers, and (one test) against the real embedded model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from tests.fakes import AnthropicServer, Fault, OllamaServer, OpenAIServer
from tests.helpers import make_config
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config import load_config
from modelyard.ledger import connect
from modelyard.ops import probe_store
from modelyard.ops.check import check_config
from modelyard.ops.probe import a_or_an, probe_model
from modelyard.providers import build_provider

MODEL_INFO = {
    "general.architecture": "qwen2",
    "qwen2.context_length": 32768,
    "qwen2.block_count": 28,
    "qwen2.attention.head_count": 28,
    "qwen2.attention.head_count_kv": 4,
    "qwen2.embedding_length": 3584,
}


def reply(body: dict[str, Any]) -> str:
    """JSON when JSON was asked for (Ollama `format`, OpenAI `response_format`), else a count."""
    if body.get("format") == "json" or body.get("response_format"):
        return '{"name": "Alice", "age": 30}'
    return "1 2 3 4 5 6 7 8 9 10"


class ShowingOllama(OllamaServer):
    """The Ollama fake plus `/api/show` (model_info as Ollama returns it)."""

    def routes(self) -> list[BaseRoute]:
        return [*super().routes(), Route("/api/show", self._show, methods=["POST"])]

    async def _show(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("model") != "qwen-tools:latest":
            return JSONResponse({"error": f"model '{body.get('model')}' not found"}, status_code=404)
        return JSONResponse({"modelfile": "", "details": {}, "model_info": MODEL_INFO})


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "test-key")
    ollama = ShowingOllama(["qwen-tools:latest"], tool_arguments={"city": "Paris"}, reply_text=reply)
    openai = OpenAIServer(["coder"], reply_text=reply)
    openai.set_default(Fault.tool_call_as_text())
    anthropic = AnthropicServer(tool_arguments={"city": "Paris"}, reply_text=reply)
    with ollama, openai, anthropic:
        yield ollama, openai, anthropic


def write_config(tmp_path: Path, ollama: OllamaServer, openai: OpenAIServer, anthropic: AnthropicServer,
                 tools_agent_primary: str = "coder") -> Path:
    data = {
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {
            "qwen": {"provider": "ollama", "model": "qwen-tools:latest", "endpoint": ollama.url},
            "coder": {"provider": "openai", "model": "coder", "endpoint": openai.url},
            "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": anthropic.url,
                      "api_key_env": "FAKE_ANTHROPIC_KEY", "price": {"input": 1, "output": 5}},
            "sonnet": {"provider": "anthropic", "model": "claude-sonnet", "endpoint": anthropic.url,
                       "api_key_env": "NOT_SET_ANYWHERE_KEY"},
        },
        "agents": {
            "engineer": {"primary": tools_agent_primary,
                         "fallbacks": ["qwen" if tools_agent_primary != "qwen" else "coder"],
                         "tools": {"files": "read", "workspace": str(tmp_path)}},
            "chat": {"primary": "qwen"},
            "cloudy": {"primary": "sonnet"},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_ollama_model_passes_every_check(servers, tmp_path: Path) -> None:
    ollama, openai, anthropic = servers
    cfg = load_config(write_config(tmp_path, ollama, openai, anthropic))
    provider = build_provider("qwen", cfg.models["qwen"])
    try:
        result = await probe_model("qwen", provider, cfg, timeout=10)
    finally:
        await provider.aclose()
    status = {name: c.status for name, c in result.checks.items()}
    assert status == {"reachable": "pass", "tools": "pass", "thinking": "pass", "json": "pass",
                      "ttft_ms": "pass", "tokens_per_s": "pass", "context": "pass"}
    assert result.checks["tools"].detail == "structured call get_weather(city='Paris')"
    assert result.checks["context"].value == 32768
    assert result.checks["tokens_per_s"].value > 0
    # the fake counts the speed prompt's 8 words as its tokens: "an 8-token prompt", not "a 8-token prompt"
    assert result.checks["ttft_ms"].detail == "median of 3 runs of an 8-token prompt"
    # the tool probe really offered a tool, and the thinking probe really asked for thinking
    chats = [r.json for r in ollama.requests_to("/api/chat")]
    assert any(b.get("tools", [{}])[0].get("function", {}).get("name") == "get_weather" for b in chats)
    assert any(b.get("think") is True for b in chats)
    assert sum(1 for b in chats if b.get("format") == "json") == 1
    assert len([b for b in chats if "Count from 1 to 20" in b["messages"][0]["content"]]) == 3


async def test_tool_call_written_as_text_is_text_only_not_a_pass(servers, tmp_path: Path) -> None:
    ollama, openai, anthropic = servers
    cfg = load_config(write_config(tmp_path, ollama, openai, anthropic))
    provider = build_provider("coder", cfg.models["coder"])
    try:
        result = await probe_model("coder", provider, cfg, checks=("reachable", "tools", "context"), timeout=10)
    finally:
        await provider.aclose()
    tools = result.checks["tools"]
    assert (tools.status, tools.ok) == ("text-only", False)
    assert "plain-text JSON" in tools.detail
    # the fake's /v1/models has no metadata: context stays unknown rather than guessed
    assert result.checks["context"].status == "unknown"


async def test_anthropic_structured_tools_and_thinking(servers, tmp_path: Path) -> None:
    ollama, openai, anthropic = servers
    cfg = load_config(write_config(tmp_path, ollama, openai, anthropic))
    provider = build_provider("haiku", cfg.models["haiku"])
    try:
        result = await probe_model("haiku", provider, cfg, timeout=10)
    finally:
        await provider.aclose()
    assert result.checks["tools"].status == "pass"
    assert result.checks["thinking"].status == "pass"
    assert result.checks["context"].status == "unknown"
    thinking_bodies = [r.json for r in anthropic.requests_to("/v1/messages") if r.json.get("thinking")]
    assert thinking_bodies and thinking_bodies[0]["thinking"]["type"] == "enabled"


def test_cli_probe_stores_results_and_check_flags_the_tool_agent(servers, tmp_path: Path) -> None:
    ollama, openai, anthropic = servers
    config = write_config(tmp_path, ollama, openai, anthropic)
    runner = CliRunner()
    out = runner.invoke(app, ["probe", "--config", str(config), "--json", "--timeout", "10"])
    assert out.exit_code == 0, out.output
    results = {r["model"]: r for r in json.loads(out.output)}
    assert results["coder"]["checks"]["tools"]["status"] == "text-only"
    assert results["qwen"]["checks"]["tools"]["status"] == "pass"
    assert results["sonnet"]["checks"]["reachable"]["detail"] == (
        "environment variable NOT_SET_ANYWHERE_KEY is not set: `export NOT_SET_ANYWHERE_KEY=<the key>` in the shell "
        "that runs modelyard (models.sonnet.api_key_env names it; modelyard reads no .env file)")
    assert results["sonnet"]["checks"]["tools"]["status"] == "skipped"

    stored = probe_store.latest(connect(tmp_path / "log.sqlite3"))
    assert sorted(stored) == ["coder", "haiku", "qwen", "sonnet"]
    assert stored["coder"].checks["tools"].status == "text-only"
    assert stored["qwen"].checks["context"].value == 32768

    table = runner.invoke(app, ["probe", "coder", "--config", str(config), "--only", "reachable,tools"],
                          env={"COLUMNS": "80"})
    assert table.exit_code == 0
    # one line per model, each finding whole; the notes whole under the table (a ninth column squeezed them to
    # ten characters: a model's row folded over thirty lines)
    [row] = [line.split() for line in table.output.splitlines() if line.startswith("coder")]
    assert row[:3] == ["coder", "pass", "text-only"], table.output
    assert "  coder: tools: answers tool requests with plain-text JSON instead of a structured tool call" \
        in table.output.splitlines(), table.output

    checked = runner.invoke(app, ["check", "--config", str(config), "--json"])
    assert checked.exit_code == 1
    findings = json.loads(checked.output)["findings"]
    errors = [f for f in findings if f["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["agent"] == "engineer" and errors[0]["model"] == "coder"
    assert "answers tool requests with plain-text JSON" in errors[0]["message"]
    # suggests a model that passed, preferring the one already in the agent's chain
    assert errors[0]["suggestion"].startswith("use 'qwen' as primary")
    unavailable = [f for f in findings if f["agent"] == "cloudy"]
    assert unavailable and unavailable[0]["level"] == "warning"
    assert "no model in its chain is available" in unavailable[0]["message"]

    human = runner.invoke(app, ["check", "--config", str(config)])
    assert human.exit_code == 1
    assert "error:" in human.output and "1 error(s)" in human.output

    fixed = write_config(tmp_path, ollama, openai, anthropic, tools_agent_primary="qwen")
    fixed_out = runner.invoke(app, ["check", "--config", str(fixed), "--json"])
    assert fixed_out.exit_code == 0
    warnings = [f["message"] for f in json.loads(fixed_out.output)["findings"] if f["agent"] == "engineer"]
    assert warnings == ["agent 'engineer': fallback 'coder' answers tool requests with plain-text JSON instead of a "
                        "structured tool call; requests that fall back to it lose their tools"]

    speed = runner.invoke(app, ["probe", "qwen", "--config", str(config), "--only", "speed"], terminal_width=200)
    assert speed.exit_code == 0, speed.output
    # the figures say what they are of: a TTFT of a ~20-token prompt is not the TTFT of an agent's 3,000-token one
    assert "TTFT and tok/s: median of 3 runs of a" in speed.output and "-token prompt" in speed.output, speed.output
    assert "prefill grows with its length" in " ".join(speed.output.split())


@pytest.mark.parametrize(("number", "article"), [
    (8, "an"), (11, "an"), (18, "an"), (80, "an"), (86, "an"), (800, "an"), (8_000, "an"), (11_000, "an"),
    (18_500, "an"), (1, "a"), (7, "a"), (20, "a"), (108, "a"), (180, "a"), (1_100, "a"), (3_000, "a"), (0, "a"),
])
def test_the_article_before_a_number_follows_how_it_is_said(number: int, article: str) -> None:
    assert a_or_an(number) == article


def test_check_without_probes_warns_instead_of_guessing(tmp_path: Path) -> None:
    nowhere = SimpleNamespace(url="http://127.0.0.1:9")
    cfg = load_config(write_config(tmp_path, nowhere, nowhere, nowhere))  # type: ignore[arg-type]
    findings = check_config(cfg, {})
    engineer = [f for f in findings if f.agent == "engineer"]
    assert [f.level for f in engineer] == ["warning"]
    assert "never been tool-probed" in engineer[0].message


def test_check_warns_of_llamacpp_settings_on_another_provider() -> None:
    """``threads:`` on an Ollama model did nothing, silently: check says so, and nothing for llamacpp."""
    cfg = make_config({"o": {"provider": "ollama", "model": "qwen3:8b", "threads": 8, "gpu_layers": 0},
                       "l": {"provider": "llamacpp", "threads": 1, "gpu_layers": 0},
                       "c": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
                      {"a": {"primary": "o", "fallbacks": ["l", "c"]}})
    mine = [f for f in check_config(cfg, {}) if "only a model run in this process" in f.message]
    assert [(f.level, f.model) for f in mine] == [("warning", "o")]
    assert "threads, gpu_layers" in mine[0].message and "num_thread" in mine[0].suggestion


@pytest.mark.model
async def test_real_embedded_model_writes_tool_calls_as_text(default_model: Path, tmp_path: Path) -> None:
    from modelyard.paths import embedded_default_config

    cfg = load_config(embedded_default_config())
    provider = build_provider("qwen-coder-0.5b", cfg.models["qwen-coder-0.5b"])
    result = await probe_model("qwen-coder-0.5b", provider, cfg, checks=("reachable", "tools", "context"),
                               timeout=120)
    assert result.checks["reachable"].status == "pass"
    tools = result.checks["tools"]
    assert tools.ok is False and tools.status in ("text-only", "fail"), tools
    assert tools.status == "text-only", tools.detail  # what this model does: a fenced JSON call in the text
    assert result.checks["context"].value == 32768  # Qwen2.5-Coder's trained context, from the GGUF


async def test_a_model_without_its_key_is_not_tried_rather_than_failed(tmp_path: Path) -> None:
    """The table said 'reachable: fail' for a model skipped for its missing key, and exit 0 (README: a
    finding, not an error): the cell now says it was not tried."""
    from modelyard.cli.ops_cmds import probe_table
    from modelyard.config import parse_config

    cfg = parse_config("models:\n  cloud:\n    provider: anthropic\n    api_key_env: MODELYARD_TEST_NO_KEY_HERE\n"
                       "agents:\n  chat:\n    primary: cloud\n", "cfg.yaml")
    result = await probe_model("cloud", build_provider("cloud", cfg.models["cloud"]), cfg)
    assert not result.errors
    [row] = probe_table([result]).columns[1].cells
    assert "not tried" in str(row) and "fail" not in str(row)
    # and `check` does not count it among the models measured ('probes: cloud 11-28 22:16', 0 warnings)
    from modelyard.ops.check import check_config

    [finding] = [f for f in check_config(cfg, {"cloud": result}) if f.model == "cloud"]
    assert finding.level == "warning" and finding.message.startswith("model 'cloud' was not tried when last probed")
    assert "MODELYARD_TEST_NO_KEY_HERE is not set: `export MODELYARD_TEST_NO_KEY_HERE=<the key>`"  in finding.message
    assert "modelyard reads no .env file); nothing about it was measured" in finding.message


def test_check_never_prints_an_endpoints_credentials() -> None:
    """`check`'s "not on its server" advice printed the model's endpoint as written, so a password in it
    (``http://user:pw@host``) or Gemini's ``?key=`` reached the terminal and any pasted bug report."""
    from modelyard.ops.check import Missing

    cfg = make_config({"o": {"provider": "ollama", "model": "qwen3:8b",
                             "endpoint": "http://admin:s3cr3t-pw@10.0.0.5:11434"},
                       "g": {"provider": "openai", "model": "gemini-2.5-flash", "api_key_env": "NO_SUCH_KEY_HERE",
                             "endpoint": "https://generativelanguage.googleapis.com/v1beta/openai?key=AIzaSECRET"}},
                      {"a": {"primary": "o", "fallbacks": ["g"]}})
    missing = {"o": Missing("model_missing: not found", True), "g": Missing("model_missing: not found", True)}
    found = [f for f in check_config(cfg, {}, missing) if "not on its server" in f.message]
    assert sorted(f.model for f in found) == ["g", "o"]
    text = " ".join(f"{f.message} {f.suggestion}" for f in found)
    assert "s3cr3t-pw" not in text and "AIzaSECRET" not in text, text
    assert "10.0.0.5:11434" in text and "generativelanguage.googleapis.com" in text  # still says which server
