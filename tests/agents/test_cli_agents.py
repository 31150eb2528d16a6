"""``modelyard route`` and ``modelyard eval-routing`` end to end (CLI runner, embedded default config)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.paths import embedded_default_config

LABELS = Path(__file__).parent.parent / "data" / "routing_labels.jsonl"
CONFIG = str(embedded_default_config())
runner = CliRunner()


def test_route_json_prints_the_decision_without_running_it() -> None:
    result = runner.invoke(app, ["route", "refactor this function and add unit tests", "--json", "-c", CONFIG])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["agent"] == "engineer" and out["method"] == "fast"
    assert '"method": "fast",' in result.output  # the enum's value, as printed before it was one
    assert out["confidence"] >= out["threshold"] and out["ms"] > 0
    assert set(out["scores"]) == {"chat", "engineer", "research", "writer", "utility"}


def test_route_human_output_and_empty_text() -> None:
    result = runner.invoke(app, ["route", "hello there!", "--fast-only", "-c", CONFIG])
    assert result.exit_code == 0 and result.output.startswith("chat  confidence")
    assert runner.invoke(app, ["route", "  ", "-c", CONFIG]).exit_code == 2


def test_route_takes_the_text_as_several_words() -> None:
    """`route refactor this function …` unquoted was refused: 'Got unexpected extra argument(s)'."""
    words = runner.invoke(app, ["route", "refactor", "this", "function", "--json", "-c", CONFIG])
    quoted = runner.invoke(app, ["route", "refactor this function", "--json", "-c", CONFIG])
    assert words.exit_code == 0, words.output
    assert json.loads(words.output)["scores"] == json.loads(quoted.output)["scores"]  # the same text, routed


def test_eval_routing_reports_accuracy_precision_recall_and_confusion() -> None:
    result = runner.invoke(app, ["eval-routing", str(LABELS), "--json", "-c", CONFIG])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 120 and report["accuracy"] >= 0.85
    assert set(report["per_agent"]) <= {"chat", "engineer", "research", "writer", "utility"}
    matrix = report["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == 120
    assert sum(matrix[i][i] for i in range(len(matrix))) == round(report["accuracy"] * 120)
    table = runner.invoke(app, ["eval-routing", str(LABELS), "-c", CONFIG])
    assert "confusion matrix" in table.output and "precision" in table.output


def test_eval_routing_reports_each_kind_of_message(tmp_path: Path) -> None:
    """Round 8: short, long and non-Latin lines get their own accuracy and above-threshold precision."""
    mixed = tmp_path / "mixed.jsonl"
    lines = [{"text": "hello, how are you today?", "accept": ["chat"]},
             {"text": "写一首关于大海的诗", "accept": ["writer"]},
             {"text": "Why does this fail?\n" + "total = total + 1\n" * 80, "accept": ["engineer"]}]
    mixed.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    result = runner.invoke(app, ["eval-routing", str(mixed), "--json", "-c", CONFIG])
    assert result.exit_code == 0, result.output
    by_kind = json.loads(result.output)["by_kind"]
    assert {kind: m["accuracy"]["n"] for kind, m in by_kind.items()} == {"short": 1, "long": 1, "non-Latin": 1}
    table = runner.invoke(app, ["eval-routing", str(mixed), "-c", CONFIG])
    assert "by kind of message" in table.output and "non-Latin" in table.output


def test_eval_routing_rejects_bad_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "agent": "chat"}\n{"text": "x", "agent": "plumber"}\n')
    result = runner.invoke(app, ["eval-routing", str(bad), "-c", CONFIG])
    assert result.exit_code == 2 and "bad.jsonl:2: unknown agent 'plumber'" in result.output.replace("\n", "")


@pytest.mark.parametrize(("content", "said"), [
    # a labelled set saved as a pretty-printed array (jq ., json.dump(indent=2)): the '[' of line 1 was refused as
    # "bad.jsonl:1: not JSON (Expecting value: line 1 column 2 (char 1))" — the very message CSHaitao/LexiLaw#44's
    # user could not read (each record must be on its own line)
    ('[\n  {"text": "hi", "agent": "chat"},\n  {"text": "fix it", "agent": "engineer"}\n]\n',
     "bad.jsonl:1: JSON written over several lines, not JSON Lines: write each object on one line — jq -c '.[]' "
     "FILE > FILE.jsonl for an array, jq -c . FILE for objects"),
    ('{\n  "text": "hi",\n  "agent": "chat"\n}\n{\n  "text": "fix it",\n  "agent": "engineer"\n}\n',
     "bad.jsonl:1: JSON written over several lines, not JSON Lines"),
    ('[{"text": "hi", "agent": "chat"}, {"text": "fix it", "agent": "engineer"}]\n',
     "bad.jsonl:1: a JSON array, not one labelled line: JSON Lines takes one object per line — jq -c '.[]'"),
    # another tool's names (OpenAI evals' input/ideal, a dataset's prompt/label): "expected {"text": …}" alone
    ('{"prompt": "hi", "label": "chat"}\n', "(rename 'prompt' → 'text' and 'label' → 'agent')"),
    ('{"input": "hi", "ideal": "chat"}\n', "(rename 'input' → 'text' and 'ideal' → 'agent')"),
])
def test_eval_routing_says_what_to_change_in_a_file_of_another_shape(tmp_path: Path, content: str,
                                                                      said: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["eval-routing", str(bad), "-c", CONFIG])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and said in text, text
    assert "Expecting value" not in text, text


def test_eval_routing_calibrate_in_percent_says_the_share_to_write() -> None:
    """`--calibrate 95` (a percentage, as a report prints it) ran the whole evaluation and printed "calibrated for
    9500%: threshold 1.000" — a threshold that decides nothing fast; the config refuses `threshold: 35` with "write
    0.35 for 35%", the option now the same way, before any work."""
    result = runner.invoke(app, ["eval-routing", str(LABELS), "--calibrate", "95", "-c", CONFIG])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "--calibrate takes a precision as a share between 0 and 1, got 95: write 0.95 for 95%" in text, text
    assert runner.invoke(app, ["eval-routing", str(LABELS), "--calibrate", "0", "-c", CONFIG]).exit_code == 2


def test_eval_routing_reads_a_file_saved_with_a_bom(tmp_path: Path) -> None:
    """A JSONL saved by Notepad or Excel ("UTF-8 with BOM") was refused on its first line: "not JSON (Unexpected UTF-8
    BOM (decode using utf-8-sig))" — the config is read through its BOM silently, the labelled set now too."""
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_bytes("\ufeff".encode() + b'{"text": "hello there", "agent": "chat"}\r\n'
                         b'{"text": "fix the bug in my python function", "agent": "engineer"}\r\n')
    result = runner.invoke(app, ["eval-routing", str(with_bom), "--json", "-c", CONFIG])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n"] == 2


def test_chat_without_agent_goes_through_the_orchestrator(tmp_path: Path) -> None:
    import yaml

    from tests.agents.conftest import default_data
    from tests.fakes import OpenAIServer

    with OpenAIServer(reply_text="Here is the fix.") as fake:
        data = default_data()
        data["models"] = {"fake": {"provider": "openai", "endpoint": fake.url, "model": "fake"}}
        for cfg in data["agents"].values():
            cfg["primary"], cfg["fallbacks"] = "fake", []
        data["log"] = {"path": str(tmp_path / "log.sqlite3")}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        result = runner.invoke(app, ["chat", "-c", str(config)],
                               input="my python script crashes with a TypeError, fix it\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "Here is the fix." in result.output
    assert "orchestrator: engineer (fast" in result.output and "engineer → fake · " in result.output


def test_calibrating_on_a_handful_of_lines_says_the_threshold_is_not_measured(tmp_path: Path) -> None:
    """On 5 lines `--calibrate 0.95` printed 'threshold 0.818 (held-out folds: precision n/a, coverage 0.0%)'
    and nothing else: a threshold with nothing behind it, easy to paste into a config."""
    few = tmp_path / "few.jsonl"
    few.write_text("\n".join(json.dumps(r) for r in [
        {"text": "fix the bug in my python function", "agent": "engineer"},
        {"text": "write a poem about autumn", "agent": "writer"}, {"text": "hi there", "agent": "chat"},
        {"text": "summarize this paragraph: cats are nice", "accept": ["utility", "writer"]},
        {"text": "what are the latest findings on dark matter", "agent": "research"}]) + "\n")
    result = runner.invoke(app, ["eval-routing", str(few), "--calibrate", "0.95", "-c", CONFIG])
    assert result.exit_code == 0, result.output
    assert "precision n/a" in result.output and "5 lines are too few" in " ".join(result.output.split())


def test_calibrating_on_several_files_holds_each_file_out(tmp_path: Path) -> None:
    """Round 12: `eval-routing A B --calibrate P` reads both files as one set and judges each file with the
    threshold the other chose (a population held out whole, as unfamiliar traffic is); it took one file."""
    lines = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(json.dumps(r) for r in lines[::2]) + "\n")
    second.write_text("\n".join(json.dumps(r) for r in lines[1::2]) + "\n")
    result = runner.invoke(app, ["eval-routing", str(first), str(second), "--calibrate", "0.9", "--json", "-c", CONFIG])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == len(lines)
    cal = report["calibration"]
    assert cal["held_out"] == "each file" and list(cal["files"]) == ["first.jsonl", "second.jsonl"]
    assert [m["n"] for m in cal["files"].values()] == [len(lines[::2]), len(lines[1::2])]
    assert all(m["right"] <= m["decided_fast"] <= m["n"] for m in cal["files"].values())
    table = runner.invoke(app, ["eval-routing", str(first), str(second), "--calibrate", "0.9", "-c", CONFIG])
    assert "each file held out" in table.output and "second.jsonl: threshold" in table.output
    # the same file twice would count its lines twice (a narrower interval for nothing): refused, naming it
    twice = runner.invoke(app, ["eval-routing", str(first), str(tmp_path / "." / "first.jsonl"), "-c", CONFIG])
    assert twice.exit_code == 2 and "named twice" in twice.output
