"""Write fresh_seabench.jsonl: held-out requests written in Indonesian, Vietnamese and Thai, SeaBench (round 40).

Source: DAMO-NLP-SG/SeaBench at bc3097d (``data/public-questions.jsonl``, removed from the repository in a later
commit, e9dd2a5, when the data moved to the SeaLLMs/SeaBench dataset): the 300 public questions of SeaBench
(Liu et al., "SeaExam and SeaBench", Findings of NAACL 2025) — open-ended multi-turn requests written for Southeast
Asian users in Indonesian, Thai and Vietnamese (100 each), ten kinds of 30 (MT-Bench's eight — writing, role-play,
reasoning, maths, coding, extraction, STEM, humanities — plus everyday life and safety), reviewed by native
linguists. Each question's first turn (``user_1``) is a message as it would reach the orchestrator. No set here
reads it: the languages the brief of round 40 names as weak (Indonesian and Vietnamese writing requests), and Thai,
which no tuning file holds. Candidates: every first turn, none within a word TF-IDF cosine of 0.5 of a line of any
set here (fresh_* and the correction pools included), of a role or config example, or of an earlier candidate
(mkfresh_common.py's rule); then a seeded draw (``random.Random(40)``) of 4 of each kind in each language (120).

Labelled prompt by prompt by POLICY.md by round 40's helper "route40intl" (who wrote no role or config example
before labelling) from the listing alone (``--list``, the kind not shown), and committed in a commit of its own
before anything routed them. Labelling rule: the request decides, not the topic; compositions (stories, poems,
posts, letters, speeches, slogans) writer; chores on given text (extract, classify, convert, translate, fix)
utility first; knowledge, advice and explanations research; maths research, engineer; code and programming
questions engineer; persona set-ups to speak as chat, writer (research second where the persona is an expert who
explains); harmful requests by what they ask (routing does not refuse; the agent does).
300 candidates, 0 dropped by the rule above, 120 drawn, all labelled (none marked ``x``). Best fit: research 69,
writer 21, engineer 12, utility 11, chat 7; 60 accept more than one agent (accepted anywhere: research 81, writer 31,
chat 30, engineer 26, utility 13); always-research scores 67.5%. Median 182 characters (26–2,984).
**Caveats:** one labeller, not a native speaker of any of the three languages; 120 lines (a 95% interval of about
±7–8 points); written to test models, not typed by users.
**Licence:** the repository states none; the lines are here for evaluation only — delete the file and its line in
``routing_sets.py`` where that does not suit you (only the routing benchmarks and tests/bench/test_routing_sets.py
read it).
Run: python mkfresh_seabench.py PUBLIC_QUESTIONS_JSONL [--list] > fresh_seabench.jsonl
"""
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from mkfresh_common import HERE, kept_fresh, known_and_pools, write

LABELS = """0 e|1 e|2 e|3 e|4 ur|5 ur|6 ur|7 ur|8 r|9 r|
10 r|11 r|12 r|13 r|14 r|15 r|16 re|17 re|18 re|19 re|
20 rc|21 rc|22 rc|23 rc|24 wc|25 rc|26 cw|27 cw|28 w|29 rc|
30 rc|31 rcw|32 r|33 r|34 r|35 r|36 w|37 w|38 wu|39 w|
40 e|41 e|42 e|43 e|44 ur|45 ur|46 ur|47 ur|48 r|49 r|
50 r|51 r|52 cr|53 r|54 r|55 r|56 re|57 re|58 re|59 re|
60 rc|61 rc|62 rc|63 rc|64 wc|65 wc|66 w|67 cw|68 r|69 rw|
70 wc|71 rc|72 r|73 r|74 r|75 r|76 w|77 w|78 w|79 w|
80 e|81 e|82 e|83 e|84 wu|85 ur|86 ur|87 uw|88 r|89 rw|
90 r|91 r|92 r|93 r|94 re|95 r|96 re|97 re|98 re|99 re|
100 rc|101 rc|102 rc|103 rc|104 cw|105 cw|106 wc|107 cw|108 w|109 rc|
110 r|111 r|112 re|113 r|114 r|115 r|116 w|117 w|118 wr|119 w|"""
PER_KIND = 4


def candidates(path: str) -> list[dict]:
    """Every question's first turn, with its id, language and kind."""
    rows = [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]
    return [{"prompt": r["user_1"].strip(), "id": r["unit_id"], "lang": r["lang"], "kind": r["type"]} for r in rows]


def known(own: str) -> list[str]:
    """:func:`mkfresh_common.known_and_pools` for ``own`` without seabench_dev.jsonl's lines (mkseabench_dev.py, drawn
    from what this file did not take), so that both draws repeat with both files present."""
    dev = HERE / "seabench_dev.jsonl"
    mine = {json.loads(x)["text"] for x in dev.open(encoding="utf-8") if x.strip()} if dev.exists() else set()
    return [t for t in known_and_pools(own) if t not in mine]


def per_language_and_kind(rows: list[dict], per_kind: int, seed: int) -> list[dict]:
    """A seeded draw of ``per_kind`` rows of each (language, kind), in that order."""
    groups: defaultdict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["lang"], row["kind"])].append(row)
    rng = random.Random(seed)
    return [row for key in sorted(groups) for row in rng.sample(groups[key], min(per_kind, len(groups[key])))]


def sample(path: str) -> list[dict]:
    return per_language_and_kind(kept_fresh(candidates(path), known("fresh_seabench.jsonl")), PER_KIND, 40)


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "seabench:{id}", "seabench", "--list" in sys.argv)


if __name__ == "__main__":
    main()
