# ruff: noqa: E501  (the label table is data)
"""Write fresh_persona.jsonl: held-out "act as …" and persona set-ups people paste into assistants (round 12).

Source: f/awesome-chatgpt-prompts (prompts.chat; CC0-1.0), ``prompts.csv`` at commit 62b5767b (2026-03-20;
``git show 62b5767b:prompts.csv``): 1,504 prompts people contributed to paste as a first message — "I want you to act
as a …", persona and role-play set-ups, system prompts for assistants, writing and coding helpers. Only its
``TEXT`` prompts (1,236 distinct; not the image and structured ones). Candidates within a TF-IDF cosine of 0.5 of
another set's line or a role or config example are dropped first (12; mkfresh_common.py: ShareGPT users pasted the
early ones of this list); then a seeded 80, and, once those were labelled, a seeded 20 more of the rest, because
17 of the 100 turned out to ask an image or video model for a picture ("ultra-realistic 8K portrait …"), which no
agent of POLICY.md takes: they are marked ``x`` in the table and left out — 83 lines.

Labelled prompt by prompt by POLICY.md by helper-70 (who wrote no role or config example and had read none of
the other sets' prompts) and committed before any classifier ran on them. The rule for a set-up: route it as its
request is — role-play or persona conversation: chat, writer; an expert who explains or advises: research, chat;
a set-up that asks for a composition (stories, posts, copy): writer; code, shells, prompts for code: engineer;
a mechanical chore on text the person will give (translate, fix grammar, convert): utility, writer. The
source's own ``for_devs`` flag is kept in ``source`` but was not used for labels.
Run: python mkfresh_persona.py PROMPTS_CSV [--list] > fresh_persona.jsonl
"""
import csv
import json
import random
import sys

from mkfresh_common import fresh, known_texts, labels

N = 80
MORE = 20  # drawn after the first 80 had been labelled: 13 of them asked for an image or a video
LABELS = """0 rc|1 ec|2 x|3 re|4 w|5 w|6 x|7 rw|8 x|9 rwc|
10 rc|11 rc|12 wr|13 rc|14 rw|15 r|16 rw|17 e|18 er|19 wr|
20 wr|21 w|22 e|23 wc|24 w|25 x|26 x|27 wuc|28 rc|29 er|
30 wu|31 er|32 uw|33 x|34 w|35 er|36 e|37 rc|38 e|39 cw|
40 rc|41 cw|42 ew|43 x|44 rc|45 wr|46 rc|47 w|48 cr|49 w|
50 e|51 w|52 ec|53 x|54 x|55 urw|56 rc|57 rc|58 w|59 rc|
60 e|61 e|62 e|63 rc|64 e|65 w|66 x|67 x|68 rwu|69 e|
70 w|71 w|72 e|73 w|74 x|75 e|76 x|77 e|78 re|79 w|
80 er|81 we|82 e|83 cwr|84 we|85 w|86 x|87 w|88 ur|89 w|
90 w|91 e|92 w|93 x|94 x|95 e|96 r|97 w|98 c|99 x"""


def sample(path: str) -> list[dict[str, str]]:
    csv.field_size_limit(10**9)
    with open(path, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["type"] == "TEXT" and r["prompt"].strip()]
    rows = list({r["prompt"].strip(): r for r in rows}.values())
    keep = fresh([r["prompt"] for r in rows], known_texts())
    rows = [r for r, ok in zip(rows, keep, strict=True) if ok]
    first = random.Random(20261129).sample(rows, N)
    rest = [r for r in rows if r not in first]
    return first + random.Random(20261130).sample(rest, MORE)


def main() -> None:
    picked = sample(sys.argv[1])
    if "--list" in sys.argv:
        for i, r in enumerate(picked):
            text = r["prompt"].strip()
            shown = text if len(text) <= 1200 else text[:800] + f"\n[… {len(text) - 1200} chars …]\n" + text[-400:]
            print(f"=== {i} [{r['act']}] {len(text)}\n{shown}\n")
        return
    table = labels(LABELS)
    assert len(table) == len(picked), (len(table), len(picked))
    for i, r in enumerate(picked):
        if not table.get(i):
            continue  # asks an image or video model for a picture: no agent of POLICY.md takes it
        print(json.dumps({"text": r["prompt"].strip(), "accept": table[i],
                          "source": f"awesome-chatgpt-prompts:{r['act']}" + (":for_devs" if r["for_devs"] == "TRUE" else ""),
                          "style": "persona"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
