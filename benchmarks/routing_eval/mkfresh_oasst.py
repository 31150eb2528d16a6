"""Write fresh_oasst.jsonl: held-out first messages people submitted to Open Assistant (round 32).

Source: LAION-AI/Open-Assistant (Apache-2.0, the repository and its data) at f1e6ed9,
``model/model_eval/manual/data/prompt_lottery_en_250_text.jsonl`` (added in 2a141e9, 2023-03-24): 250 English
initial prompts that volunteers typed into the Open Assistant collection site and that were waiting in its "prompt
lottery" (the queue from which new conversation trees are started) — one JSON string per line, people's own words,
typos and all: questions, advice, code to write or fix, stories and jokes, role-play set-ups, chores on pasted text.
No set here reads that file. unseen.jsonl took 90 prompts of AlpacaEval's ``oasst`` subset (OASST's released
first turns, a year's collection): the same site's users, other prompts — any near-copy is dropped below.
Candidates: every line, none within a word TF-IDF cosine of 0.5 of a line of any set here (fresh_* and the correction
pools included), of a role or config example, or of an earlier candidate (mkfresh_common.py's rule); of those kept,
a seeded 200 (the file has no classes to stratify by).

Labelled prompt by prompt by POLICY.md by round 32's helper "route35", who wrote no role or config example, from the
listing alone (``--list``), and committed before anything routed them. Labelling rule: the request decides, not the
topic — code, shell, configs engineer (a question about a programming concept or tool also research); maths and
logic research, engineer; knowledge, explanations, recommendations research (everyday advice, opinions, hypotheticals
and puzzles also chat); lists of ideas, plans and outlines writer, research; compositions writer; a chore on given text
(extract, classify, convert, correct, translate) utility with its POLICY.md co-labels; rewriting given prose for style
writer, utility; role-play as conversation in character chat, writer (as an expert who explains chat, research);
greetings, talk about the assistant and feelings chat.
250 candidates, 11 dropped by the rule above, 239 kept, 200 picked, all labelled (none marked ``x``). Best fit:
research 136, engineer 29, writer 18, chat 16, utility 1; 96 accept more than one agent (accepted anywhere: research
165, chat 51, engineer 41, writer 34, utility 5); always-research scores 82.5%. Short (median 97 characters, 15–376).
**Caveats:** one labeller; research dominates, as in everyday assistant traffic; utility rests on 1 best-fit prompt
(5 accept it), so this set says nothing about chores; 199 of 200 in English.
Run: python mkfresh_oasst.py PROMPT_LOTTERY_JSONL [--list] > fresh_oasst.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkfresh_common import kept_fresh, known_and_pools, write

SIZE = 200
LABELS = """0 r|1 c|2 r|3 rc|4 r|5 r|6 r|7 rw|8 r|9 wc|
10 r|11 rc|12 r|13 re|14 rc|15 e|16 wc|17 r|18 r|19 rc|
20 r|21 re|22 rc|23 r|24 rc|25 r|26 r|27 w|28 re|29 rc|
30 wr|31 rc|32 r|33 eu|34 rw|35 cr|36 er|37 r|38 r|39 r|
40 wr|41 r|42 r|43 r|44 r|45 rc|46 e|47 cr|48 r|49 rw|
50 cw|51 w|52 rw|53 r|54 e|55 r|56 rc|57 w|58 ru|59 r|
60 cr|61 rc|62 cr|63 r|64 r|65 re|66 r|67 e|68 e|69 rc|
70 r|71 uw|72 r|73 rw|74 r|75 r|76 rc|77 rc|78 r|79 r|
80 cw|81 r|82 er|83 wc|84 cr|85 w|86 e|87 cr|88 r|89 rw|
90 r|91 r|92 r|93 r|94 c|95 r|96 rc|97 c|98 rc|99 r|
100 er|101 r|102 er|103 cr|104 rc|105 e|106 r|107 er|108 r|109 rc|
110 cr|111 e|112 e|113 cw|114 e|115 rc|116 rc|117 rw|118 er|119 rc|
120 r|121 r|122 r|123 rc|124 r|125 r|126 r|127 rc|128 rc|129 re|
130 r|131 r|132 r|133 er|134 rw|135 rc|136 r|137 wc|138 r|139 rc|
140 wr|141 er|142 r|143 wu|144 r|145 rc|146 r|147 r|148 r|149 r|
150 r|151 r|152 cr|153 er|154 re|155 re|156 wr|157 r|158 e|159 r|
160 r|161 re|162 r|163 r|164 r|165 r|166 er|167 er|168 e|169 r|
170 w|171 ru|172 e|173 rc|174 re|175 r|176 r|177 we|178 r|179 r|
180 rc|181 er|182 rw|183 er|184 re|185 r|186 rc|187 r|188 er|189 rc|
190 re|191 cw|192 rw|193 rw|194 w|195 r|196 w|197 wr|198 er|199 r|"""


def candidates(path: str) -> list[dict]:
    """Every prompt of the file, with its line number."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows = [{"prompt": json.loads(line).strip(), "id": i} for i, line in enumerate(lines) if line.strip()]
    return [r for r in rows if r["prompt"]]


def sample(path: str) -> list[dict]:
    kept = kept_fresh(candidates(path), known_and_pools("fresh_oasst.jsonl"))
    picked = random.Random(20261202).sample(kept, min(SIZE, len(kept)))
    return sorted(picked, key=lambda r: r["id"])


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "oasst:prompt_lottery_en_250:{id}", "oasst", "--list" in sys.argv)


if __name__ == "__main__":
    main()
