"""Write fresh_arena.jsonl: held-out English Chatbot Arena prompts that no set here holds (round 16).

Source: lmarena/arena-hard-auto (Apache-2.0) ``data/arena-hard-v0.1/question.jsonl`` — 500 prompts people sent to
Chatbot Arena (2024), two from each of 250 topic clusters that LMSYS picked as hard and specific: code in many
languages, data work in pandas and Excel, business and marketing plans, translations, extraction and tagging,
puzzles, recipes, writing jobs. arena_dev.jsonl (a tuning set) took v2.0's long English prompts and
arenaforeign_dev.jsonl every non-English one; nobody here had read v0.1's English prompts. Candidates: English by
mkforeign.py's detector, 8–2,000 characters (the long ones are arena_dev's kind), none within a word TF-IDF cosine
of 0.5 of a line of any set here (fresh_* and the correction pools included), of a role or config example, or of an
earlier candidate (mkfresh_common.py's rule); a seeded 170 of those.

Labelled prompt by prompt by POLICY.md by round 16's helper "routes16", who wrote no role or config example, from the
listing alone (``--list``), and committed before anything routed them. Labelling rule: the request decides, not the
topic — code, shell, configs, formulas, regexes and algorithms to implement engineer (a conceptual question about
a tool or programming also research); maths and logic problems research, engineer (a problem to solve *in code*
engineer, research); knowledge, explanations, plans and advice that need knowledge research (business strategy and
go-to-market plans research, writer — they are documents too); compositions (stories, poems, ads, emails, songs,
scripts, essays, slides' text) writer; a chore on text or data given in the prompt (extract, tag, classify,
translate, convert, reformat) utility with its POLICY.md co-labels; role-play chat, writer; an "act as an expert"
set-up routed as its request is. Lines with no request an agent could serve would be marked ``x``: none was.
480 candidates, 5 dropped by the rule above, 170 drawn, all labelled. Best fit: engineer 106, research 45, writer 17,
utility 2; 61 accept more than one agent (accepted anywhere: engineer 127, research 70, writer 25, utility 6, chat 6).
Engineer-heavy as the source is (LMSYS chose hard, specific prompts); always-engineer scores 74.7%. One labeller.
Run: python mkfresh_arena.py V01_QUESTION_JSONL [--list] > fresh_arena.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkforeign import language
from mkfresh_common import kept_fresh, known_and_pools, write

N = 170
LABELS = """0 e|1 r|2 we|3 er|4 rw|5 e|6 e|7 re|8 e|9 rw|
10 ew|11 e|12 wr|13 e|14 e|15 e|16 e|17 r|18 e|19 w|
20 e|21 e|22 wr|23 e|24 e|25 re|26 re|27 er|28 e|29 re|
30 e|31 e|32 e|33 r|34 e|35 e|36 e|37 e|38 ur|39 r|
40 e|41 re|42 re|43 e|44 r|45 er|46 re|47 re|48 uw|49 er|
50 wr|51 r|52 w|53 e|54 r|55 e|56 e|57 er|58 e|59 e|
60 e|61 re|62 e|63 e|64 e|65 e|66 r|67 e|68 e|69 e|
70 e|71 re|72 er|73 wr|74 e|75 rc|76 e|77 re|78 e|79 e|
80 er|81 er|82 e|83 e|84 e|85 e|86 e|87 eu|88 er|89 r|
90 e|91 wru|92 wrc|93 rw|94 eu|95 e|96 e|97 wr|98 rc|99 w|
100 e|101 e|102 e|103 er|104 r|105 e|106 r|107 r|108 e|109 e|
110 re|111 rw|112 e|113 e|114 wr|115 w|116 re|117 ew|118 e|119 e|
120 e|121 re|122 e|123 e|124 e|125 e|126 e|127 e|128 re|129 rw|
130 e|131 ec|132 e|133 e|134 e|135 r|136 e|137 e|138 e|139 r|
140 re|141 r|142 wr|143 er|144 er|145 rc|146 r|147 e|148 ru|149 er|
150 e|151 e|152 e|153 re|154 re|155 e|156 r|157 e|158 e|159 e|
160 re|161 e|162 e|163 e|164 e|165 wrc|166 e|167 e|168 wr|169 we"""


def sample(path: str) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if 8 <= len(r["prompt"].strip()) <= 2000 and language(r["prompt"][:3000]) == "en"]
    kept = kept_fresh(rows, known_and_pools("fresh_arena.jsonl"))
    random.Random(20261216).shuffle(kept)
    return kept[:N]


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "cluster", "arena-hard-v0.1:{uid}", "arena", "--list" in sys.argv)


if __name__ == "__main__":
    main()
