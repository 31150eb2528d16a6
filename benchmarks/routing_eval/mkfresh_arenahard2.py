"""Write fresh_arenahard2.jsonl: held-out Chatbot Arena prompts of arena-hard-auto v2.0, in every language (round 37).

Source: lmarena/arena-hard-auto (Apache-2.0) at 196f6b8, ``data/arena-hard-v2.0/question.jsonl``: 750 prompts people
sent to Chatbot Arena, chosen by LMArena in 2025 for v2.0 of the benchmark — 253 hard coding prompts, 247 hard maths
and reasoning prompts and 250 creative-writing prompts; about one in six in another language (Chinese, Russian,
Japanese, …), people's own words. No set here reads v2.0 (fresh_arena and fresh_arena2 drew from v0.1's 500, a
different population of an earlier year, English only). Candidates: 8–4,000 characters, none within a word TF-IDF
cosine of 0.5 of a line of any set here (fresh_arena's and fresh_arena2's included), a role or config example, or an
earlier candidate (mkfresh_common.py's rule); a seeded 200 of what is left.

Labelled prompt by prompt by POLICY.md by round 37's helper "route37", who wrote no role or config example, from the
listing alone (``--list``: the text and its v2.0 subcategory), and committed before anything routed them. Labelling
rule: the request decides, not the topic — code to write, fix or explain, shell, SQL, regexes, formulas engineer (a
question about a programming concept also research); maths and logic problems research, engineer (a problem asked as
a program to write engineer, research); knowledge, explanations and analyses research; stories, poems, scripts,
letters, essays and other compositions writer (a composition in character also chat); plans, outlines and lists of
ideas writer, research; a chore on given text (translate, extract, classify, reformat, correct) utility with its
POLICY.md co-labels; role-play as conversation chat, writer.
705 candidates, 197 dropped by the rule above, 508 kept, a seeded 200 drawn, all labelled (none marked ``x``): coding
68, maths 65, creative writing 67 by v2.0's subcategory; 37 ask in another language (Vietnamese, Chinese, Russian,
Japanese, Czech, Polish, Finnish, Spanish, French, Portuguese, Korean). Best fit: engineer 71, writer 66, research 60,
chat 3; 59 accept more than one agent (accepted anywhere: engineer 104, research 73, writer 72, chat 10, utility 1);
always-engineer scores 104 of 200 (52.0%), always-research 73 (36.5%). Median 318 characters (15–3,564; 46 over
800). **Caveats:** one labeller; prompts LMArena chose as hard, so harder and longer than everyday traffic; almost no
chores on given text (1 line accepts utility).
Run: python mkfresh_arenahard2.py V20_QUESTION_JSONL [--list] > fresh_arenahard2.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkfresh_common import kept_fresh, known_and_pools, write

N = 200
LABELS = """0 w|1 re|2 w|3 re|4 re|5 re|6 r|7 w|8 w|9 cw|
10 e|11 e|12 re|13 cw|14 e|15 r|16 w|17 rc|18 e|19 e|
20 e|21 re|22 w|23 r|24 rc|25 w|26 w|27 e|28 re|29 w|
30 e|31 er|32 wru|33 cw|34 er|35 w|36 w|37 w|38 e|39 re|
40 e|41 e|42 w|43 w|44 wc|45 e|46 r|47 re|48 e|49 e|
50 w|51 re|52 er|53 e|54 re|55 re|56 e|57 re|58 e|59 er|
60 w|61 rw|62 e|63 er|64 e|65 e|66 w|67 w|68 w|69 e|
70 re|71 re|72 e|73 w|74 wc|75 r|76 e|77 re|78 e|79 w|
80 e|81 w|82 e|83 w|84 w|85 e|86 re|87 w|88 w|89 er|
90 e|91 w|92 w|93 e|94 w|95 w|96 w|97 e|98 e|99 w|
100 e|101 w|102 r|103 e|104 re|105 w|106 w|107 re|108 r|109 re|
110 w|111 r|112 e|113 er|114 e|115 e|116 w|117 w|118 er|119 wr|
120 e|121 re|122 re|123 w|124 r|125 w|126 e|127 re|128 r|129 re|
130 r|131 e|132 w|133 re|134 rc|135 w|136 w|137 r|138 r|139 rc|
140 e|141 e|142 r|143 e|144 e|145 e|146 e|147 re|148 w|149 re|
150 e|151 w|152 w|153 e|154 re|155 e|156 w|157 w|158 w|159 e|
160 re|161 w|162 e|163 re|164 r|165 w|166 e|167 e|168 e|169 e|
170 w|171 w|172 re|173 w|174 er|175 wr|176 re|177 r|178 e|179 rw|
180 e|181 e|182 er|183 e|184 r|185 w|186 w|187 rc|188 rw|189 w|
190 w|191 e|192 w|193 r|194 w|195 e|196 r|197 re|198 w|199 e|"""


def sample(path: str) -> list[dict]:
    text = Path(path).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.split("\n") if line.strip()]  # not splitlines: prompts hold U+2028
    rows = [r for r in rows if 8 <= len(r["prompt"].strip()) <= 4000]
    kept = kept_fresh(rows, known_and_pools("fresh_arenahard2.jsonl"))
    random.Random(20261202).shuffle(kept)
    return kept[:N]


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "subcategory", "arena-hard-v2.0:{uid}", "arena", "--list" in sys.argv)


if __name__ == "__main__":
    main()
