"""Routing labels with ``log.url``: every host's corrections reach the real PostgreSQL, ``routing learn``
there decides for the team, and each host's fast path trains on that set from its own file."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml
from tests.agents.test_learning import AGENTS, KIND
from tests.fakes.server import poll
from tests.pg import free_port
from typer.testing import CliRunner

from modelyard.agents.learning import learned_labels
from modelyard.agents.orchestrator import Orchestrator
from modelyard.cli import app
from modelyard.config import load_config
from modelyard.ledger import forward
from modelyard.ledger.db import connect
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.labels import LabelSource, add_label

runner = CliRunner()


def host_config(tmp_path: Path, host: str, url: str) -> Path:
    """One host's config: the same agents and PostgreSQL, its own spool file."""
    agents = {name: {**cfg, "primary": "m", "role": "none"} for name, cfg in AGENTS.items()}
    agents["router"] = {"primary": "m", "consumers": ["coder", "sorter"], "role": "none"}
    data = {"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}}, "agents": agents,
            "default_agent": "talker", "orchestration": {"agent": "router", "threshold": 0.0},
            "log": {"path": str(tmp_path / f"{host}.sqlite3"), "url": url}}
    path = tmp_path / f"{host}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def pg_labels(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute("SELECT origin, text, agent FROM routing_labels ORDER BY id")]


def test_the_team_learns_from_every_hosts_corrections(tmp_path: Path, pg_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forward, "TEAM_LABELS_EVERY", 0.2)  # how often a running forwarder looks (30 s in use)
    a, b = host_config(tmp_path, "a", pg_url), host_config(tmp_path, "b", pg_url)
    held_out = KIND[::4]
    taught = [t for i, t in enumerate(KIND) if i % 4]
    for i, text in enumerate(taught):  # the corrections are split between the two hosts
        result = runner.invoke(app, ["route", text, "--label", "sorter", "-c", str(a if i % 2 else b)])
        assert result.exit_code == 0 and "recorded" in result.output, result.output
    running_a = Forwarder(tmp_path / "a.sqlite3", pg_url)  # host A's serve, forwarding in the background
    try:
        assert running_a.flush(30)
        eval_file = tmp_path / "eval.jsonl"
        eval_file.write_text("".join(json.dumps({"text": t, "accept": ["sorter"]}) + "\n" for t in held_out))
        result = runner.invoke(app, ["routing", "learn", "--eval", str(eval_file), "--json", "-c", str(b)])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["accepted"] and report["n_new"] == len(taught) == 15, report  # both hosts' labels
        assert sorted(t for _, t, _ in pg_labels(pg_url)) == sorted(taught)
        # host B (where learn ran) trains on the team's labels at once, host A once its forwarder looked
        assert sorted(lab.text for lab in learned_labels(load_config(b))) == sorted(taught)
        poll(lambda: len(learned_labels(load_config(a))) == 15, timeout=10)
        after = Orchestrator.from_config(load_config(a), learned_labels(load_config(a)))
        assert all(after.decide_fast(t).agent == "sorter" for t in held_out)
        # `routing labels` on any host lists the team's; a label forgotten there leaves every host's copy
        listed = json.loads(runner.invoke(app, ["routing", "labels", "-n", "50", "--json", "-c", str(a)]).output)
        assert sorted(e["text"] for e in listed["labels"]) == sorted(taught)
        assert all(e["trusted"] for e in listed["labels"])
        mistake = listed["labels"][0]
        assert runner.invoke(app, ["routing", "forget", str(mistake["id"]), "-c", str(b)]).exit_code == 0
        poll(lambda: mistake["text"] not in {lab.text for lab in learned_labels(load_config(a))}, timeout=10)
        assert len(learned_labels(load_config(a))) == 14
    finally:
        running_a.close()
    taught.remove(mistake["text"])
    # PostgreSQL gone: the fast path still trains on the team's labels, from the local copy, at once
    dead = yaml.safe_load(b.read_text())
    dead["log"]["url"] = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    b.write_text(yaml.safe_dump(dead))
    assert sorted(lab.text for lab in learned_labels(load_config(b))) == sorted(taught)


def test_a_relabel_replaces_its_label_everywhere_and_waits_for_the_next_learn(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "spool.sqlite3"
    conn = connect(path)
    add_label(conn, "total my taxi receipts", "coder", LabelSource.CHAT, request_id="req-1", previous="talker")
    add_label(conn, "sort these names", "sorter", LabelSource.CLI)
    conn.close()
    forwarder = Forwarder(path, pg_url)
    try:
        assert forwarder.flush(30)
        first = pg_labels(pg_url)
        assert (first[0][0], first[0][2]) == ("request:req-1", "coder")
        assert first[1][0].endswith(f"{path.resolve()}#2")  # no request: named by host, spool and local id
        conn = connect(path)
        add_label(conn, "total my taxi receipts", "sorter", LabelSource.RATE, request_id="req-1", previous="coder")
        conn.close()
        assert forwarder.flush(30)
    finally:
        forwarder.close()
    again = pg_labels(pg_url)
    assert [(o, a) for o, _, a in again] == [(first[1][0], "sorter"), ("request:req-1", "sorter")]
    # sent twice (a forwarder killed before it noted its progress): nothing changes
    conn = connect(path)
    conn.execute("INSERT INTO _label_outbox (label_id) SELECT id FROM routing_labels")
    conn.close()
    forwarder = Forwarder(path, pg_url)
    try:
        assert forwarder.flush(30)
    finally:
        forwarder.close()
    assert pg_labels(pg_url) == again
