"""Write arena_dev.jsonl: a tuning set of real non-English and long Chatbot Arena prompts (round 8).

Source: lmarena/arena-hard-auto ``data/arena-hard-v2.0/question.jsonl`` (750 prompts people sent to
Chatbot Arena, chosen by LMSYS as hard or as creative writing; Apache-2.0 repository) — not ShareGPT, so
nothing here overlaps foreign.jsonl or longpaste.jsonl (same detector, another population), and no line
equal (case-folded) to a line of another evaluation set. A seeded 60 of its non-English prompts
(mkforeign.language) and a seeded 50 of its English prompts over 2,000 characters.

May be tuned on (like dev.jsonl): it exists so that the confidence can learn which *kinds* of message
the fast path gets wrong. Labelled prompt by prompt by POLICY.md by helper-38 before any classifier ran on them.
Run: python mkarena.py QUESTION_JSONL [--list] > arena_dev.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkforeign import labels, language

OTHERS = ("dev", "test", "unseen", "evals", "chatterbot", "wizardlm", "sharegpt", "sharegpt_dev", "sharegpt2",
          "writingbench", "persistbench", "foreign", "longpaste")
N_FOREIGN, N_LONG = 60, 50
LABELS = """0 re|1 w|2 w|3 er|4 re|5 re|6 r|7 r|8 e|9 wc|
10 e|11 w|12 re|13 w|14 cw|15 w|16 w|17 w|18 w|19 w|
20 e|21 w|22 r|23 e|24 r|25 cw|26 w|27 w|28 w|29 re|
30 r|31 e|32 r|33 w|34 re|35 w|36 e|37 er|38 w|39 w|
40 re|41 re|42 w|43 w|44 w|45 cw|46 cw|47 w|48 re|49 re|
50 w|51 re|52 r|53 re|54 ru|55 re|56 rc|57 w|58 cw|59 wc|
60 wc|61 e|62 w|63 e|64 e|65 e|66 wr|67 e|68 e|69 er|
70 w|71 e|72 e|73 rc|74 w|75 e|76 re|77 rue|78 e|79 e|
80 w|81 er|82 ur|83 e|84 rc|85 w|86 e|87 e|88 e|89 eu|
90 e|91 e|92 wr|93 w|94 e|95 er|96 e|97 e|98 ru|99 e|
100 re|101 e|102 e|103 e|104 wr|105 r|106 e|107 e|108 w|109 w"""


def sample(path: str) -> list[tuple[str, dict]]:
    here = Path(__file__).parent
    seen = {json.loads(line)["text"].strip().casefold()
            for name in OTHERS for line in (here / f"{name}.jsonl").open(encoding="utf-8")}
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = [r for r in rows if r["prompt"].strip().casefold() not in seen]
    foreign = [r for r in rows if language(r["prompt"][:3000]) != "en"]
    long = [r for r in rows if language(r["prompt"][:3000]) == "en" and len(r["prompt"]) > 2000]
    rng = random.Random(8)
    return [("foreign", r) for r in rng.sample(foreign, N_FOREIGN)] + [("long", r) for r in rng.sample(long, N_LONG)]


def main() -> None:
    picked = sample(sys.argv[1])
    if "--list" in sys.argv:
        for i, (kind, r) in enumerate(picked):
            text = r["prompt"]
            shown = text if len(text) <= 900 else text[:600] + f"\n[… {len(text) - 900} chars …]\n" + text[-300:]
            print(f"=== {i} {kind} {language(text[:3000])} {r['category']} {len(text)}\n{shown}\n")
        return
    table = labels(LABELS)
    for i, (kind, r) in enumerate(picked):
        print(json.dumps({"text": r["prompt"], "accept": table[i], "source": f"arena-hard-v2.0:{r['uid']}",
                          "style": kind, "lang": language(r["prompt"][:3000])}, ensure_ascii=False))


if __name__ == "__main__":
    main()
