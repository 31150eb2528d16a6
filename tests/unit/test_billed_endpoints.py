"""A local-server protocol pointed at a paid API is billed: ``provider: openai`` with OpenRouter's endpoint and no
``price`` was a local, free model — ``models`` said "local", ``report`` counted its answers as moved off the cloud and
its spend as $0 (found by a newcomer pass: OpenRouter and Groq are the commonest such setups in peer tools' configs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config.billed import billed_endpoint
from modelyard.config.schema import ModelConfig


@pytest.mark.parametrize("endpoint", [
    "https://openrouter.ai/api/v1", "https://api.groq.com/openai/v1", "https://api.together.xyz/v1",
    "https://API.OpenAI.com/v1/", "https://myorg.openai.azure.com/openai", "https://api.deepseek.com",
    "https://generativelanguage.googleapis.com/v1beta/openai/", "https://ollama.com",
])
def test_a_paid_apis_endpoint_is_billed(endpoint: str) -> None:
    model = ModelConfig(provider="openai", model="m", endpoint=endpoint)
    assert billed_endpoint(endpoint) and model.billed
    assert not model.is_local and model.price_unknown, "no price on a paid API: unknown, never free"
    priced = ModelConfig(provider="openai", model="m", endpoint=endpoint, price={"input": 0.1, "output": 0.4})
    assert not priced.is_local and not priced.price_unknown


@pytest.mark.parametrize("endpoint", [
    "http://127.0.0.1:8080/v1", "http://localhost:11434", "http://gpu-box:8000/v1", "http://10.0.0.5:8000/v1",
    "http://inference.lab.example.com:8000/v1", "https://openrouter.ai.example.com/v1", "http://notopenrouter.ai/v1",
])
def test_a_server_of_ones_own_stays_local(endpoint: str) -> None:
    model = ModelConfig(provider="openai", model="m", endpoint=endpoint)
    assert not billed_endpoint(endpoint) and model.is_local and not model.price_unknown


def test_models_says_cloud_and_no_price_for_openrouter_through_openai(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("models:\n"
                      "  router: {provider: openai, model: meta-llama/llama-3.1-8b-instruct,"
                      " endpoint: 'https://openrouter.ai/api/v1', api_key_env: MODELYARD_TEST_NO_SUCH_KEY}\n"
                      "  box: {provider: openai, model: qwen, endpoint: 'http://127.0.0.1:9/v1'}\n"
                      f"agents:\n  chat: {{primary: router, fallbacks: [box]}}\nlog: {{path: '{tmp_path / 'l.db'}'}}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach", "--json"],
                             env={"MODELYARD_TEST_NO_SUCH_KEY": ""})
    assert out.exit_code == 0, out.output
    got = {m["model"]: m for m in json.loads(out.output)["models"]}
    assert got["router"]["local"] is False and got["router"]["price_known"] is False
    assert got["box"]["local"] is True and got["box"]["price_known"] is True


def test_its_route_line_log_and_stats_say_price_unknown_not_free(tmp_path: Path) -> None:
    """``ask``'s route line, ``log`` and ``stats`` showed an OpenRouter answer without a price as $0.0000."""
    from modelyard.cli.render import route_line
    from modelyard.gateway.responses import route_summary
    from modelyard.ledger.writer import LogWriter
    from modelyard.outcomes import AttemptOutcome, RequestOutcome
    from modelyard.providers.openai import OpenAIProvider
    from modelyard.router.records import Attempt, RequestRecord, new_request_id

    router = ModelConfig(provider="openai", model="m", endpoint="https://openrouter.ai/api/v1")
    assert OpenAIProvider("router", router).billed, "the router marks the provider's attempts from this"
    attempt = Attempt("router", "openai", AttemptOutcome.OK, queue_wait_ms=0.0, billed=True)
    attempt.tokens_in, attempt.tokens_out = 1000, 500
    record = RequestRecord(new_request_id(), "chat", outcome=RequestOutcome.OK, model="router", attempts=[attempt],
                           queue_wait_ms=0.0, total_ms=900.0, tokens_in=1000, tokens_out=500)
    assert "price unknown" in route_line(record) and "$0.0000" not in route_line(record), route_line(record)
    assert "(price unknown)" in route_summary(record)

    log = tmp_path / "log.sqlite3"
    writer = LogWriter(log, local_models=[])
    writer.submit(record)
    writer.close()
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  router: {provider: openai, model: m, endpoint: 'https://openrouter.ai/api/v1'}\n"
                      f"agents:\n  chat: {{primary: router}}\nlog: {{path: '{log}'}}\n")
    for command in ("log", "stats"):
        out = CliRunner().invoke(app, [command, "-c", str(config)], terminal_width=200).output
        rows = [line for line in out.splitlines() if line.startswith(("chat", "router")) or " chat " in line]
        assert rows and all("price unknown" in r and "$0.0000" not in r for r in rows), out


def test_a_billed_answer_under_a_tenth_of_a_cent_is_not_shown_as_free(tmp_path: Path) -> None:
    """A Claude Haiku "hello" (14 tokens in, 5 out at $1/$5 per M: $0.000039) read `$0.0000` in `ask`'s route line and
    in `log` — the very cell of a local model's free answer beside it — while `report` and `money()` never write a
    nonzero sum as $0.0000. It reads $0.000039 now; a local answer stays $0.0000."""
    from modelyard.cli.render import route_line
    from modelyard.ledger.writer import LogWriter
    from modelyard.outcomes import AttemptOutcome, RequestOutcome
    from modelyard.router.records import Attempt, RequestRecord, new_request_id

    def answered(model: str, provider: str, cost: float) -> RequestRecord:
        attempt = Attempt(model, provider, AttemptOutcome.OK, queue_wait_ms=0.0, billed=provider == "anthropic")
        attempt.tokens_in, attempt.tokens_out, attempt.cost_usd = 14, 5, cost
        return RequestRecord(new_request_id(), "writer", outcome=RequestOutcome.OK, model=model, attempts=[attempt],
                             queue_wait_ms=0.0, total_ms=900.0, tokens_in=14, tokens_out=5, cost_usd=cost)

    haiku, local = answered("haiku", "anthropic", 14e-6 + 25e-6), answered("box", "openai", 0.0)
    assert " · $0.000039 · " in route_line(haiku), route_line(haiku)
    assert " · $0.0000 · " in route_line(local), route_line(local)
    log = tmp_path / "log.sqlite3"
    writer = LogWriter(log, local_models=["box"])
    writer.submit(haiku)
    writer.submit(local)
    writer.close()
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  haiku: {provider: anthropic, model: claude-haiku-4-5, api_key_env: NO_SUCH_KEY,"
                      " price: {input: 1, output: 5}}\n  box: {provider: openai, endpoint: 'http://127.0.0.1:9/v1'}\n"
                      f"agents:\n  writer: {{primary: haiku, fallbacks: [box]}}\nlog: {{path: '{log}'}}\n")
    out = CliRunner().invoke(app, ["log", "-c", str(config)], terminal_width=200).output
    rows = {line.split()[3]: line for line in out.splitlines() if " writer " in line}
    assert "$0.000039" in rows["haiku"] and "$0.0000 " in rows["box"] + " ", out
