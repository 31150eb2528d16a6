"""Write fresh_belle.jsonl: held-out Chinese instructions from the BELLE project's evaluation set (round 30).

Source: LianjiaTech/BELLE (Apache-2.0) ``eval/eval_set.json`` at 645084d (the file as of fd6a876, 2023-04-17) —
1,000 Chinese instructions the BELLE authors assembled to evaluate Chinese instruction following, each with its
``class``: open qa 285, brainstorming 179, rewrite 131 (translation among them), generation 98, math 75,
classification 65, closed qa 52, summarization 40, code 38, extract 37. No set here reads that repository. Round 29
asked for a new non-English held-out set before more is built on its lever (the foreign members' second fit); the
two non-English sets held out until now (foreign, evalsforeign) are ShareGPT's and OpenAI Evals' — this is a third
population, everyday instructions in one language, not exam questions.
Candidates: every question, none within a word TF-IDF cosine of 0.5 of a line of any set here (fresh_* and the
correction pools included), of a role or config example, or of an earlier candidate (mkfresh_common.py's rule);
of those kept, a seeded 16 of each class (160): stratified, so that the chores (rewrite, extract, classification,
summarization) and code are not a handful each, as they would be in a plain draw (open qa alone is 28.5%).

Labelled prompt by prompt by POLICY.md by round 30's helper "routes31", who wrote no role or config example, from
the listing alone (``--list``, the class not shown), and committed before anything routed them. Labelling rule: the
request decides, not the topic, nor the source's class — code and configs engineer (a question about a programming
concept also research); maths and logic research, engineer; knowledge, explanations, advice research (everyday advice
and opinions also chat); lists of ideas, plans and outlines writer, research (research first where it is knowledge
listed); compositions writer; a chore on given text (extract, classify, convert, correct, translate) utility with its
POLICY.md co-labels; rewriting given prose for style writer, utility; a summary of given text utility, writer,
research; a question answered from a given passage research, utility; "how do you say …" research, utility, writer.
1,000 candidates, 5 dropped by the rule above, 995 kept, 160 picked (16 of each class), all labelled (none marked
``x``). Best fit: research 61, utility 46, writer 30, engineer 19, chat 4; 108 accept more than one agent (accepted
anywhere: research 108, utility 74, writer 54, engineer 37, chat 11); always-research scores 67.5%. Short (median
48 characters, up to 552): terse instructions with their input pasted after a colon or a line break, word
problems, Python functions to write, dialogues and tables to answer from, translations both ways. **Caveats:** one
labeller; every line is in Chinese (Simplified), so this reads the multilingual path only; chat rests on 4 prompts.
Run: python mkfresh_belle.py EVAL_SET_JSON [--list] > fresh_belle.jsonl
"""
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from mkfresh_common import HERE, kept_fresh, known_and_pools, write

PER_CLASS = 16
LABELS = """0 e|1 wr|2 w|3 re|4 wu|5 e|6 uwr|7 wu|8 rc|9 wu|
10 wu|11 w|12 uwr|13 ru|14 re|15 uw|16 wr|17 e|18 uwr|19 ur|
20 ur|21 r|22 re|23 r|24 urw|25 re|26 e|27 wr|28 ur|29 ur|
30 ru|31 ru|32 w|33 w|34 ru|35 ur|36 ru|37 e|38 er|39 ru|
40 e|41 e|42 w|43 ru|44 re|45 w|46 rc|47 ur|48 wu|49 ru|
50 urw|51 uwr|52 wu|53 cr|54 e|55 wr|56 er|57 e|58 r|59 r|
60 w|61 wu|62 w|63 cr|64 re|65 er|66 wu|67 w|68 r|69 r|
70 wr|71 e|72 ru|73 r|74 ur|75 uwr|76 r|77 cr|78 w|79 ru|
80 ru|81 re|82 uwr|83 rw|84 re|85 e|86 ru|87 w|88 ur|89 ur|
90 uw|91 re|92 r|93 cr|94 uw|95 ru|96 re|97 ru|98 urw|99 re|
100 ur|101 ru|102 ur|103 ur|104 r|105 uwr|106 e|107 e|108 r|109 ur|
110 e|111 ur|112 u|113 ur|114 rc|115 r|116 r|117 uw|118 rc|119 ur|
120 uw|121 w|122 ur|123 e|124 w|125 re|126 u|127 w|128 uw|129 re|
130 ru|131 ur|132 urw|133 r|134 w|135 rc|136 wu|137 ur|138 rwc|139 ur|
140 ru|141 re|142 r|143 re|144 urw|145 urw|146 rc|147 re|148 ru|149 urw|
150 re|151 uw|152 r|153 u|154 uwr|155 u|156 w|157 ru|158 re|159 e|"""


def known_but_belle_dev(own: str) -> list[str]:
    """mkfresh_common.known_and_pools without belle_dev.jsonl's lines (mkbelle_dev.py: the rest of this collection,
    drawn after this file), so that both draws repeat once both files are here."""
    dev = HERE / "belle_dev.jsonl"
    drawn = {json.loads(x)["text"] for x in dev.open(encoding="utf-8") if x.strip()} if dev.exists() else set()
    return [t for t in known_and_pools(own) if t not in drawn]


def candidates(path: str) -> list[dict]:
    """Every question of the eval set, with its line number and class (its name's spaces normalised)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"prompt": r["question"].strip(), "id": i, "class": " ".join(r["class"].split())}
            for i, r in enumerate(rows) if r["question"].strip()]


def draw(rows: list[dict], own: str, seed: int, per_class: int) -> list[dict]:
    """The rows fresh against the sets here (:func:`known_but_belle_dev`), ``per_class`` of each class, seeded."""
    by_class: dict[str, list[dict]] = defaultdict(list)
    for row in kept_fresh(rows, known_but_belle_dev(own)):
        by_class[row["class"]].append(row)
    rng = random.Random(seed)
    picked = [row for name in sorted(by_class)
              for row in rng.sample(by_class[name], min(per_class, len(by_class[name])))]
    rng.shuffle(picked)
    return picked


def sample(path: str) -> list[dict]:
    return draw(candidates(path), "fresh_belle.jsonl", 20261201, PER_CLASS)


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "belle:eval_set:{id}:{class}", "belle", "--list" in sys.argv)


if __name__ == "__main__":
    main()
