"""Write alpaca_dev.jsonl: a tuning file of Alpaca's self-instruct-style tasks, many with their input (round 40).

Why: round 39 named English kinds below par held out — creative writing requests, chores on given text and self-
instruct-style tasks with an input (fresh_seed 83.1%), writing set-ups (fresh_forge 81.4%) — and the twelve older
tuning files hold few of them: round 40's first levers (role examples, cues) moved the tuning files by a handful of
lines either way, too few to choose by. This file gives a lever for those kinds something to be chosen on. Source:
the "Raw Instruction" / "Raw Input" of the 2,301 pairs in ``Expert Revision Dataset.json`` of lunyiliu/CoachLM at
3761729 (the repository is Apache-2.0; the raw pairs are Stanford Alpaca's, tatsu-lab/stanford_alpaca, whose data is
CC BY-NC 4.0 — here to tune and measure routing only, not as training data for a model; delete the file and its entry
in ``routing_sets.py`` where that does not suit you): instructions text-davinci-003 generated from the self-instruct
seed tasks — compositions, lists, explanations, chores on a given sentence or paragraph, maths. Each prompt is the
instruction and its input after a blank line (mkfresh_seed.py's form). Candidates: every pair, none within a word TF-
IDF cosine of 0.5 of a line of any set here (held-out ones included), of a role or config example, or of an earlier
candidate (mkfresh_common.py's rule); a seeded 150 of those kept.
**The same repository as fresh_coach.jsonl** (held out, round 40), another population: Alpaca's generated training
pairs, not the authors' hand-written test suite; fresh_coach was read once before this file was made. Alpaca grew
from the self-instruct seed tasks that fresh_seed.jsonl holds: a lever chosen here is not blind to fresh_seed's kind
(near-copies of its lines are dropped by the rule above).
Labelled line by line by POLICY.md by round 40's helper "route40en" (who also chose round 40's lever on it) from the
listing alone, with fresh_coach's rule (mkfresh_coach.py). A tuning file: may be looked at and tuned on.
2,301 candidates, 284 dropped by the rule above, 2,017 kept, 150 picked, 148 labelled (2 marked ``x``: a password to
make, a store's product list — no role fits). Best fit: research 65, writer 51, utility 28, engineer 4; 92 accept more
than one agent; always-research scores 70.9%. One labeller; generated instructions, not people's own words.
Run: python mkalpaca_dev.py EXPERT_REVISION_JSON [--list] > alpaca_dev.jsonl
"""
import json
import sys
from pathlib import Path

from mkfresh_common import HERE, kept_fresh, known_and_pools, write

LABELS = """0 wu|1 wr|2 uer|3 re|4 r|5 uwr|6 er|7 ur|8 rw|9 rw|
10 ur|11 rw|12 e|13 w|14 w|15 ur|16 ur|17 r|18 rw|19 re|
20 ur|21 r|22 re|23 r|24 w|25 wr|26 ur|27 wr|28 wr|29 wr|
30 r|31 rw|32 rw|33 rw|34 ru|35 wu|36 ue|37 ur|38 w|39 w|
40 wr|41 w|42 r|43 rw|44 w|45 ru|46 re|47 r|48 r|49 r|
50 w|51 r|52 er|53 re|54 w|55 rw|56 wur|57 w|58 x|59 r|
60 re|61 ur|62 rw|63 w|64 ru|65 w|66 r|67 r|68 w|69 rw|
70 wr|71 rc|72 rc|73 r|74 w|75 ur|76 re|77 rw|78 rw|79 uwr|
80 wr|81 u|82 ur|83 w|84 w|85 w|86 ur|87 uwr|88 ur|89 rc|
90 rw|91 rw|92 rc|93 ure|94 rw|95 wr|96 re|97 ru|98 uw|99 rw|
100 re|101 w|102 rw|103 re|104 r|105 ur|106 r|107 rw|108 wr|109 ur|
110 w|111 rcw|112 u|113 wr|114 r|115 w|116 re|117 re|118 ur|119 ewr|
120 wu|121 w|122 re|123 w|124 w|125 rw|126 w|127 wc|128 ur|129 r|
130 wr|131 w|132 w|133 re|134 r|135 w|136 r|137 u|138 wu|139 x|
140 w|141 w|142 ur|143 w|144 rw|145 wer|146 w|147 u|148 ru|149 wr|"""


#: the pairs drawn (their index in the file): kept by mkfresh_common.py's rule, then a seeded 150 (``random.Random(
#: 20261240).sample``), when roles.py still held round 40's candidate examples — which count among the texts a
#: candidate must not resemble, so the same draw from the committed tree differs from line 80 on; pinned here, so the
#: file is what was labelled (every pinned pair is still fresh by the rule: checked in ``sample``)
PICKED = [
    2, 22, 37, 41, 42, 64, 77, 91, 93, 115, 118, 128, 133, 137, 162, 188, 192, 220, 243, 248, 256, 261, 262, 267,
    291, 296, 305, 328, 342, 356, 382, 388, 420, 437, 442, 446, 488, 506, 511, 552, 553, 559, 567, 580, 596, 599,
    605, 632, 653, 682, 737, 766, 774, 790, 810, 814, 820, 841, 846, 879, 881, 882, 894, 899, 903, 974, 976, 985,
    1014, 1030, 1044, 1066, 1091, 1094, 1130, 1142, 1148, 1188, 1201, 1210, 1248, 1255, 1280, 1329, 1335, 1346,
    1350, 1395, 1397, 1400, 1407, 1472, 1486, 1491, 1495, 1500, 1510, 1517, 1526, 1531, 1536, 1550, 1559, 1593,
    1611, 1630, 1666, 1687, 1705, 1731, 1734, 1744, 1755, 1757, 1788, 1799, 1810, 1897, 1907, 1909, 1928, 1929,
    1931, 1932, 1934, 1938, 1946, 1951, 1978, 1983, 1999, 2005, 2007, 2011, 2012, 2014, 2027, 2062, 2064, 2072,
    2085, 2130, 2150, 2166, 2169, 2178, 2261, 2281, 2285, 2286
]


def sample(path: str) -> list[dict]:
    rows = []
    for i, pair in enumerate(json.loads(Path(path).read_text(encoding="utf-8"))):
        given = pair["Raw Input"].strip()
        rows.append({"prompt": pair["Raw Instruction"].strip() + (f"\n\n{given}" if given else ""), "id": i})
    own = HERE / "alpaca_dev.jsonl"  # its own lines are not "known": the draw repeats with the file present
    mine = {json.loads(x)["text"] for x in own.open(encoding="utf-8") if x.strip()} if own.exists() else set()
    kept = {r["id"] for r in kept_fresh(rows, [t for t in known_and_pools("alpaca_dev.jsonl") if t not in mine])}
    assert kept >= set(PICKED), sorted(set(PICKED) - kept)
    return [rows[i] for i in PICKED]


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "alpaca-coachlm:{id}", "alpaca", "--list" in sys.argv)


if __name__ == "__main__":
    main()
