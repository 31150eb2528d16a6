"""Write fresh_seed.jsonl: held-out app-style tasks from the self-instruct seed set (round 17).

Source: yizhongw/self-instruct (Apache-2.0) ``data/seed_tasks.jsonl`` at 0b26cca — the 175 tasks the self-instruct
authors wrote by hand to start their generation (Wang et al. 2023): everyday questions, advice, maths, code to write
or explain, SQL, regexes, compositions (emails, poems, jokes, slogans), edits, classification and extraction, each
with its first instance's input pasted below the instruction as a person would send it. No set here used this file:
dev/test took the same repository's ``human_eval/user_oriented_instructions.jsonl`` (another 252 tasks, written
for evaluation), so this is the same authors' hand, other tasks. Candidates: every task, the instruction and its
first instance's input joined by a blank line, none within a word TF-IDF cosine of 0.5 of a line of any set here
(fresh_* and the correction pools included), of a role or config example, or of an earlier candidate
(mkfresh_common.py's rule); all kept are used, in a seeded order.

Labelled prompt by prompt by POLICY.md by round 17's helper "routes17", who wrote no role or config example, from
the listing alone (``--list``), and committed before anything routed them. Labelling rule: the request decides, not
the topic — code, SQL, regexes, algorithms engineer (a conceptual question about programming also research); maths
and logic problems research, engineer; knowledge, explanations and advice research (everyday advice also chat);
compositions writer; a chore on text or data given in the prompt (extract, classify, tag, convert, fix grammar)
utility with its POLICY.md co-labels; editing pasted prose for style writer, utility; jokes chat, writer.
175 candidates, 9 dropped by the rule above, 166 kept, all labelled (none marked ``x``). Best fit: research 74,
writer 42, utility 35, engineer 13, chat 2; 98 accept more than one agent (accepted anywhere: research 108, writer
69, utility 49, chat 25, engineer 21); always-research scores 65.1%. One labeller; engineer and chat figures rest on
a handful of prompts.
Run: python mkfresh_seed.py SEED_TASKS_JSONL [--list] > fresh_seed.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkfresh_common import kept_fresh, known_and_pools, write

LABELS = """0 r|1 e|2 u|3 wu|4 re|5 u|6 uw|7 r|8 w|9 ur|
10 r|11 r|12 w|13 ur|14 u|15 wc|16 rw|17 r|18 w|19 r|
20 u|21 rw|22 uw|23 r|24 re|25 rc|26 r|27 ur|28 rc|29 ur|
30 r|31 rc|32 wr|33 ru|34 rw|35 r|36 r|37 rc|38 uwr|39 r|
40 rw|41 r|42 e|43 ur|44 ur|45 ur|46 re|47 ur|48 r|49 w|
50 wc|51 rw|52 rw|53 ru|54 uw|55 re|56 ur|57 rw|58 rc|59 w|
60 wc|61 r|62 rw|63 rw|64 r|65 ur|66 uwr|67 wc|68 e|69 r|
70 r|71 rw|72 wr|73 r|74 rw|75 r|76 re|77 rc|78 e|79 w|
80 wu|81 w|82 ru|83 rc|84 r|85 wu|86 w|87 r|88 rw|89 w|
90 cw|91 rw|92 e|93 rc|94 wr|95 e|96 wc|97 wr|98 r|99 w|
100 u|101 ur|102 rwc|103 r|104 rw|105 wu|106 ur|107 w|108 wr|109 e|
110 r|111 wu|112 w|113 r|114 rw|115 r|116 uwr|117 ur|118 e|119 uwr|
120 ru|121 rwc|122 wr|123 r|124 rc|125 re|126 w|127 wc|128 ur|129 r|
130 e|131 wc|132 ur|133 rc|134 ur|135 wu|136 ru|137 ew|138 w|139 wu|
140 ur|141 wr|142 ur|143 w|144 ur|145 wrc|146 rc|147 e|148 ur|149 w|
150 w|151 cw|152 r|153 ur|154 e|155 ur|156 rc|157 w|158 w|159 re|
160 rue|161 wu|162 r|163 rc|164 e|165 u|"""


def prompt(task: dict) -> str:
    given = task["instances"][0]["input"].strip()
    return task["instruction"].strip() + (f"\n\n{given}" if given else "")


def sample(path: str) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["prompt"] = prompt(row)
    kept = kept_fresh(rows, known_and_pools("fresh_seed.jsonl"))
    random.Random(20261130).shuffle(kept)
    return kept


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "name", "self-instruct-seed:{id}", "seed", "--list" in sys.argv)


if __name__ == "__main__":
    main()
