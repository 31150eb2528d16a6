"""The bench against protocol-faithful fakes whose behaviour is known, so its figures can be checked.

- steady (Ollama, 4 slots): answers everything right, structured tool calls;
- nojson (OpenAI-compatible, 1 slot): right, except it answers JSON tasks in prose;
- textcalls (Anthropic, priced, 2 slots): right, except it writes tool calls as text;
- slow (a second Ollama, 1 slot): right, but sends one chunk every 50 ms.
A person would make steady the primary everywhere; keep nojson away from the JSON-heavy utility agent
and textcalls away from the tool-heavy engineer; and put slow after the fast local models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard.bench.recommend import recommend
from modelyard.bench.runner import BenchRunner, RunOutcome
from modelyard.bench.score import score
from modelyard.bench.suite import parse_suite
from modelyard.config import load_config
from modelyard.ledger import connect
from modelyard.ledger.bench_runs import runs, save_run
from modelyard.ledger.report import build_report, days_period
from modelyard.providers import build_provider
from tests.fakes import AnthropicServer, Fault, OllamaServer, OpenAIServer
from tests.fakes.chat import count_words, split_pieces

SUITE = """
name: fakes
k: 3
agents:
  chat:
    tasks:
      - id: greet
        prompt: "Please greet me."
        checks: [{regex: "(?i)hello"}]
  utility:
    tasks:
      - id: person-json
        prompt: "Extract the person as JSON: Alice Smith is 30."
        checks:
          - json_schema: {type: object, required: [name, age], properties: {age: {const: 30}}}
      - id: city-json
        prompt: "Extract the city as JSON: Paris, France."
        checks:
          - json_schema: {type: object, required: [city]}
      - id: upper
        prompt: "Upper case: hello world"
        checks: [{equals: HELLO WORLD, case_sensitive: true}]
  engineer:
    tasks:
      - id: read-app
        prompt: "Read src/app.py and summarise it."
        tools: &tools
          - name: read_file
            parameters: {type: object, properties: {path: {type: string}}, required: [path]}
        checks: [{tool_call: {name: read_file, arguments: {path: {regex: "app\\\\.py$"}}}}]
      - id: open-app
        prompt: "Open the file src/app.py."
        tools: *tools
        checks: [{tool_call: {name: read_file, arguments: {path: src/app.py}}}]
      - id: is-even
        prompt: "Write is_even in Python."
        checks: [{regex: "def is_even"}]
"""

ANSWERS = {
    "greet": "Hello there, nice to meet you!",
    "Alice": '{"name": "Alice Smith", "age": 30}',
    "Paris": '{"city": "Paris", "country": "France"}',
    "Upper": "HELLO WORLD",
    "is_even": "def is_even(n):\n    return n % 2 == 0",
}
PROSE = {"Alice": "Alice Smith is 30 years old.", "Paris": "The city is Paris, in France."}
TEXT_CALL = '```json\n{"name": "read_file", "arguments": {"path": "src/app.py"}}\n```'


def last_user(body: dict[str, Any]) -> str:
    message = [m for m in body["messages"] if m.get("role") == "user"][-1]
    content = message["content"]
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def answer(prompt: str, *, prose_json: bool = False) -> str:
    for key, text in ANSWERS.items():
        if key in prompt:
            return PROSE[key] if prose_json and key in PROSE else text
    return "I do not know."


def text_caller(body: dict[str, Any]) -> str:
    return TEXT_CALL if body.get("tools") else answer(last_user(body))


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "test-key")
    tool_args = {"path": "src/app.py"}
    steady = OllamaServer(["steady"], reply_text=lambda b: answer(last_user(b)), tool_arguments=tool_args)
    nojson = OpenAIServer(["nojson"], reply_text=lambda b: answer(last_user(b), prose_json=True),
                          tool_arguments=tool_args)
    textcalls = AnthropicServer(reply_text=text_caller, answer_tools=False)
    slow = OllamaServer(["slow"], reply_text=lambda b: answer(last_user(b)), tool_arguments=tool_args,
                        chunk_interval=0.05)
    with steady, nojson, textcalls, slow:
        yield {"steady": steady, "nojson": nojson, "textcalls": textcalls, "slow": slow}


def write_config(tmp_path: Path, fakes: dict[str, Any], **extra_models: dict[str, Any]) -> Path:
    data = {
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "defaults": {"retries": {"attempts": 1, "backoff": 0.01, "max_wait": 1}},
        "models": {
            "steady": {"provider": "ollama", "endpoint": fakes["steady"].url, "max_concurrent": 4},
            "nojson": {"provider": "openai", "endpoint": fakes["nojson"].url, "max_concurrent": 1},
            "textcalls": {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": fakes["textcalls"].url,
                          "api_key_env": "FAKE_ANTHROPIC_KEY", "max_concurrent": 2,
                          "price": {"input": 1.0, "output": 5.0}},
            "slow": {"provider": "ollama", "endpoint": fakes["slow"].url, "max_concurrent": 1},
            **extra_models,
        },
        "agents": {
            # today's chains are deliberately poor, so the recommendation has something to change
            "chat": {"primary": "slow", "fallbacks": ["steady"], "description": "Talks with the user."},
            "utility": {"primary": "nojson", "max_tokens": 64},
            "engineer": {"primary": "textcalls", "fallbacks": ["nojson"], "system": "You write code."},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text("# my modelyard config\n" + yaml.safe_dump(data, sort_keys=False))
    return path


async def run_bench(config_path: Path, models: list[str], k: int = 3, suite_text: str = SUITE):
    cfg = load_config(config_path)
    suite = parse_suite(suite_text, "fakes.yaml")
    judge = [suite.spec.judge.model] if suite.spec.judge else []
    providers = {m: build_provider(m, cfg.models[m]) for m in [*models, *judge]}
    conn = connect(tmp := config_path.parent / "log.sqlite3")
    assert tmp.exists()
    runner = BenchRunner(cfg, suite, models=models, agents=list(suite.spec.agents), k=k, providers=providers,
                         on_result=lambda r: save_run(conn, r.row()))
    try:
        result = await runner.run()
    finally:
        for p in providers.values():
            await p.aclose()
    return cfg, result, conn


async def test_recommendation_and_rates_match_the_fakes(fakes, tmp_path: Path) -> None:
    models = ["steady", "nojson", "textcalls", "slow"]
    cfg, result, conn = await run_bench(write_config(tmp_path, fakes), models)
    assert not result.interrupted and not result.skipped
    assert len(result.results) == 7 * 3 * 4
    assert all(r.outcome is RunOutcome.OK for r in result.results)
    scores = {(s.agent, s.model): s for s in score(result.results, 3)}

    # quality: exactly the known failure rates
    for model in ("steady", "slow"):
        for agent in ("chat", "utility", "engineer"):
            assert scores[(agent, model)].pass_at_1 == 1.0 and scores[(agent, model)].pass_hat_k == 1.0
    nojson_utility = scores[("utility", "nojson")]
    assert nojson_utility.pass_at_1 == pytest.approx(1 / 3) and nojson_utility.pass_hat_k == pytest.approx(1 / 3)
    assert nojson_utility.failing["json_schema"] == 6
    assert scores[("engineer", "nojson")].pass_at_1 == 1.0
    text_engineer = scores[("engineer", "textcalls")]
    assert text_engineer.pass_at_1 == pytest.approx(1 / 3)
    assert text_engineer.tool_runs == 6 and text_engineer.text_call_rate == 1.0 and text_engineer.structured_rate == 0
    assert scores[("engineer", "steady")].structured_rate == 1.0
    assert scores[("engineer", "steady")].text_call_rate == 0.0
    assert scores[("utility", "textcalls")].pass_at_1 == 1.0

    # speed: the slow fake sends a chunk every 50 ms, so at most 20 tokens/s
    slow_rate = scores[("chat", "slow")].tokens_per_s_p50
    assert slow_rate is not None and 5 <= slow_rate <= 21
    # steady states Ollama's eval timings of 10 ms a token: 100 tok/s, the server's own figure, which bench takes
    assert scores[("chat", "steady")].tokens_per_s_p50 == pytest.approx(100) and slow_rate < 100 / 4
    for agent in ("chat", "utility", "engineer"):
        assert scores[(agent, "steady")].passing_per_min > 5 * scores[(agent, "slow")].passing_per_min

    # cost: the Anthropic fake counts input words and output pieces; $1/M in, $5/M out
    expected = 0.0
    for req in fakes["textcalls"].requests_to("/v1/messages"):
        body = req.json
        reply = text_caller(body)
        tokens_in = max(count_words(body["messages"]) + count_words(body.get("system") or ""), 1)
        expected += (tokens_in * 1.0 + len(split_pieces(reply)) * 5.0) / 1e6
    spent = sum(s.cost_usd for (a, m), s in scores.items() if m == "textcalls")
    assert spent == pytest.approx(expected, rel=1e-9) and spent > 0
    assert scores[("chat", "textcalls")].cost_per_pass == pytest.approx(scores[("chat", "textcalls")].cost_usd / 3)
    assert scores[("chat", "steady")].cost_per_pass == 0

    recs = {r.agent: r for r in recommend(list(scores.values()), cfg, measured=models)}
    assert recs["utility"].chain == ["steady", "slow", "textcalls"]
    assert "json_schema failed in 6/9 runs" in recs["utility"].excluded["nojson"]
    assert recs["engineer"].chain[0] == "steady" and recs["engineer"].chain[-1] == "slow"
    assert set(recs["engineer"].chain) == {"steady", "nojson", "slow"}
    assert "writes tool calls as text in 100%" in recs["engineer"].excluded["textcalls"]
    assert recs["chat"].chain[0] == "steady" and recs["chat"].chain[-1] == "textcalls"
    assert all(r.changed for r in recs.values())

    # every run is in the routing log, one row each, with its checks
    rows = runs(conn, result.run_id)
    assert len(rows) == len(result.results)
    failed = [r for r in rows if r["model"] == "nojson" and r["task"] == "person-json"]
    assert len(failed) == 3 and not any(r["passed"] for r in failed)
    assert json.loads(failed[0]["checks"])[0]["check"] == "json_schema"

    # and `modelyard report` cites them: utility's primary nojson passed 3/9, steady 9/9
    cited = {r.subject: r for r in build_report(conn, cfg, days_period(1)).recommendations if r.kind == "bench"}
    assert set(cited) == {"utility", "engineer"}  # chat's primary (slow) passes everything: slow is no reason
    message = cited["utility"].message
    assert "its primary nojson passed 3/9 of its task runs; better: slow 9/9, steady 9/9, textcalls 9/9" in message
    assert cited["engineer"].numbers["primary_passed"] == (3, 9)


async def test_the_agent_settings_reach_the_model(fakes, tmp_path: Path) -> None:
    await run_bench(write_config(tmp_path, fakes), ["nojson"], k=1)
    bodies = [r.json for r in fakes["nojson"].requests_to("/v1/chat/completions")]
    engineer = next(b for b in bodies if "is_even" in last_user(b))
    assert engineer["messages"][0] == {"role": "system", "content": "You write code."}
    chat = next(b for b in bodies if "greet" in last_user(b))
    assert chat["messages"][0]["content"] == "You are the chat agent. Talks with the user."
    utility = next(b for b in bodies if "Upper" in last_user(b))
    assert utility["max_tokens"] == 64 or utility.get("max_completion_tokens") == 64
    tools = [b for b in bodies if "src/app.py" in last_user(b)]
    assert tools and all(b["tools"][0]["function"]["name"] == "read_file" for b in tools)


async def test_retries_and_errors_are_counted_by_reason(fakes, tmp_path: Path) -> None:
    fakes["steady"].set_default(Fault.status(500))  # down: every attempt fails
    fakes["nojson"].push(Fault.status(500), Fault.ok(), times=7)  # every run fails once, then answers
    cfg, result, _ = await run_bench(write_config(tmp_path, fakes), ["steady", "nojson"], k=1)
    scores = {(s.agent, s.model): s for s in score(result.results, 1)}
    down = scores[("utility", "steady")]
    assert down.runs == 3 and down.answered == 0 and down.passes == 0
    assert down.errors == {"server_error": 3} and down.retries == {"server_error": 3}
    flaky = scores[("chat", "nojson")]
    assert flaky.passes == 1 and flaky.errors == {} and flaky.retries == {"server_error": 1}
    recs = {r.agent: r for r in recommend(list(scores.values()), cfg)}
    assert "steady" not in recs["chat"].chain and "server_error 1/1" in recs["chat"].excluded["steady"]


async def test_a_model_without_credentials_is_not_measured_and_stays_in_the_chain(fakes, tmp_path: Path) -> None:
    extra = {"cloud": {"provider": "anthropic", "endpoint": fakes["textcalls"].url, "api_key_env": "NO_SUCH_KEY_X"}}
    path = write_config(tmp_path, fakes, **extra)
    text = path.read_text().replace("fallbacks:\n    - steady", "fallbacks:\n    - steady\n    - cloud")
    path.write_text(text)
    cfg, result, _ = await run_bench(path, ["steady", "cloud"], k=1)
    assert "NO_SUCH_KEY_X" in result.skipped["cloud"]
    assert {r.model for r in result.results} == {"steady"}
    recs = {r.agent: r for r in recommend(score(result.results, 1), cfg, measured=["steady"])}
    # chat's chain is slow → steady → cloud: only steady was measured, so nothing says it beats the others
    assert recs["chat"].chain == ["slow", "steady", "cloud"] and recs["chat"].kept == ["slow", "cloud"]
    assert not recs["chat"].changed
    # engineer's chain is textcalls → nojson, neither measured: steady, recommended, goes after them
    assert recs["engineer"].chain == ["textcalls", "nojson", "steady"] and recs["engineer"].changed


async def test_judge_checks_are_marked_as_judged(fakes, tmp_path: Path) -> None:
    judge = OpenAIServer(["judge"], reply_text=lambda b: '{"pass": ' + (
        "true" if "Hello" in last_user(b) else "false") + ', "reason": "ok"}')
    with judge:
        path = write_config(tmp_path, fakes, judge={"provider": "openai", "endpoint": judge.url})
        suite = ("judge: {model: judge}\n" + SUITE).replace(
            'checks: [{regex: "(?i)hello"}]', 'checks: [{regex: "(?i)hello"}, {judge: "A warm greeting."}]')
        cfg, result, _ = await run_bench(path, ["steady"], k=2, suite_text=suite)
        greet = [r for r in result.results if r.task == "greet"]
        assert len(greet) == 2 and all(r.passed and r.judged for r in greet)
        assert greet[0].checks[-1].judged and greet[0].checks[-1].label == "judge"
        prompts = [last_user(r.json) for r in judge.requests_to("/v1/chat/completions")]
        assert len(prompts) == 2 and "A warm greeting." in prompts[0] and "Hello there" in prompts[0]
        assert all(not r.judged for r in result.results if r.task != "greet")


async def test_agent_tools_offers_the_configured_tools(fakes, tmp_path: Path) -> None:
    path = write_config(tmp_path, fakes)
    text = path.read_text().replace("    system: You write code.\n",
                                    f"    system: You write code.\n    tools: {{files: read, workspace: {tmp_path}}}\n")
    path.write_text(text)
    suite = """
agents:
  engineer:
    tasks:
      - id: configured-tools
        prompt: "Read src/app.py."
        agent_tools: true
        checks: [{tool_call: {name: read_file, arguments: {path: src/app.py}}}]
"""
    cfg, result, _ = await run_bench(path, ["steady"], k=1, suite_text=suite)
    assert [r.passed for r in result.results] == [True]
    offered = [t["function"]["name"] for t in fakes["steady"].requests_to("/api/chat")[-1].json["tools"]]
    assert offered[:2] == ["read_file", "list_files"]
