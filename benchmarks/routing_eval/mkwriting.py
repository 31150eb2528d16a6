# ruff: noqa: E501  (the label table is data)
"""Write writingbench.jsonl: an eighth held-out set, writing requests with their materials, from a PyPI wheel.

Source: the ``inspect-evals`` wheel on PyPI (version 0.28.0), ``inspect_evals/writingbench/
benchmark_all.jsonl`` — the 1,000 queries of WritingBench (Wu et al., 2025: writing tasks in six domains —
academic and engineering, finance and business, politics and law, literature and arts, education,
advertising and marketing — in Chinese and English, most with the source material pasted in). A seeded 120
of them, whole (up to ~20,000 characters), labelled prompt by prompt from POLICY.md before any classifier
ran on them (round 6). A set about one role: it measures how often long, document-style requests to
compose or edit reach ``writer`` (or another agent a careful person would accept), not routing in general.
Run: python mkwriting.py INSPECT_EVALS_WHEEL [--list] > writingbench.jsonl
"""
import json
import random
import sys
import zipfile
from pathlib import Path

AGENTS = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}
MEMBER = "inspect_evals/writingbench/benchmark_all.jsonl"
N = 120
# sample index → acceptable agents, best first
LABELS = """0 w|1 w|2 w|3 wr|4 wr|5 w|6 w|7 wer|8 wr|9 wr|10 w|11 w|12 wr|13 w|14 wr|15 wur|16 w|17 we|18 w|19 wr|
20 wr|21 wr|22 w|23 w|24 w|25 wr|26 w|27 w|28 w|29 wr|30 w|31 wr|32 w|33 w|34 we|35 w|36 w|37 w|38 w|39 w|
40 w|41 w|42 wr|43 w|44 w|45 w|46 w|47 wr|48 w|49 wr|50 w|51 rw|52 w|53 w|54 w|55 w|56 w|57 wr|58 wer|59 wr|
60 wr|61 w|62 w|63 w|64 wr|65 w|66 wr|67 w|68 w|69 w|70 w|71 w|72 wr|73 wr|74 wr|75 wr|76 w|77 wr|78 w|79 w|
80 wr|81 wr|82 w|83 rw|84 w|85 w|86 w|87 w|88 wr|89 w|90 wr|91 wur|92 w|93 wr|94 w|95 w|96 wr|97 wr|98 w|99 wur|
100 wr|101 w|102 ew|103 w|104 w|105 w|106 w|107 wr|108 wr|109 w|110 wr|111 rw|112 wr|113 w|114 w|115 w|116 w|117 w|118 wr|119 wr"""


def labels(table: str) -> dict[int, list[str]]:
    pairs = (item.split() for item in table.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v] for k, v in pairs}


def main() -> None:
    with zipfile.ZipFile(Path(sys.argv[1])) as z:
        pool = [json.loads(line) for line in z.read(MEMBER).decode("utf-8").splitlines() if line.strip()]
    rows = random.Random(20261128).sample(pool, N)
    table = labels(LABELS)
    for k, row in enumerate(rows):
        text = row["query"].strip()
        if "--list" in sys.argv[2:]:  # the prompts to label, numbered: head and tail, where the request sits
            shown = text if len(text) <= 900 else f"{text[:600]} […{len(text) - 900} chars…] {text[-300:]}"
            print(f"##### {k} ({row['domain1']} / {row['domain2']}, {len(text)} chars)\n{shown}\n")
            continue
        print(json.dumps({"text": text, "accept": table[k], "source": f"writingbench:{row['index']}",
                          "style": f"{row['domain1']} / {row['domain2']}"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
