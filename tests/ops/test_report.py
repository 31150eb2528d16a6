"""`modelyard report` from a routing log written the way the router writes it (LogWriter)."""

from __future__ import annotations

import gc
import json
import re
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from tests.pg import LogBackend
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config import load_config
from modelyard.config.schema import SpendWindow
from modelyard.errors import Reason
from modelyard.gateway.dashboard import month_start
from modelyard.ledger import queries
from modelyard.ledger.report import build_report, days_period, month_period
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord, new_request_id
from modelyard.router.spend import window_start

MARCH = datetime(2025, 3, 15, 12, 0).astimezone().timestamp()


def config_file(tmp_path: Path, backend: LogBackend | None = None) -> Path:
    data = {
        "log": backend.log_config() if backend else {"path": str(tmp_path / "log.sqlite3")},
        "report": {"counterfactual": {"sonnet": {"input": 3, "output": 15}, "mini": {"input": 0.4, "output": 1.6}},
                   "electricity_usd_per_month": 0.04, "hardware_usd_per_month": 0.06},
        "models": {
            "qwen": {"provider": "ollama", "max_concurrent": 2, "timeouts": {"queue": 10}},
            "gemma": {"provider": "ollama"},
            "haiku": {"provider": "anthropic", "api_key_env": "NO_SUCH_KEY", "price": {"input": 1, "output": 5}},
        },
        "agents": {
            "chat": {"primary": "qwen", "fallbacks": ["gemma"]},
            "writer": {"primary": "haiku", "fallbacks": ["qwen"], "consumers": ["chat"]},
            "research": {"primary": "haiku", "fallbacks": ["qwen"]},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def served(agent: str, ts: float, attempts: list[Attempt], tin: int, tout: int, total_ms: float,
           tps: float | None = None) -> RequestRecord:
    answer = attempts[-1]
    answer.tokens_in, answer.tokens_out, answer.tokens_per_s = tin, tout, tps
    answer.cost_usd = (tin * 1 + tout * 5) / 1e6 if answer.model == "haiku" else 0.0
    for a in attempts:
        a.started_at = ts
    return RequestRecord(new_request_id(), agent, ts=ts, outcome=RequestOutcome.OK if len(attempts) == 1
                         else RequestOutcome.FALLBACK,
                         model=answer.model, attempts=attempts, queue_wait_ms=sum(a.queue_wait_ms or 0 for a in
                                                                                   attempts),
                         total_ms=total_ms, tokens_in=tin, tokens_out=tout, tokens_per_s=tps,
                         cost_usd=sum(a.cost_usd for a in attempts))


def write_log(backend: LogBackend) -> list[RequestRecord]:
    """61 requests in March 2025 and one in April; returns the research local-fallback records."""
    writer = backend.writer(local_models=["qwen", "gemma"])
    t = MARCH
    for i in range(30):  # chat on its local primary
        writer.submit(served("chat", t + i, [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 100, 50, 1000,
                             tps=20.0))
    for i in range(10):  # chat: qwen's queue full for its whole 10 s timeout → gemma
        writer.submit(served("chat", t + 100 + i, [
            Attempt("qwen", "ollama", Outcome.FALLBACK, Reason.QUEUE_TIMEOUT, queue_wait_ms=10_000.0),
            Attempt("gemma", "ollama", Outcome.OK, queue_wait_ms=0.0)], 100, 50, 11_000, tps=10.0))
    for i in range(6):  # writer on its cloud primary
        writer.submit(served("writer", t + 200 + i, [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)],
                             1000, 500, 3000, tps=80.0))
    for i in range(4):  # writer: Anthropic overloaded → local
        writer.submit(served("writer", t + 300 + i, [
            Attempt("haiku", "anthropic", Outcome.FALLBACK, Reason.OVERLOADED, queue_wait_ms=0.0),
            Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 1000, 500, 5000, tps=20.0))
    for i in range(2):  # research on its cloud primary
        writer.submit(served("research", t + 400 + i, [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)],
                             2000, 1000, 4000, tps=80.0))
    research_local = []
    for i in range(8):  # research: no key → local fallback (rated below)
        record = served("research", t + 500 + i, [
            Attempt("haiku", "anthropic", Outcome.SKIPPED, Reason.MISSING_CREDENTIALS),
            Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 2000, 1000, 9000, tps=20.0)
        research_local.append(record)
        writer.submit(record)
    writer.submit(RequestRecord(new_request_id(), "research", ts=t + 600, outcome=RequestOutcome.FAILED, attempts=[
        Attempt("haiku", "anthropic", Outcome.FALLBACK, Reason.SERVER_ERROR, started_at=t + 600, queue_wait_ms=0.0),
        Attempt("qwen", "ollama", Outcome.FALLBACK, Reason.FIRST_TOKEN_TIMEOUT, started_at=t + 600, queue_wait_ms=0.0)],
        total_ms=30_000))
    april = datetime(2025, 4, 2, 12, 0).astimezone().timestamp()  # outside the period: must not count
    writer.submit(served("writer", april, [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)], 10**6, 10**6,
                         1000))
    writer.close()
    conn = backend.connect()
    for i, record in enumerate(research_local):
        assert queries.rate(conn, record.id, i != 0)  # 7 of 8 rated acceptable
    return research_local


def test_report_numbers_exactly(tmp_path: Path, log_backend: LogBackend) -> None:
    write_log(log_backend)
    cfg = load_config(config_file(tmp_path, log_backend))
    r = build_report(log_backend.connect(), cfg, month_period("2025-03"))
    d = r.to_dict()

    t = d["totals"]
    assert (t["requests"], t["served"], t["fallbacks"]) == (61, 60, 22)
    assert (t["tokens_in"], t["tokens_out"]) == (34_000, 17_000)
    assert t["local"] == 52 and t["local_share"] == pytest.approx(52 / 60)
    assert t["fallback_reasons"] == {"queue_timeout": 10, "missing_credentials": 8, "overloaded": 4}

    cost = d["cost"]
    assert cost["cloud_spend_usd"] == pytest.approx(6 * 0.0035 + 2 * 0.007)  # $0.035
    assert d["period"]["months"] == 1.0 and cost["local_cost_usd"] == pytest.approx(0.10)
    assert cost["total_usd"] == pytest.approx(0.135)
    cf = {c["model"]: c for c in cost["counterfactuals"]}
    sonnet, mini = cf["sonnet"], cf["mini"]
    assert sonnet["cost_usd"] == pytest.approx(34_000 * 3e-6 + 17_000 * 15e-6)
    assert sonnet["savings_usd"] == pytest.approx(0.357 - 0.135)
    assert sonnet["savings_pct"] == pytest.approx((0.357 - 0.135) / 0.357 * 100)
    assert mini["cost_usd"] == pytest.approx(34_000 * 0.4e-6 + 17_000 * 1.6e-6)  # $0.0408: cheaper than actual
    assert mini["savings_pct"] == pytest.approx((0.0408 - 0.135) / 0.0408 * 100)

    agents = {g["key"]: g for g in d["agents"]}
    chat = agents["chat"]
    assert (chat["requests"], chat["fallbacks"], chat["fallback_rate"]) == (40, 10, 0.25)
    assert (chat["latency_p50_ms"], chat["latency_p95_ms"]) == (1000, 11_000)
    assert chat["local_share"] == 1.0 and chat["spend_usd"] == 0
    research = agents["research"]
    assert (research["requests"], research["served"], research["rated"], research["acceptable"]) == (11, 10, 8, 7)
    assert research["acceptable_rate"] == pytest.approx(7 / 8)
    assert research["local_share"] == pytest.approx(0.8)

    models = {g["key"]: g for g in d["models"]}
    assert models["qwen"]["requests"] == 42 and models["qwen"]["tokens_per_s"] == 20.0
    assert models["haiku"]["requests"] == 8 and models["haiku"]["spend_usd"] == pytest.approx(0.035)
    assert models["haiku"]["tokens_per_s"] == 80.0
    assert models["qwen"]["queue_wait_p95_ms"] == 10_000  # from attempts: queue timeouts count in full

    recs = {(x["kind"], x["subject"]): x for x in d["recommendations"]}
    assert sorted(recs) == [("cascade_risk", "qwen"), ("fallback_rate", "chat"), ("move_local", "research"),
                            ("tiering", "writer")]
    fb = recs[("fallback_rate", "chat")]
    assert fb["numbers"] == {"requests": 40, "fallbacks": 10, "fallback_rate": 0.25,
                             "reasons": {"queue_timeout": 10}, "primary": "qwen", "blamed": "qwen",
                             "blamed_server": None, "failed_models": {"qwen": {"queue_timeout": 10}},
                             "not_in_chain": []}
    assert "its primary qwen is saturated" in fb["message"]
    assert d["config_drift"] == {"unknown_models": [], "agents": {}}
    assert "raise its max_concurrent (now 2)" in fb["message"]
    cascade = recs[("cascade_risk", "qwen")]["numbers"]
    assert cascade == {"server": None, "queue_wait_p95_ms": 10_000, "queue_timeout_s": 10, "ratio": 1.0, "attempts": 53,
                       "queue_timeouts": 10}
    move = recs[("move_local", "research")]["numbers"]
    assert move == {"rated": 8, "acceptable": 7, "acceptable_rate": 0.875, "acceptable_ci95": [0.5291, 0.9776],
                    "local_model": "qwen", "local_server": None, "cloud_spend_usd": pytest.approx(0.014)}
    # 8 ratings: the interval a user moving the agent should weigh, said beside the 88%
    assert "(88%; 95% interval 53%–98% on 8 ratings)" in recs[("move_local", "research")]["message"]
    tier = recs[("tiering", "writer")]
    assert tier["numbers"] == {"consumers": ["chat"], "primary": "haiku", "requests": 10,
                               "cloud_spend_usd": pytest.approx(0.021)}
    assert "e.g. qwen, already its fallback" in tier["message"]


def test_fewer_ratings_or_lower_acceptance_recommends_nothing_to_move(tmp_path: Path,
                                                                      log_backend: LogBackend) -> None:
    research_local = write_log(log_backend)
    conn = log_backend.connect()
    for record in research_local[:3]:
        queries.rate(conn, record.id, False)  # now 5 of 8 acceptable: 62% < 80%
    r = build_report(conn, load_config(config_file(tmp_path)), month_period("2025-03"))
    assert "move_local" not in {x.kind for x in r.recommendations}


def test_periods() -> None:
    march = month_period("2025-03")
    assert datetime.fromtimestamp(march.start, UTC).strftime("%Y-%m-%d %H:%M") == "2025-03-01 00:00"
    assert datetime.fromtimestamp(march.end, UTC).strftime("%Y-%m-%d %H:%M") == "2025-04-01 00:00"
    now = datetime(2025, 6, 16, 0, 0, tzinfo=UTC)
    june = month_period(None, now=now)
    assert june.label == "2025-06 UTC" and june.months == pytest.approx(15 / 30)  # month to date
    week = days_period(7, now=1_000_000.0)
    assert (week.start, week.end, week.months) == (1_000_000.0 - 7 * 86400, 1_000_000.0, 7 / 31)  # in January 1970
    with pytest.raises(ValueError, match="2026-03"):
        month_period("March")
    with pytest.raises(ValueError, match="'2026-13' is not one"):  # it said '2026-13' did not "look like 2026-03"
        month_period("2026-13")


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The reader's clock in New York (UTC-4 in summer, UTC-5 in winter)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_month_is_the_utc_month_the_spend_caps_count(new_york: None) -> None:
    """A month is one UTC calendar month for report, the dashboard and spend caps alike: the report said the reader's
    local month (its own docstring), the caps and Anthropic's cost report (buckets "snapped to the start of the day
    in UTC": platform.claude.com/docs/en/api/admin/cost_report) the UTC one — in New York a Haiku request at 21:00
    on March 31st counted against April's cap and in March's report; and `--month 2026-07` read in November took
    November's offset (-5), so July began at 01:00 its own time. The same split, one table read two ways, is
    wontlost-ltd/chrono-synth-os#434 ("cost-tracker local, token-budget UTC": a cap reset while the spend still counted
    the month before); LiteLLM's budget windows default to UTC (BerriAI/litellm#41211)."""
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    july = month_period("2026-07", now=now)
    assert (july.start, july.end) == (datetime(2026, 7, 1, tzinfo=UTC).timestamp(),
                                      datetime(2026, 8, 1, tzinfo=UTC).timestamp())
    # 21:00 on March 31st in New York is already April in UTC: April's cap counted it, so does April's report
    late = datetime(2026, 4, 1, 1, 0, tzinfo=UTC).timestamp()
    april, march = month_period("2026-04", now=now), month_period("2026-03", now=now)
    assert april.start <= late < april.end and not march.start <= late < march.end
    assert window_start(SpendWindow.MONTH, late) == april.start
    # the month to date: the report's, the dashboard's and the caps' start at the same second
    current = month_period(None, now=now)
    assert current.start == window_start(SpendWindow.MONTH, now.timestamp()) == month_start(now)
    assert current.label == "2026-11 UTC"


def test_days_period_prorates_local_cost(tmp_path: Path, log_backend: LogBackend) -> None:
    write_log(log_backend)
    r = build_report(log_backend.connect(), load_config(config_file(tmp_path, log_backend)),
                     days_period(3, now=MARCH + 86400))
    assert r.totals.requests == 61
    assert r.local_cost_usd == pytest.approx(0.10 * 3 / 31)  # 3 days of March (UTC calendar months)


def test_a_short_periods_share_of_the_month_is_not_printed_as_zero(tmp_path: Path, log_backend: LogBackend) -> None:
    """A newcomer's first `report`, on the 1st of the month, read "local (electricity + hardware × 0.00 month)" —
    as if no local cost were counted — beside a local cost that was not zero; `--days 1` likewise (1/31 of a
    month said "0.03"). The share is said with its significant digits."""
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    now = time.time()
    writer.submit(served("chat", now - 60, [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 100, 50, 1000))
    writer.close()
    out = CliRunner().invoke(app, ["report", "--config", str(config_file(tmp_path, log_backend)), "--days", "0.05"],
                             env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    said = re.search(r"local \(electricity \+ hardware × ([0-9.]+) month\)", out.output)
    assert said is not None, out.output
    assert said.group(1) in {"0.0016", "0.0017", "0.0018"}, said.group(0)  # 0.05 days of a 31…28-day month


def test_cli_table_json_and_charts(tmp_path: Path, log_backend: LogBackend) -> None:
    write_log(log_backend)
    config = str(config_file(tmp_path, log_backend))
    runner = CliRunner()
    table = runner.invoke(app, ["report", "--config", config, "--month", "2025-03", "--chart",
                                str(tmp_path / "r.png")])
    assert table.exit_code == 0, table.output
    for text in ("61 requests", "52 of 60 answered locally (87%)", "all-cloud on sonnet", "62%",
                 "cascade_risk: model qwen", "tiering: agent writer"):
        assert text in table.output, text
    # the research request no model answered is said, not hidden among '0%' fallbacks and a p50 of '–'
    assert "1 failed (no model answered: `modelyard log --outcome failed`)" in " ".join(table.output.split())
    header = table.output.split("by agent")[1].splitlines()[1].split()
    assert header[:2] == ["requests", "failed"], header
    research = next(line.split() for line in table.output.splitlines() if line.startswith("research"))
    assert research[1:3] == ["11", "1"], research
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    as_json = runner.invoke(app, ["report", "--config", config, "--month", "2025-03", "--json", "--chart",
                                  str(tmp_path / "r.svg")])
    assert as_json.exit_code == 0
    body = as_json.stdout
    assert json.loads(body)["totals"]["requests"] == 61
    assert "<svg" in (tmp_path / "r.svg").read_text()

    empty = runner.invoke(app, ["report", "--config", config, "--month", "2024-01"])
    assert empty.exit_code == 0 and "0 requests" in empty.output
    assert "no requests in 2024-01" in empty.output and "by agent" not in empty.output  # not tables of headers
    assert runner.invoke(app, ["report", "--config", config, "--chart", "x.gif"]).exit_code == 2
    assert runner.invoke(app, ["report", "--config", config, "--month", "2025-3x"]).exit_code == 2


@pytest.mark.parametrize("command", [["report", "--month", "2025-03"], ["models", "--no-reach"], ["log"], ["stats"]],
                         ids=lambda c: c[0])
def test_a_command_closes_the_log_it_read(tmp_path: Path, log_backend: LogBackend, command: list[str]) -> None:
    """`report` (the log, and this host's file for bench runs), `models`, `log` and `stats` left their connections
    open: run in-process, a PostgreSQL session each until the collector came — a psycopg ResourceWarning in
    whichever test that was."""
    write_log(log_backend)
    config = str(config_file(tmp_path, log_backend))
    gc.collect()  # what earlier tests left is collected here, not charged to the command (it failed one CI run so)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = CliRunner().invoke(app, [*command, "--config", config])
        gc.collect()
    assert result.exit_code == 0, result.output
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_cascade_advice_quotes_the_bound_the_router_enforced(tmp_path: Path, log_backend: LogBackend) -> None:
    """An agent's own queue bound overrides the model's: the report must judge waits against it."""
    write_log(log_backend)
    data = yaml.safe_load(config_file(tmp_path, log_backend).read_text())
    data["agents"]["chat"]["timeouts"] = {"queue": 5}
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(data))
    r = build_report(log_backend.connect(), load_config(path), month_period("2025-03"))
    recs = {(x["kind"], x["subject"]): x for x in r.to_dict()["recommendations"]}
    cascade = recs[("cascade_risk", "qwen")]
    assert cascade["numbers"]["queue_timeout_s"] == 5  # chat's bound, not qwen's 10 s
    assert "5s queue timeout" in cascade["message"]


def test_fallback_blames_the_models_that_failed_in_the_log_not_the_current_primary(
        tmp_path: Path, log_backend: LogBackend) -> None:
    """Traffic logged under an earlier config where ``mistral`` (since removed) kept failing for chat: the
    report must name mistral, not today's primary qwen, and say the log's models differ from the config."""
    writer = log_backend.writer(local_models=["qwen", "gemma", "mistral"])
    for i in range(20):
        attempts = [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)]
        if i < 6:
            attempts.insert(0, Attempt("mistral", "ollama", Outcome.FALLBACK, Reason.FIRST_TOKEN_TIMEOUT,
                                       queue_wait_ms=0.0))
        writer.submit(served("chat", MARCH + i, attempts, 10, 10, 1000))
    writer.close()
    config = config_file(tmp_path, log_backend)
    r = build_report(log_backend.connect(), load_config(config), month_period("2025-03"))
    fb = {(x.kind, x.subject): x for x in r.recommendations}[("fallback_rate", "chat")]
    assert "primary qwen" not in fb.message
    assert "failed in the log: mistral (first_token_timeout 6)" in fb.message
    assert "mistral (not in the current config) is unreliable (first_token_timeout)" in fb.message
    assert "not in its current chain (qwen → gemma)" in fb.message
    assert fb.numbers["blamed"] == "mistral" and fb.numbers["failed_models"] == {"mistral": {"first_token_timeout": 6}}
    assert r.drift.unknown_models == ["mistral"] and r.drift.agents == {"chat": ["mistral"]}

    out = CliRunner().invoke(app, ["report", "--config", str(config), "--month", "2025-03"])
    assert out.exit_code == 0, out.output
    assert "the log's models differ from the current config" in out.output
    assert "mistral" in out.output
    as_json = CliRunner().invoke(app, ["report", "--config", str(config), "--month", "2025-03", "--json"])
    assert json.loads(as_json.stdout)["config_drift"]["unknown_models"] == ["mistral"]


def test_fallback_blames_a_failing_fallback_not_the_healthy_primary(tmp_path: Path, log_backend: LogBackend) -> None:
    """research's primary haiku is merely unconfigured (skipped) on some requests while its fallback qwen timed
    out on more: the advice is about the model that failed most, named by its place in the chain."""
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    for i in range(20):
        if i < 2:
            attempts = [Attempt("haiku", "anthropic", Outcome.SKIPPED, Reason.MISSING_CREDENTIALS),
                        Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)]
        elif i < 8:
            attempts = [Attempt("haiku", "anthropic", Outcome.FALLBACK, Reason.OVERLOADED, queue_wait_ms=0.0),
                        Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)]
        else:
            attempts = [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)]
        writer.submit(served("research", MARCH + i, attempts, 10, 10, 1000))
    writer.close()
    r = build_report(log_backend.connect(), load_config(config_file(tmp_path, log_backend)), month_period("2025-03"))
    fb = {(x.kind, x.subject): x for x in r.recommendations}[("fallback_rate", "research")]
    assert fb.numbers["failed_models"] == {"haiku": {"overloaded": 6, "missing_credentials": 2}}
    assert "its primary haiku is unreliable (overloaded)" in fb.message
    assert not r.drift


def test_a_redis_outage_is_not_blamed_on_the_model(tmp_path: Path, log_backend: LogBackend) -> None:
    """Three serves, one slot, Redis down: every attempt on qwen failed as state_unreachable and the report said
    'its primary qwen is unreliable (state_unreachable): move the agent or add a model'."""
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    for i in range(20):
        attempts = [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)]
        if i < 8:
            attempts.insert(0, Attempt("qwen", "ollama", Outcome.FALLBACK, Reason.STATE_UNREACHABLE,
                                       queue_wait_ms=0.0))
            attempts[-1] = Attempt("gemma", "ollama", Outcome.OK, queue_wait_ms=0.0)
        writer.submit(served("chat", MARCH + i, attempts, 10, 10, 1000))
    writer.close()
    r = build_report(log_backend.connect(), load_config(config_file(tmp_path, log_backend)), month_period("2025-03"))
    fb = {(x.kind, x.subject): x for x in r.recommendations}[("fallback_rate", "chat")]
    assert "unreliable" not in fb.message
    assert "its primary qwen got no slot while the shared state (Redis) was unreachable" in fb.message


def test_report_fits_80_columns_with_whole_figures(tmp_path: Path, log_backend: LogBackend) -> None:
    """At 80 columns every column was squeezed: a p50 read '37…', a fallback rate of 100% read '10…'."""
    import os
    import subprocess
    import sys

    from rich.cells import cell_len

    write_log(log_backend)
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "modelyard", "report", "--config",
                          str(config_file(tmp_path, log_backend)), "--month", "2025-03"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    tables = out.stdout.split("fallbacks by reason")[0].splitlines()[1:]  # the headline is one long sentence
    assert max(cell_len(line) for line in tables) <= 80 and "…" not in "\n".join(tables), out.stdout
    assert "requests" in out.stdout and "p50" in out.stdout
    assert "--json has every figure" in " ".join(out.stdout.split())


def test_requests_for_a_model_by_name_through_the_gateway_are_not_drift(tmp_path: Path,
                                                                          log_backend: LogBackend) -> None:
    """`model: "qwen"` through the gateway is logged under the agent `model:qwen`; the report called that
    'the log's models differ from the current config … (current chain: no such agent now)'."""
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    writer.submit(served("model:qwen", MARCH, [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 10, 10, 100))
    writer.submit(served("model:gone", MARCH + 1, [Attempt("gone", "ollama", Outcome.OK, queue_wait_ms=0.0)], 10, 10,
                         100))
    writer.close()
    r = build_report(log_backend.connect(), load_config(config_file(tmp_path, log_backend)), month_period("2025-03"))
    assert "model:qwen" not in r.drift.agents
    assert r.drift.unknown_models == ["gone"] and r.drift.agents == {"model:gone": ["gone"]}  # a removed model still is


def test_an_agent_whose_answer_is_revised_for_the_person_is_not_told_to_go_local(tmp_path: Path) -> None:
    """The default config's writer hands its answer to utility to revise (returned whole, with its edits, to the
    person): the report said 'its output is read by utility, not a person … can run local'."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"qwen": {"provider": "ollama"}, "haiku": {"provider": "anthropic", "api_key_env": "NO_SUCH_KEY",
                                                              "price": {"input": 1, "output": 5}}},
        "agents": {"writer": {"primary": "haiku", "fallbacks": ["qwen"], "consumers": ["utility"]},
                   "planner": {"primary": "haiku", "fallbacks": ["qwen"], "consumers": ["engineer"]},
                   "utility": {"primary": "qwen"}, "engineer": {"primary": "qwen"}}}))
    writer = LogBackend("sqlite", tmp_path / "log.sqlite3").writer(local_models=["qwen"])
    for agent in ("writer", "planner"):
        writer.submit(served(agent, MARCH, [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)], 10, 10, 100))
    writer.close()
    out = CliRunner().invoke(app, ["report", "--config", str(path), "--month", "2025-03", "--json"])
    assert out.exit_code == 0, out.output
    tiering = {r["subject"]: r["message"] for r in json.loads(out.stdout)["recommendations"] if r["kind"] == "tiering"}
    assert "writer" not in tiering, tiering
    assert "its output is read by engineer, not a person" in tiering["planner"]  # building on it is another matter


def test_an_agent_with_no_requests_in_the_period_gets_no_tiering_advice(tmp_path: Path) -> None:
    """The report told an agent that sent nothing all month to 'run local' ("0 requests, $0.00 this period"):
    there is nothing to move and no spend to save."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"qwen": {"provider": "ollama"}, "haiku": {"provider": "anthropic", "api_key_env": "NO_SUCH_KEY",
                                                              "price": {"input": 1, "output": 5}}},
        "agents": {"planner": {"primary": "haiku", "fallbacks": ["qwen"], "consumers": ["engineer"]},
                   "engineer": {"primary": "qwen"}}}))
    writer = LogBackend("sqlite", tmp_path / "log.sqlite3").writer(local_models=["qwen"])
    writer.submit(served("planner", datetime(2025, 4, 15, 12, 0, tzinfo=UTC).timestamp(),
                         [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)], 10, 10, 100))  # April only
    writer.close()
    out = CliRunner().invoke(app, ["report", "--config", str(path), "--month", "2025-03", "--json"])
    assert out.exit_code == 0, out.output
    assert [r for r in json.loads(out.stdout)["recommendations"] if r["kind"] == "tiering"] == []


def test_small_sums_are_written_out_not_as_exponents_or_zero() -> None:
    """A spend cap of $0.00001 read "$1e-05" in the report's advice; a nonzero sum is never $0.0000."""
    from modelyard.ledger.report import money

    assert [money(v) for v in (0, 1234.5, 0.014, 0.00001, 0.00012345)] == \
        ["$0.00", "$1,234.50", "$0.0140", "$0.000010", "$0.00012"]


def test_a_queue_wait_of_too_few_attempts_has_no_p95_in_the_advice_or_the_json(tmp_path: Path,
                                                                              log_backend: LogBackend) -> None:
    """12 attempts on qwen, 3 of which waited out its 10 s queue: the report advised "p95 queue wait 10.0s is 100%
    of its 10s queue timeout" and `--json` printed ``queue_wait_p95_ms: 10000`` — the nearest-rank p95 of 12 values
    is their slowest, the figure the tables already show as '–' below 20 samples (aggregate.has_p95). Now the
    advice counts the waits near the timeout and says the attempts are too few to estimate a p95; JSON says null."""
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    for i in range(9):
        writer.submit(served("chat", MARCH + i, [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=50.0)],
                             100, 50, 1000, tps=20.0))
    for i in range(3):
        writer.submit(served("chat", MARCH + 100 + i, [
            Attempt("qwen", "ollama", Outcome.FALLBACK, Reason.QUEUE_TIMEOUT, queue_wait_ms=10_000.0),
            Attempt("gemma", "ollama", Outcome.OK, queue_wait_ms=0.0)], 100, 50, 11_000, tps=10.0))
    writer.close()
    config = str(config_file(tmp_path, log_backend))
    runner = CliRunner()
    as_json = runner.invoke(app, ["report", "--config", config, "--month", "2025-03", "--json"])
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    qwen = next(m for m in body["models"] if m["key"] == "qwen")
    assert qwen["queue_wait_p50_ms"] == 50.0 and qwen["queue_wait_p95_ms"] is None, qwen
    assert body["totals"]["latency_p95_ms"] is None and body["totals"]["latency_p50_ms"] == 1000, body["totals"]
    [risk] = [r for r in body["recommendations"] if r["kind"] == "cascade_risk"]
    assert risk["numbers"] == {"server": None, "queue_wait_p95_ms": None, "queue_timeout_s": 10, "ratio": None,
                               "attempts": 12, "queue_timeouts": 3, "near_timeout": 3}, risk
    text = runner.invoke(app, ["report", "--config", config, "--month", "2025-03"], env={"COLUMNS": "250"})
    said = " ".join(text.output.split())
    assert text.exit_code == 0, said
    assert ("model qwen: 3 of 12 attempts waited 80% or more of its 10s queue timeout (3 timed out in the queue) — "
            "too few to estimate a p95 queue wait (20 attempts needed)") in said, said
    assert "p95 queue wait 10.0s" not in said, said
