"""Every labelled set of benchmarks/routing_eval/ is read by the routing benches (issue #10, round 18).

bench_routing_learn.py kept its own list of held-out sets and five sets added later (evalsforeign, fresh_bfcl,
fresh_forge, fresh_arena, fresh_seed) were never read by it: its "without lowering it elsewhere" verdict left out
the newest, hardest sets. The rule here comes from routing_eval/README.md's table, not from the list under test: a
``dev`` or ``*_dev`` / ``longdev*`` file may be tuned on, a ``corrections_*`` file is a pool of corrections, every other
file is held out — and every held-out file must be in the list the benches read.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks import bench_routing_learn

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"


def held_out_files() -> set[str]:
    names = {f.stem for f in EVAL.glob("*.jsonl")}
    tuning = {n for n in names if n == "dev" or n.endswith("_dev") or n.startswith("longdev")}
    pools = {n for n in names if n.startswith("corrections_")}
    return names - tuning - pools


def test_the_learning_bench_reads_every_held_out_set() -> None:
    held = held_out_files()
    assert {"test", "fresh_seed", "fresh_arena2", "evalsforeign", "clinc_heldout"} <= held
    read = set(bench_routing_learn.HELD_OUT) | {getattr(bench_routing_learn, "CLINC_HELD_OUT", "clinc_heldout")}
    assert held - read == set(), f"held-out sets the learning bench never reads: {sorted(held - read)}"


def test_no_tuning_file_is_read_as_held_out() -> None:
    from benchmarks.routing_sets import HELD_OUT, TUNING

    assert not set(TUNING) & set(HELD_OUT)
    assert set(HELD_OUT) <= held_out_files()  # and each one exists
    assert {f"routing_{name}" for name in TUNING} >= {f.stem for f in (EVAL.parents[1] / "src" / "modelyard" / "agents"
                                                                        / "data").glob("routing_*.jsonl")}


def test_the_language_tuning_file_is_what_its_script_writes() -> None:
    """Round 38's langs_dev.jsonl — 20 requests in each of six languages the language check had no function words
    for (Vietnamese, Finnish, Polish, Turkish, Czech) or too few to read short requests by (Indonesian), written in
    the kinds of the Aya dataset (CohereForAI/aya_dataset), the Vietnamese Alpaca translations telexyz/GPT4VN lists
    and Open Assistant's first messages — is tuning data the benches read, and is exactly what mklangs_dev.py writes
    (the committed file cannot drift from its labelled source)."""
    import json
    import runpy

    from benchmarks.routing_sets import TUNING

    assert "langs_dev" in TUNING
    script = runpy.run_path(str(EVAL / "mklangs_dev.py"))
    written = script["rows"]()
    committed = [json.loads(line) for line in (EVAL / "langs_dev.jsonl").read_text(encoding="utf-8").splitlines()]
    assert committed == written
    by_language: dict[str, int] = {}
    for row in committed:
        assert row["accept"] and set(row["accept"]) <= {"chat", "research", "writer", "engineer", "utility"}
        by_language[row["style"]] = by_language.get(row["style"], 0) + 1
    assert by_language == dict.fromkeys(script["LANGUAGES"].values(), 20)
    assert {row["accept"][0] for row in committed} == {"chat", "research", "writer", "engineer", "utility"}


def test_round40s_sets_are_read_where_they_belong() -> None:
    """Round 40's new files: fresh_coach (the CoachLM150 test set's English instructions, lunyiliu/CoachLM, held out)
    and alpaca_dev (Alpaca's raw pairs from the same repository's Expert Revision Dataset, a tuning file). Both come
    from one repository, so the tuning file must hold no near-copy of a held-out line (mkfresh_common.py's rule: a
    word TF-IDF cosine of 0.5), and every line must carry POLICY.md's agents only."""
    import json
    import sys

    from benchmarks.routing_sets import HELD_OUT, TUNING

    assert "fresh_coach" in HELD_OUT and "alpaca_dev" in TUNING
    rows = {name: [json.loads(line) for line in (EVAL / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
            for name in ("fresh_coach", "alpaca_dev")}
    assert (len(rows["fresh_coach"]), len(rows["alpaca_dev"])) == (140, 148)
    for row in rows["fresh_coach"] + rows["alpaca_dev"]:
        assert row["accept"] and set(row["accept"]) <= {"chat", "research", "writer", "engineer", "utility"}
    sys.path.insert(0, str(EVAL))
    try:
        from mkfresh_common import fresh
    finally:
        sys.path.remove(str(EVAL))
    held = [r["text"] for r in rows["fresh_coach"]]
    assert all(fresh([r["text"] for r in rows["alpaca_dev"]], held))
