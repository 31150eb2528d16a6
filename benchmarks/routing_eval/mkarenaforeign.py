"""Write arenaforeign_dev.jsonl: a tuning set of people's own non-English Chatbot Arena prompts (round 11).

Source: lmarena/arena-hard-auto ``data/arena-hard-v2.0/question.jsonl`` and ``data/arena-hard-v0.1/question.jsonl``
(prompts people sent to Chatbot Arena; Apache-2.0 repository — the prompts are users' own words): **every**
prompt mkforeign.language does not call English that no other set of this folder holds (arena_dev took a seeded
60 of v2.0's; 101 remain — by script Han 41,
Cyrillic 30, kana 5, Hangul 2, Greek, Hebrew, Arabic 1 each; in Latin script Spanish 9, German, Portuguese,
French, Indonesian 2 each, Italian 1; 2 with no letters), in a seeded order. Another
population than the held-out foreign.jsonl (ShareGPT, early 2023; its prompts were not read for this).

May be tuned on (like dev.jsonl). Labelled prompt by prompt by POLICY.md by helper-59 (who wrote no role or
config example before) and committed before any classifier ran on them. Half creative writing, half hard
prompts (maths, competitive programming) by the source's categories, so writer and maths are over-represented
against everyday traffic.
Run: python mkarenaforeign.py V2_QUESTION_JSONL V01_QUESTION_JSONL [--list] > arenaforeign_dev.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkforeign import labels, language

LABELS = """0 w|1 w|2 w|3 w|4 w|5 er|6 re|7 w|8 wr|9 w|
10 wc|11 ru|12 w|13 r|14 re|15 r|16 re|17 e|18 w|19 er|
20 w|21 re|22 re|23 ru|24 w|25 e|26 er|27 w|28 r|29 w|
30 e|31 w|32 w|33 r|34 w|35 re|36 r|37 w|38 rw|39 w|
40 w|41 r|42 rc|43 w|44 w|45 w|46 re|47 er|48 w|49 re|
50 re|51 w|52 e|53 e|54 r|55 w|56 w|57 w|58 e|59 e|
60 r|61 w|62 r|63 rc|64 rc|65 cw|66 re|67 w|68 rw|69 re|
70 w|71 re|72 e|73 re|74 w|75 e|76 rc|77 w|78 r|79 w|
80 rc|81 w|82 w|83 e|84 rw|85 re|86 w|87 re|88 w|89 w|
90 w|91 cw|92 w|93 rc|94 e|95 w|96 w|97 w|98 w|99 w|
100 w"""


def sample(paths: list[str]) -> list[dict]:
    here = Path(__file__).parent
    seen = {json.loads(line)["text"].strip().casefold()
            for f in sorted(here.glob("*.jsonl")) if f.name != "arenaforeign_dev.jsonl"
            for line in f.open(encoding="utf-8")}
    rows = [json.loads(line) for p in paths for line in Path(p).read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = [r for r in rows if r["prompt"].strip().casefold() not in seen]
    foreign = [r for r in rows if language(r["prompt"][:3000]) != "en"]
    random.Random(11).shuffle(foreign)
    return foreign


def main() -> None:
    picked = sample(sys.argv[1:3])
    if "--list" in sys.argv:
        for i, r in enumerate(picked):
            text = r["prompt"]
            shown = text if len(text) <= 900 else text[:600] + f"\n[… {len(text) - 900} chars …]\n" + text[-300:]
            print(f"=== {i} {language(text[:3000])} {r['category']} {len(text)}\n{shown}\n")
        return
    table = labels(LABELS)
    assert len(table) == len(picked), (len(table), len(picked))
    for i, r in enumerate(picked):
        print(json.dumps({"text": r["prompt"], "accept": table[i], "source": f"{r['category']}:{r['uid']}",
                          "style": "foreign", "lang": language(r["prompt"][:3000])}, ensure_ascii=False))


if __name__ == "__main__":
    main()
