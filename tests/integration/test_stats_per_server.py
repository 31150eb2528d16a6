"""`stats`, `report` (tables, `--json`, recommendations, chart) per model AND server: one model name served by two
Ollama boxes is two rows, so the slow, failing box no longer hides behind the healthy one.

The setup is the common multi-host one: ``qwen2.5:7b`` pulled on two Ollama servers, each host's config naming it
``qwen2.5:7b``, every host logging to one routing log. Users of peer tools ask for exactly this breakdown: Open
WebUI users balancing "two ollama instances, each serving the same model" need "to know which server a request was
routed to" (open-webui/open-webui#14117); LiteLLM shows exceptions and latency "by model deployments"
(BerriAI/litellm#3373), and its metrics keyed by deployment alone listed "the same model … multiple times" with no
way to tell which name it served (BerriAI/litellm#30748) — so a row here is the name *and* the server. LiteLLM's
budgets are per provider, model or deployment (docs.litellm.ai/docs/proxy/provider_budget_routing); modelyard's
spend caps stay per name (queries.spend_since says why). The servers are written as modelyard keeps them
(``attempts.backend``: provider, redacted endpoint, model id); rows from before that column are NULL.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from tests.pg import LogBackend
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config import load_config
from modelyard.errors import Reason
from modelyard.ledger import queries
from modelyard.ledger.report import build_report, days_period
from modelyard.ops.report_chart import build_figure
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord

QWEN = "qwen2.5:7b"
GPU_A = f"ollama http://gpu-a:11434 {QWEN}"
GPU_B = f"ollama http://gpu-b:11434 {QWEN}"
runner = CliRunner()


def _config(tmp_path: Path, log_backend: LogBackend, host: str) -> Path:
    """The config of the host whose Ollama is ``host``: chat on qwen first, writer on the cloud first."""
    path = tmp_path / f"{host}.yaml"
    path.write_text(yaml.safe_dump({
        "log": log_backend.log_config(),
        "models": {QWEN: {"provider": "ollama", "model": QWEN, "endpoint": f"http://{host}:11434"},
                   "cloud": {"provider": "openai", "api_key_env": "NO_KEY_HERE", "price": {"input": 1, "output": 2}}},
        "agents": {"chat": {"primary": QWEN, "fallbacks": ["cloud"]},
                   "writer": {"primary": "cloud", "fallbacks": [QWEN]}},
        "defaults": {"timeouts": {"queue": 10}}}))
    return path


def _fill(log_backend: LogBackend) -> None:
    """gpu-a answers fast; gpu-b is slow, queues near its 10 s bound and refuses 12 connections; before servers
    were logged, 12 attempts on some qwen timed out in the queue. gpu-b's qwen answered 6 of writer's requests
    after the cloud failed, all rated good."""
    now = time.time() - 600
    a = log_backend.writer(local_models=[QWEN], backends={QWEN: GPU_A})
    for i in range(30):
        a.submit(RequestRecord(f"a{i}", "chat", ts=now + i, outcome=RequestOutcome.OK, model=QWEN, total_ms=800,
                               attempts=[Attempt(QWEN, "ollama", Outcome.OK, started_at=now + i, queue_wait_ms=5.0)]))
    a.close()
    b = log_backend.writer(local_models=[QWEN], backends={QWEN: GPU_B})
    for i in range(10):
        b.submit(RequestRecord(f"b{i}", "chat", ts=now + 100 + i, outcome=RequestOutcome.OK, model=QWEN,
                               total_ms=9000, attempts=[Attempt(QWEN, "ollama", Outcome.OK, started_at=now + 100 + i,
                                                                queue_wait_ms=9000.0)]))
    for i in range(12):
        ts = now + 200 + i
        b.submit(RequestRecord(f"bf{i}", "chat", ts=ts, outcome=RequestOutcome.FALLBACK, model="cloud", total_ms=700,
                               attempts=[Attempt(QWEN, "ollama", Outcome.FALLBACK, Reason.CONNECT_ERROR,
                                                 "connection refused", started_at=ts, queue_wait_ms=9500.0),
                                         Attempt("cloud", "openai", Outcome.OK, started_at=ts, cost_usd=0.01)]))
    for i in range(6):
        ts = now + 300 + i
        b.submit(RequestRecord(f"bw{i}", "writer", ts=ts, outcome=RequestOutcome.FALLBACK, model=QWEN, total_ms=9000,
                               attempts=[Attempt("cloud", "openai", Outcome.FALLBACK, Reason.SERVER_ERROR, "HTTP 500",
                                                 started_at=ts),
                                         Attempt(QWEN, "ollama", Outcome.OK, started_at=ts, queue_wait_ms=9000.0)]))
    b.close()
    old = log_backend.writer(local_models=[QWEN])  # no servers: as a log from before m012_attempt_backend
    for i in range(12):
        ts = now + 400 + i
        old.submit(RequestRecord(f"o{i}", "chat", ts=ts, outcome=RequestOutcome.FALLBACK, model="cloud", total_ms=700,
                                 attempts=[Attempt(QWEN, "ollama", Outcome.FALLBACK, Reason.QUEUE_TIMEOUT,
                                                   "no slot within 10s", started_at=ts, queue_wait_ms=10000.0),
                                           Attempt("cloud", "openai", Outcome.OK, started_at=ts)]))
    old.close()
    conn = log_backend.connect()
    for i in range(6):
        assert queries.rate(conn, f"bw{i}", True) == f"bw{i}"


def _rows(groups) -> dict[tuple[str, str | None], object]:
    return {(g.key, g.server): g for g in groups}


def test_stats_is_per_model_and_server(log_backend: LogBackend) -> None:
    _fill(log_backend)
    models = queries.stats(log_backend.connect(), time.time() - 86400, by="model", attempts=True)
    rows = _rows(models)
    a, b, unknown = rows[(QWEN, "gpu-a:11434")], rows[(QWEN, "gpu-b:11434")], rows[(QWEN, "unknown server")]
    assert (a.requests, a.failed_attempts, a.p50) == (30, 0, 800)
    assert (b.requests, b.failed_attempts, b.p50) == (16, 12, 9000)
    assert (unknown.requests, unknown.failed_attempts) == (0, 12)  # old rows: beside known servers, not one of them
    assert rows[("cloud", None)].requests == 24  # a model on one server stays one row
    assert (QWEN, None) not in rows
    names = [g.key for g in models]
    assert names[names.index(QWEN):names.index(QWEN) + 3] == [QWEN] * 3  # a model's servers side by side
    # per agent nothing changes: one row each
    assert sorted(g.key for g in queries.stats(log_backend.connect(), None, by="agent", attempts=True)) == [
        "chat", "writer"]


def test_a_model_on_one_server_or_only_old_rows_is_one_row(log_backend: LogBackend) -> None:
    """Only rows without a server (an old log), or one server only: no server column, no 'unknown server'."""
    old = log_backend.writer(local_models=[QWEN])
    for i in range(3):
        old.submit(RequestRecord(f"o{i}", "chat", outcome=RequestOutcome.OK, model=QWEN, total_ms=100,
                                 attempts=[Attempt(QWEN, "ollama", Outcome.OK)]))
    old.close()
    cloud = log_backend.writer(backends={"cloud": "openai https://api.openai.com/v1 gpt-4.1-mini"})
    cloud.submit(RequestRecord("c0", "chat", outcome=RequestOutcome.OK, model="cloud", total_ms=100,
                               attempts=[Attempt("cloud", "openai", Outcome.OK)]))
    cloud.close()
    rows = [(g.key, g.server, g.requests) for g in queries.stats(log_backend.connect(), None, by="model")]
    assert rows == [(QWEN, None, 3), ("cloud", None, 1)]


def test_report_tables_json_and_advice_name_the_server(tmp_path: Path, log_backend: LogBackend) -> None:
    _fill(log_backend)
    report = build_report(log_backend.connect(), load_config(_config(tmp_path, log_backend, "gpu-b")), days_period(1))
    rows = _rows(report.models)
    assert rows[(QWEN, "gpu-a:11434")].requests == 30 and rows[(QWEN, "gpu-b:11434")].requests == 16
    assert rows[(QWEN, "gpu-b:11434")].failed_attempts == 12 and rows[(QWEN, "unknown server")].failed_attempts == 12
    # the table's waits are each server's own: the healthy box's 5 ms are not averaged into the slow one's
    assert rows[(QWEN, "gpu-a:11434")].summary()["queue_wait_p95_ms"] == 5.0
    assert rows[(QWEN, "gpu-b:11434")].summary()["queue_wait_p50_ms"] >= 9000
    as_json = report.to_dict()["models"]
    assert {(m["key"], m["server"]) for m in as_json} == {
        (QWEN, "gpu-a:11434"), (QWEN, "gpu-b:11434"), (QWEN, "unknown server"), ("cloud", None)}

    recs = {r.kind: r for r in report.recommendations}
    blame = recs["fallback_rate"]
    assert (blame.numbers["blamed"], blame.numbers["blamed_server"]) == (QWEN, "gpu-b:11434")
    # gpu-b's refused connections; the old rows' queue timeouts are no specific server's
    assert blame.numbers["failed_models"] == {f"{QWEN} on gpu-b:11434": {"connect_error": 12}}
    assert f"its primary {QWEN} on gpu-b:11434 is unreliable (connect_error)" in blame.message
    risk = recs["cascade_risk"]
    assert risk.numbers["server"] == "gpu-b:11434" and risk.numbers["queue_timeouts"] == 0
    assert risk.numbers["attempts"] == 28 and f"model {QWEN} on gpu-b:11434: p95 queue wait" in risk.message
    move = recs["move_local"]
    assert move.numbers["local_server"] == "gpu-b:11434" and f"local fallback {QWEN} on gpu-b:11434" in move.message

    fig = build_figure(report)
    try:
        labels = [t.get_text() for t in fig.axes[3].get_yticklabels()]
        assert f"{QWEN} @ gpu-a:11434" in labels and f"{QWEN} @ gpu-b:11434" in labels, labels
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_healthy_servers_report_is_not_blamed_for_old_rows(tmp_path: Path, log_backend: LogBackend) -> None:
    """gpu-a's host: gpu-b's failures are another server's, and the old queue timeouts (server unknown) are not
    counted against gpu-a — before, they made a cascade risk and a blame of gpu-a's qwen."""
    _fill(log_backend)
    report = build_report(log_backend.connect(), load_config(_config(tmp_path, log_backend, "gpu-a")), days_period(1))
    recs = {r.kind: r for r in report.recommendations}
    assert "cascade_risk" not in recs, recs["cascade_risk"].message
    assert recs["fallback_rate"].numbers["failed_models"] == {} and recs["fallback_rate"].numbers["blamed"] is None


def test_stats_and_report_commands_show_each_server(tmp_path: Path, log_backend: LogBackend) -> None:
    _fill(log_backend)
    cfg = str(_config(tmp_path, log_backend, "gpu-b"))
    shown = runner.invoke(app, ["stats", "--config", cfg, "--json"])
    assert shown.exit_code == 0, shown.output
    models = {(m["key"], m["server"]): m for m in json.loads(shown.output)["models"]}
    assert models[(QWEN, "gpu-a:11434")]["requests"] == 30 and models[(QWEN, "gpu-b:11434")]["failed_attempts"] == 12
    assert models[("cloud", None)]["requests"] == 24
    table = runner.invoke(app, ["stats", "--config", cfg])
    assert table.exit_code == 0, table.output
    line = next(ln for ln in table.output.splitlines() if f"{QWEN} @ gpu-b:11434" in ln)
    assert "9000ms" in line  # the slow box's own p50, not lumped with the fast one's 800ms
    assert f"{QWEN} @ unknown server" in table.output

    text = runner.invoke(app, ["report", "--config", cfg, "--days", "1"])
    assert text.exit_code == 0, text.output
    assert f"{QWEN} @ gpu-a:11434" in text.output and f"{QWEN} @ gpu-b:11434" in text.output
    assert f"cascade_risk: model {QWEN} on gpu-b:11434" in text.output


def test_server_labels_are_short_unique_and_keep_no_password() -> None:
    from modelyard.ledger.aggregate import Servers, server_label  # new here: the other tests fail on behaviour

    assert server_label("ollama http://team:***@gpu-a:11434 qwen2.5:7b") == "gpu-a:11434"
    assert server_label("llamacpp /srv/models/qwen2.5-7b-q4.gguf qwen") == "qwen2.5-7b-q4.gguf"
    assert server_label(None) == "unknown server"
    # one host, two model ids under one name: the host alone would read alike, so each is named whole
    one_host = Servers.of([(QWEN, f"ollama http://gpu-a:11434 {QWEN}"), (QWEN, "ollama http://gpu-a:11434 qwen3")])
    assert one_host.label(QWEN, "ollama http://gpu-a:11434 qwen3") == "ollama http://gpu-a:11434 qwen3"
    assert Servers.of([(QWEN, GPU_A)]).label(QWEN, GPU_A) is None
