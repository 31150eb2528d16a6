"""Write fresh_arena2.jsonl: a second draw of held-out English Chatbot Arena prompts that no set here holds (round 18).

Source: lmarena/arena-hard-auto (Apache-2.0) ``data/arena-hard-v0.1/question.jsonl``, as mkfresh_arena.py (round 16)
— the same 500 hard, specific prompts people sent to Chatbot Arena in 2024, by the same candidate rule (English by
mkforeign.py's detector, 8–2,000 characters, none within a word TF-IDF cosine of 0.5 of a line of any set here —
fresh_arena.jsonl's 170 included, so none of them is drawn again —, of a role or config example, or of an earlier
candidate: mkfresh_common.py), a seeded 150 of what is left. It asks whether fresh_arena's figure (83.5%) holds on
prompts of its population that nobody here had read.

Labelled prompt by prompt by POLICY.md by round 18's helper "routes18", who wrote no role or config example, from the
listing alone (``--list``), with mkfresh_arena.py's rule (the request decides, not the topic), and committed before
anything routed them.
Run: python mkfresh_arena2.py V01_QUESTION_JSONL [--list] > fresh_arena2.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkforeign import language
from mkfresh_common import kept_fresh, known_and_pools, write

N = 150
LABELS = """0 rc|1 er|2 re|3 er|4 e|5 e|6 re|7 e|8 er|9 e|
10 e|11 w|12 e|13 e|14 er|15 e|16 r|17 e|18 w|19 e|
20 w|21 r|22 e|23 wr|24 cw|25 er|26 wr|27 e|28 e|29 r|
30 r|31 e|32 e|33 er|34 r|35 e|36 e|37 er|38 r|39 e|
40 rew|41 e|42 wr|43 e|44 e|45 e|46 e|47 er|48 e|49 er|
50 e|51 e|52 e|53 e|54 e|55 re|56 e|57 r|58 w|59 e|
60 e|61 er|62 e|63 e|64 e|65 u|66 r|67 e|68 e|69 e|
70 e|71 e|72 e|73 e|74 e|75 e|76 e|77 e|78 e|79 e|
80 e|81 e|82 e|83 ew|84 r|85 e|86 e|87 e|88 re|89 r|
90 e|91 rc|92 w|93 rw|94 e|95 er|96 e|97 e|98 e|99 e|
100 e|101 wr|102 wr|103 r|104 wr|105 e|106 e|107 e|108 e|109 re|
110 e|111 e|112 wr|113 reu|114 e|115 er|116 er|117 er|118 e|119 re|
120 e|121 r|122 e|123 e|124 rc|125 cw|126 e|127 e|128 e|129 uer|
130 e|131 e|132 e|133 e|134 e|135 re|136 wr|137 e|138 r|139 e|
140 rw|141 e|142 e|143 wr|144 rw|145 e|146 e|147 e|148 e|149 rwe"""


def sample(path: str) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if 8 <= len(r["prompt"].strip()) <= 2000 and language(r["prompt"][:3000]) == "en"]
    kept = kept_fresh(rows, known_and_pools("fresh_arena2.jsonl"))
    random.Random(20261130).shuffle(kept)
    return kept[:N]


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "cluster", "arena-hard-v0.1:{uid}", "arena", "--list" in sys.argv)


if __name__ == "__main__":
    main()
