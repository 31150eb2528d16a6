"""Write fresh_wild.jsonl: held-out instructions people posted or shared in the wild, from InstructionWild (round 24).

Source: XueFuzhao/InstructionWild at 047fa6b — ``data_v2/user_1.jsonl`` (429 instructions people sent to ChatGPT and
posted on Twitter, early 2023, with their typos), ``data_v2/user_2.jsonl`` (248 use-case prompts from the Cookup.AI
catalogue) and ``data/seed_prompts_ch.jsonl`` (the InstructionWild authors' Chinese version of user_1, line by line).
The repository's LICENSE says: "InstructWild dataset is intended for non-commercial research purpose only" — these
lines are kept here for evaluating routing only; read those terms before redistributing. No set here reads this
repository (its ``user_3.jsonl`` repeats awesome-chatgpt-prompts, which fresh_persona uses, and is not read).
Candidates: every English line of user_1 and user_2, none within a word TF-IDF cosine of 0.5 of a line of any set here
(fresh_* and the correction pools included), of a role or config example, or of an earlier candidate
(mkfresh_common.py's rule); a seeded 130 of them, then a seeded 30 Chinese lines of user_1 whose English line was
not picked (same rule) — translations by the source's authors, not people's own Chinese.

Labelled prompt by prompt by POLICY.md by round 24's helper "routes24", who wrote no role or config example, from
the listing alone (``--list``), and committed before anything routed them. Labelling rule: the request decides, not
the topic — code, configs, regexes, SQL engineer (a question about a programming concept or tool also research);
compositions of every kind writer (lists of ideas, outlines, syllabi also research); knowledge, opinions asked of the
assistant, advice research with chat where it is everyday talk; puzzles and riddles research, chat; chores on pasted
text or data utility with POLICY.md's co-labels; remarks to the assistant, games and persona set-ups chat.
677 candidates, 617 kept by the rule above, 160 picked (130 English, 30 Chinese), all labelled (none marked ``x``).
Best fit: research 59, writer 58, engineer 25, chat 11, utility 7; 72 accept more than one agent (accepted anywhere:
research 86, writer 68, chat 45, engineer 34, utility 8); always-research scores 53.8%. Styles: terse one-liners
("you arent real.", "hitier was stupid"), people's typos, pasted code (Java, Ruby, C, a Kubernetes manifest), a
pasted PDF table and a pasted spam e-mail, multiple-choice quizzes, 30 in Chinese. Few long pastes (the source's
messages are short: 2 of user_1's 429 are over 1,000 characters); one labeller; utility rests on 7 prompts.
Run: python mkfresh_wild.py INSTRUCTIONWILD_DIR [--list] > fresh_wild.jsonl
"""
import json
import random
import re
import sys
from pathlib import Path

from mkfresh_common import fresh, kept_fresh, known_and_pools, write

BARE = re.compile(r'(\\["\\/bfnrtu])|\\')  # a valid escape, kept; else a bare backslash, doubled
LABELS = """0 rc|1 c|2 w|3 rc|4 w|5 w|6 r|7 c|8 w|9 r|
10 e|11 e|12 wr|13 u|14 re|15 w|16 w|17 wer|18 rc|19 re|
20 e|21 w|22 w|23 w|24 rce|25 rc|26 w|27 w|28 cr|29 rc|
30 rc|31 w|32 rc|33 wr|34 r|35 e|36 w|37 wr|38 rcw|39 w|
40 w|41 rc|42 r|43 w|44 w|45 w|46 rc|47 e|48 ur|49 w|
50 w|51 rw|52 rc|53 rc|54 er|55 rc|56 wr|57 r|58 r|59 w|
60 uwr|61 cr|62 w|63 r|64 r|65 rwc|66 w|67 w|68 rc|69 r|
70 r|71 e|72 wcr|73 rc|74 w|75 wc|76 rc|77 r|78 e|79 wr|
80 wr|81 rc|82 urw|83 ure|84 r|85 w|86 wr|87 er|88 e|89 rw|
90 r|91 e|92 uw|93 w|94 rc|95 e|96 r|97 wc|98 w|99 er|
100 rc|101 wc|102 rw|103 w|104 w|105 wr|106 w|107 e|108 e|109 re|
110 w|111 ur|112 e|113 r|114 rc|115 cw|116 rc|117 e|118 rc|119 w|
120 w|121 r|122 w|123 rc|124 r|125 e|126 e|127 w|128 w|129 cr|
130 r|131 w|132 w|133 r|134 cw|135 cr|136 e|137 w|138 r|139 e|
140 ru|141 re|142 rc|143 cre|144 cr|145 w|146 rc|147 we|148 e|149 e|
150 wr|151 wc|152 r|153 rc|154 wr|155 rc|156 r|157 e|158 cr|159 e|"""


def read(path: Path) -> list[str]:
    """The instructions of a file, in order (one line of user_2 has a bare backslash in a guitar tab: kept as typed)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(BARE.sub(lambda m: m[1] or "\\\\", line)) for line in lines if line.strip()]
    return [row["instruction"].strip() for row in rows]


def sample(folder: str) -> list[dict]:
    root = Path(folder)
    twitter = read(root / "data_v2" / "user_1.jsonl")
    rows = [{"prompt": t, "id": f"user_1:{i}", "style": "twitter"} for i, t in enumerate(twitter)]
    rows += [{"prompt": t, "id": f"user_2:{i}", "style": "cookup"}
             for i, t in enumerate(read(root / "data_v2" / "user_2.jsonl"))]
    known = known_and_pools("fresh_wild.jsonl")
    kept = kept_fresh([r for r in rows if r["prompt"]], known)
    random.Random(20261130).shuffle(kept)
    picked = kept[:130]
    taken = {r["id"] for r in picked}
    chinese = read(root / "data" / "seed_prompts_ch.jsonl")
    assert len(chinese) == len(twitter), (len(chinese), len(twitter))
    others = [{"prompt": c, "id": f"seed_prompts_ch:{i}", "style": "zh"} for i, c in enumerate(chinese)
              if f"user_1:{i}" not in taken and c and fresh([twitter[i]], known)[0]]
    random.Random(20261131).shuffle(others)
    return picked + others[:30]


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "instructionwild:{id}", "wild", "--list" in sys.argv)


if __name__ == "__main__":
    main()
