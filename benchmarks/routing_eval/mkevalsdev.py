"""Write evals_dev.jsonl: a tuning set of OpenAI Evals task prompts, from the tasks evals.jsonl did not take (round 11).

Source: the same ``evals`` wheel (3.0.1.post1) and the same readable-prompt rule as mkevals.py; evals.jsonl took one
prompt from each of a seeded 130 of the 432 usable tasks, so this takes one prompt from each of a seeded 80 of the
other 302 — the held-out set's population, none of its tasks (the way sharegpt_dev stands beside sharegpt).
Labelled prompt by prompt by POLICY.md by helper-59 before any classifier ran on them; evals.jsonl's prompts and
errors were not read. May be tuned on.
Run: python mkevalsdev.py EVALS_REGISTRY_DATA_DIR [--list] > evals_dev.jsonl
"""
import json
import random
import sys
from pathlib import Path

from mkevals import AGENTS, SKIP, prompts

N = 80
LABELS = """0 rc|1 re|2 r|3 rc|4 wu|5 rc|6 ur|7 rc|8 ur|9 ur|
10 ur|11 ru|12 r|13 ur|14 rc|15 rc|16 re|17 r|18 r|19 r|
20 r|21 r|22 re|23 er|24 ur|25 rc|26 r|27 re|28 ru|29 ur|
30 ru|31 e|32 r|33 re|34 ue|35 ur|36 r|37 r|38 ru|39 ur|
40 ru|41 r|42 r|43 ur|44 ru|45 ur|46 r|47 cr|48 rc|49 rc|
50 ru|51 r|52 re|53 ru|54 ru|55 ur|56 rc|57 ru|58 r|59 uw|
60 ur|61 ru|62 er|63 ur|64 re|65 ru|66 w|67 ru|68 ur|69 r|
70 e|71 re|72 ru|73 r|74 r|75 wc|76 r|77 r|78 rc|79 re"""


def sample(root: Path) -> list[tuple[str, str]]:
    tasks = [(d.name, found) for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIP)
             if (found := prompts(d))]
    taken = {name for name, _ in random.Random(20261128).sample(tasks, 130)}  # mkevals.py's draw
    rest = [(name, found) for name, found in tasks if name not in taken]
    rng = random.Random(11)
    return [rng.choice(found) for _, found in sorted(rng.sample(rest, N))]


def main() -> None:
    picked = sample(Path(sys.argv[1]))
    if "--list" in sys.argv:
        for i, (path, text) in enumerate(picked):
            shown = text if len(text) <= 900 else text[:600] + f"\n[… {len(text) - 900} chars …]\n" + text[-300:]
            print(f"=== {i} {path} {len(text)}\n{shown}\n")
        return
    pairs = (item.split() for item in LABELS.replace("\n", "").split("|") if item.strip())
    table = {int(k): [AGENTS[c] for c in v] for k, v in pairs}
    assert len(table) == len(picked), (len(table), len(picked))
    for i, (path, text) in enumerate(picked):
        print(json.dumps({"text": text, "accept": table[i], "source": f"openai-evals:{path}", "style": "eval-task"},
                         ensure_ascii=False))


if __name__ == "__main__":
    main()
