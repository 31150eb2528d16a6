"""Replay: the real router over simulated time reproduces a recorded run, predicts a changed config
in the direction and size a real run with that config shows, and says clearly when it cannot."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml

from modelyard.ledger import connect
from modelyard.ledger.report import Period, build_report
from modelyard.ledger.store import LogStore
from modelyard.replay import source
from modelyard.replay.run import ReplayError, replay
from modelyard.replay.summary import to_dict
from tests.replay.traffic import T0, arrivals, config, record

#: the routing log as the first release wrote it (schema version 1), fixed forever
SCHEMA_1 = """
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    parent_id TEXT,
    ts REAL NOT NULL,
    agent TEXT NOT NULL,
    model TEXT,
    is_local INTEGER,
    outcome TEXT NOT NULL,
    fallback_reason TEXT,
    n_attempts INTEGER NOT NULL DEFAULT 0,
    queue_wait_ms REAL,
    ttft_ms REAL,
    total_ms REAL,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    tokens_per_s REAL,
    cost_usd REAL NOT NULL DEFAULT 0,
    prompt TEXT,
    response TEXT,
    thinking TEXT,
    error TEXT,
    acceptable INTEGER,
    rated_at REAL
);
CREATE INDEX requests_ts ON requests(ts);
CREATE INDEX requests_agent_ts ON requests(agent, ts);
CREATE INDEX requests_model_ts ON requests(model, ts);
CREATE TABLE attempts (
    request_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    detail TEXT,
    queue_wait_ms REAL,
    ttft_ms REAL,
    duration_ms REAL,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    tokens_per_s REAL,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX attempts_model_ts ON attempts(model, ts);
"""
WINDOW = Period(T0 - 60, T0 + 5 * 86400, "test window", 5 / 30)
N = 1500


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same arrivals recorded twice by the real router: with qwen's 2 slots and with 1."""
    base = tmp_path_factory.mktemp("replay")
    schedule = arrivals(N)
    logs = {}
    for name, slots in (("full", 2), ("half", 1)):
        log = base / f"{name}.sqlite3"
        record(config(log, qwen_slots=slots), schedule)
        logs[name] = log
    return logs


def _measured(log: Path, slots: int) -> dict:
    return build_report(connect(log), config(log, qwen_slots=slots), WINDOW).totals.summary()


def test_replaying_the_logged_config_reproduces_what_was_measured(recorded) -> None:
    log = recorded["full"]
    r = replay(LogStore(log), config(log), config(log), WINDOW, parallel=False)
    measured = _measured(log, 2)
    replayed = r.current.totals
    assert replayed["requests"] == measured["requests"] == N
    assert abs(replayed["fallback_rate"] - measured["fallback_rate"]) <= 0.03
    for key in ("queue_wait_p95_ms", "latency_p50_ms", "latency_p95_ms"):
        assert replayed[key] == pytest.approx(measured[key], rel=0.15), key
    assert replayed["local_share"] == pytest.approx(measured["local_share"], abs=0.03)
    # the validation section says the same, per figure
    assert r.validation["fallback_rate"] == (measured["fallback_rate"], replayed["fallback_rate"])
    assert set(r.assumed) <= {"gemma"}  # a rarely used fallback is flagged, the others were measured


def test_halving_slots_is_predicted_like_a_real_run_with_half_the_slots(recorded) -> None:
    full, half = recorded["full"], recorded["half"]
    r = replay(LogStore(full), config(full), config(full, qwen_slots=1), WINDOW, parallel=False)
    real_full, real_half = _measured(full, 2), _measured(half, 1)
    predicted = r.candidate.totals
    # same direction as the real run …
    assert real_half["queue_wait_p95_ms"] > real_full["queue_wait_p95_ms"]
    assert predicted["queue_wait_p95_ms"] > r.current.totals["queue_wait_p95_ms"]
    assert predicted["fallback_rate"] > r.current.totals["fallback_rate"]
    assert real_half["fallback_rate"] > real_full["fallback_rate"]
    # … and roughly the same size
    assert predicted["queue_wait_p95_ms"] == pytest.approx(real_half["queue_wait_p95_ms"], rel=0.25)
    assert predicted["fallback_rate"] == pytest.approx(real_half["fallback_rate"], abs=0.03)
    reasons = predicted["fallback_reasons"]
    assert max(reasons, key=reasons.get) == "queue_timeout"


def test_json_uses_the_reports_field_names(recorded) -> None:
    log = recorded["full"]
    r = replay(LogStore(log), config(log), config(log, qwen_slots=1), WINDOW, parallel=False)
    out = to_dict(r)
    report_keys = set(_measured(log, 2))
    for side in ("current", "candidate"):
        missing = {"fallback_rate", "queue_wait_p50_ms", "queue_wait_p95_ms", "local_share", "spend_usd"} - set(
            out[side])
        assert not missing
        assert {k for k in report_keys if k in out[side]} >= {"requests", "served", "fallbacks", "tokens_in"}
    assert out["summary"] and any("Fallbacks" in line or "Queue wait" in line for line in out["summary"])
    json.dumps(out)  # serialisable as is


def test_a_model_new_in_the_candidate_is_flagged_as_assumed(recorded, tmp_path: Path) -> None:
    log = recorded["full"]
    data = config(log).model_dump(mode="json", exclude_defaults=True)
    data["models"]["mistral"] = {"provider": "openai", "max_concurrent": 4,
                                 "replay": {"ttft_ms": 300, "tokens_per_s": 40}}
    data["models"]["phi"] = {"provider": "openai"}
    data["agents"]["chat"]["fallbacks"] = ["mistral", "phi", "haiku"]
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(data))
    from modelyard.config import load_config

    r = replay(LogStore(log), config(log), load_config(path), WINDOW, parallel=False)
    assert "stated in the config" in r.assumed["mistral"] and "300 ms" in r.assumed["mistral"]
    assert "assumed (no data)" in r.assumed["phi"]
    assert "haiku" not in r.assumed and "qwen" not in r.assumed


def test_traffic_growth_scales_arrivals(recorded) -> None:
    log = recorded["full"]
    r = replay(LogStore(log), config(log), config(log), WINDOW, load=1.5, parallel=False)
    assert r.candidate.totals["requests"] == pytest.approx(1.5 * N, rel=0.06)
    assert r.current.totals["requests"] == r.candidate.totals["requests"]  # compared at the same load
    assert r.validation["fallback_rate"][0] is not None  # validation still replays the log as it was


def test_an_empty_window_is_a_clear_error(recorded) -> None:
    log = recorded["full"]
    empty = Period(T0 - 86400 * 10, T0 - 86400 * 9, "a day with no traffic", 1 / 30)
    with pytest.raises(ReplayError, match="no requests in a day with no traffic"):
        replay(LogStore(log), config(log), config(log), empty, parallel=False)


def test_a_log_from_an_older_schema_replays_after_migration(tmp_path: Path) -> None:
    """A log written by the first release (schema 1) is migrated on open, then replayed."""
    log = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(log)
    conn.executescript(SCHEMA_1)
    conn.execute("PRAGMA user_version=1")
    t = T0 + 10
    for i in range(30):
        conn.execute("INSERT INTO requests (id, ts, agent, model, is_local, outcome, n_attempts, queue_wait_ms, "
                     "total_ms, tokens_in, tokens_out) VALUES (?, ?, 'chat', 'qwen', 1, 'ok', 1, 0, 900, 50, 40)",
                     (f"old{i}", t + i * 5))
        conn.execute("INSERT INTO attempts (request_id, seq, ts, agent, model, provider, outcome, queue_wait_ms, "
                     "ttft_ms, duration_ms, tokens_in, tokens_out, tokens_per_s) VALUES (?, 0, ?, 'chat', 'qwen', "
                     "'openai', 'ok', 0, 300, 900, 50, 40, 65)", (f"old{i}", t + i * 5))
    conn.commit()
    conn.close()
    r = replay(LogStore(log), config(log), config(log), WINDOW, parallel=False)
    assert r.current.totals["requests"] == 30 and r.current.totals["served"] == 30


def test_the_log_is_read_a_page_at_a_time(recorded) -> None:
    """Reading arrivals holds one page, not the log: memory does not grow with the number of rows read."""
    conn = connect(recorded["full"])
    tracemalloc.start()
    it = source.arrivals(conn, WINDOW.start, WINDOW.end)
    for _ in range(100):
        next(it)
    after_100 = tracemalloc.get_traced_memory()[0]
    for _ in it:
        pass
    after_all = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after_all < after_100 * 2


def test_cli_side_by_side_and_json(recorded, tmp_path: Path) -> None:
    log = recorded["full"]
    cur, cand = tmp_path / "current.yaml", tmp_path / "candidate.yaml"
    cur.write_text(yaml.safe_dump(config(log).model_dump(mode="json", exclude_defaults=True)))
    cand.write_text(yaml.safe_dump(config(log, qwen_slots=1).model_dump(mode="json", exclude_defaults=True)))
    window = ["--since", "2025-10-01", "--until", "2025-10-31"]
    run = subprocess.run([sys.executable, "-m", "modelyard", "replay", "--config", str(cand), "--current", str(cur),
                          *window, "--chart", str(tmp_path / "chart.png")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "side by side" in run.stdout and "validation" in run.stdout and "queue_timeout" in run.stdout
    assert (tmp_path / "chart.png").stat().st_size > 10_000
    js = subprocess.run([sys.executable, "-m", "modelyard", "replay", "--config", str(cand), "--current", str(cur),
                         *window, "--json"], capture_output=True, text=True, timeout=300)
    out = json.loads(js.stdout)
    assert out["candidate"]["fallback_rate"] > out["current"]["fallback_rate"]
    empty = subprocess.run([sys.executable, "-m", "modelyard", "replay", "--config", str(cand), "--current", str(cur),
                            "--since", "2020-01-01", "--until", "2020-01-02"], capture_output=True, text=True,
                           timeout=120)
    assert empty.returncode == 1 and "nothing to replay" in empty.stderr and "Traceback" not in empty.stderr


def test_a_config_given_before_replay_is_the_current_one(recorded, tmp_path: Path) -> None:
    """``modelyard --config MINE.yaml replay --config CANDIDATE.yaml``: MINE was silently ignored — the current
    config came from the usual lookup (here none: the embedded default, whose log does not exist)."""
    log = recorded["full"]
    cur, cand = tmp_path / "current.yaml", tmp_path / "candidate.yaml"
    cur.write_text(yaml.safe_dump(config(log).model_dump(mode="json", exclude_defaults=True)))
    cand.write_text(yaml.safe_dump(config(log, qwen_slots=1).model_dump(mode="json", exclude_defaults=True)))
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"), COLUMNS="300")
    run = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(cur), "replay", "--config", str(cand),
                          "--since", "2025-10-01", "--until", "2025-10-31"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert f"current {cur} vs candidate {cand}" in " ".join(run.stdout.split()), run.stdout[:400]
    assert "two configs given" not in run.stderr  # for replay both mean something


def test_a_benched_model_takes_its_figures_from_the_bench(recorded, tmp_path: Path) -> None:
    """A model with no production traffic but a `modelyard bench` run: its TTFT and speed come from there."""
    import shutil

    from modelyard.ledger import bench_runs

    log = tmp_path / "log.sqlite3"
    shutil.copy(recorded["full"], log)
    conn = connect(log)
    for rep in range(5):
        bench_runs.save_run(conn, {"run_id": "b1", "ts": T0, "suite": "s", "agent": "chat", "task": "t",
                                   "model": "mistral", "provider": "openai", "is_local": 1, "rep": rep, "k": 5,
                                   "concurrency": 1, "passed": 1, "outcome": "ok", "ttft_ms": 250.0,
                                   "total_ms": 250.0 + 1000.0, "tokens_in": 40, "tokens_out": 31})
    conn.close()
    data = config(log).model_dump(mode="json", exclude_defaults=True)
    data["models"]["mistral"] = {"provider": "openai", "max_concurrent": 2}
    data["agents"]["chat"]["primary"] = "mistral"
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(data))
    from modelyard.config import load_config

    r = replay(LogStore(log), config(log), load_config(path), WINDOW, parallel=False)
    assert r.assumed["mistral"] == "from `modelyard bench`: TTFT 250 ms, 30 tok/s"
    assert r.candidate.models["mistral"]["served"] > 0


def test_replay_reads_the_log_on_either_backend(log_backend) -> None:
    """The same recorded traffic replays from SQLite and from PostgreSQL (the real server)."""
    cfg = config(log_backend.path)
    record(cfg, arrivals(400, seed=5), writer=log_backend.writer(["qwen", "gemma"]))
    measured = build_report(log_backend.connect(), cfg, WINDOW).totals.summary()
    r = replay(log_backend.store, cfg, cfg, WINDOW, parallel=False)
    assert r.current.totals["requests"] == measured["requests"] == 400
    assert r.validation["fallback_rate"][0] == measured["fallback_rate"]
    assert abs(r.current.totals["fallback_rate"] - measured["fallback_rate"]) <= 0.03


def test_a_spend_cap_in_the_candidate_is_replayed_day_by_day(recorded, tmp_path: Path) -> None:
    """The cap counts the simulated spend in simulated UTC days: the candidate's cloud spend drops and
    the requests it moves fall back for reason spend_cap."""
    log = recorded["full"]
    data = config(log).model_dump(mode="json", exclude_defaults=True)
    current = replay(LogStore(log), config(log), config(log), WINDOW, parallel=False)
    per_day = current.current.cost_per_month_usd / 30
    data["models"]["haiku"]["spend_cap"] = {"usd": per_day / 4, "per": "day"}
    path = tmp_path / "capped.yaml"
    path.write_text(yaml.safe_dump(data))
    from modelyard.config import load_config

    r = replay(LogStore(log), config(log), load_config(path), WINDOW, parallel=False)
    assert r.candidate.cost_per_month_usd < current.current.cost_per_month_usd / 2
    assert "spend_cap" in to_dict(r)["candidate"]["fallback_reasons"]


def test_validation_of_a_wait_near_zero_is_said_in_ms_not_as_a_share_of_nothing() -> None:
    """A log that never queued (0.03 ms) replayed with a 182 ms p95 read '+594900%', a 0 ms p50 '-100%'."""
    from types import SimpleNamespace

    from modelyard.replay.summary import validation_rows

    rows = validation_rows(SimpleNamespace(validation={  # type: ignore[arg-type]
        "queue_wait_p50_ms": (0.02, 0.0), "queue_wait_p95_ms": (0.03, 182.0), "latency_p50_ms": (6624.0, 6504.0),
        "fallback_rate": (0.4, 0.4)}))
    errors = {key: err for key, _, _, err in rows}
    assert errors == {"queue_wait_p50_ms": "+0 ms", "queue_wait_p95_ms": "+182 ms", "latency_p50_ms": "-2%",
                      "fallback_rate": "+0.0 points"}


def test_a_config_with_shared_state_replays_in_this_process_alone(recorded, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A team config has `state: redis://…`. Its replay ran the simulated router against that Redis: on simulated
    time every real call 'overran' its bound, the state went down with no share, and not one request was answered
    (87 / 0) — while a reachable Redis got the simulated requests' slots. The replay keeps its state here."""
    monkeypatch.delenv("MODELYARD_STATE", raising=False)
    log = recorded["full"]
    data = config(log).model_dump(mode="json", exclude_defaults=True)
    data["state"] = {"url": "redis://127.0.0.1:1/0", "prefix": "never-touched"}
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data))
    from modelyard.config import load_config

    team = load_config(path)
    assert team.state is not None
    plain = replay(LogStore(log), config(log), config(log), WINDOW, parallel=False)
    shared = replay(LogStore(log), team, team, WINDOW, parallel=False)
    assert shared.current.totals["served"] == plain.current.totals["served"] > 0
    assert shared.current.totals["fallback_rate"] == plain.current.totals["fallback_rate"]


def test_requests_sent_when_the_last_answer_came_replay_without_queueing(tmp_path: Path) -> None:
    """One client sending its next request as its last answer arrives, on a model with one slot whose TTFT varies
    0.5-1.5 s: nothing ever queued, but the replay drew each service time afresh, so a request drawn slower than
    it was overlapped the next one: wait p95 +207 ms (+1.6 s once TTFTs were drawn from all samples, not the
    fastest third of prompts of one size). A request answered by the same model keeps its own times now."""
    import asyncio
    import contextlib
    import random

    from modelyard.errors import ModelyardError
    from modelyard.ledger import LogWriter
    from modelyard.router import ModelPool, Router
    from modelyard.router.clock import VirtualTimeLoop
    from modelyard.types import ChatRequest, Chunk, Message, Usage
    from tests.replay.traffic import KnownBackend, backends

    class Varying(KnownBackend):
        async def stream(self, request, timeouts):  # type: ignore[no-untyped-def,override]
            await asyncio.sleep(self.ttft * self.rng.uniform(0.5, 1.5))
            yield Chunk("text", text="x")
            await asyncio.sleep((self.tokens - 1) / self.tps)
            yield Chunk("usage", usage=Usage(50, self.tokens))
            yield Chunk("done", stop_reason="stop")

    log = tmp_path / "closed.sqlite3"
    cfg = config(log, qwen_slots=1)
    writer = LogWriter(cfg.log.path, local_models=[n for n, m in cfg.models.items() if m.is_local])
    providers = {**backends(cfg), "qwen": Varying("qwen", cfg.models["qwen"], 1.0, 25, 40)}
    router = Router(cfg, pool=ModelPool(cfg, providers=providers), sink=writer.submit)
    pause = random.Random(3)

    async def one_client() -> None:
        for _ in range(200):
            with contextlib.suppress(ModelyardError):
                await router.complete("chat", ChatRequest(messages=[Message("user", "hello")]))
            await asyncio.sleep(pause.uniform(0.001, 0.01))

    loop = VirtualTimeLoop(T0)
    try:
        loop.run_until_complete(one_client())
    finally:
        loop.close()
    writer.close()
    r = replay(LogStore(log), cfg, cfg, WINDOW, parallel=False)
    assert r.validation["queue_wait_p95_ms"][0] < 1
    assert r.current.totals["queue_wait_p95_ms"] < 1, r.current.totals
    assert r.current.totals["latency_p50_ms"] == pytest.approx(r.validation["latency_p50_ms"][0], rel=0.02)


def test_a_model_skipped_here_for_its_key_is_said(recorded, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay run from a shell without the service's keys skipped the cloud model that answered in the log, as
    the router would here; the validation read spend -100% and local share +15 points with nothing saying why."""
    monkeypatch.delenv("MODELYARD_TEST_REPLAY_NO_KEY", raising=False)
    log = recorded["full"]
    data = config(log).model_dump(mode="json", exclude_defaults=True)
    data["models"]["haiku"]["api_key_env"] = "MODELYARD_TEST_REPLAY_NO_KEY"
    data["models"]["phi"] = {"provider": "openai", "api_key_env": "MODELYARD_TEST_REPLAY_NO_KEY"}
    path = tmp_path / "keyed.yaml"
    path.write_text(yaml.safe_dump(data))
    from modelyard.config import load_config

    r = replay(LogStore(log), config(log), load_config(path), WINDOW, parallel=False)
    why = r.unavailable["haiku"]
    assert why.startswith("environment variable MODELYARD_TEST_REPLAY_NO_KEY is not set"), why
    assert "request(s) in the log, so the replay cannot match" in why
    assert r.unavailable["phi"] == (
        "environment variable MODELYARD_TEST_REPLAY_NO_KEY is not set: `export MODELYARD_TEST_REPLAY_NO_KEY=<the key>` "
        "in the shell that runs modelyard (models.phi.api_key_env names it; modelyard reads no .env file)"
    )  # never logged
    assert set(r.unavailable) == {"haiku", "phi"} and to_dict(r)["unavailable"] == r.unavailable
