"""Write seabench_dev.jsonl: a tuning file of SeaBench requests in Vietnamese and Indonesian (round 40).

Why: round 40's held-out read of fresh_seabench (120 SeaBench requests, mkfresh_seabench.py) found Vietnamese the weak
language — 19 of 40 right on main's code, knowledge questions, word problems and puzzles scattered to utility, chat
and writer — while the tuning files held 20 Vietnamese lines (langs_dev, written here) and few of Indonesian: too few
to choose a lever for them on. What: the SeaBench first turns fresh_seabench did not take (the same source,
DAMO-NLP-SG/SeaBench at bc3097d, ``data/public-questions.jsonl``; the same freshness rule, with fresh_seabench's lines
among the texts to keep away from), Vietnamese and Indonesian only, a seeded draw (``random.Random(41)``) of 3 of
each of the ten kinds in each language (60; 120 candidates, none dropped). Labelled prompt by prompt by
POLICY.md by round 40's helper "route40intl" from the listing alone, with mkfresh_seabench.py's rule, before
anything routed them. Best fit: research 35, engineer 8, writer 8, utility 6, chat 3; always-research 75.0%; main's
fast path (round 39's code) 43 of 60. **Caveat:** one population with fresh_seabench — a lever tuned on this file and
read on fresh_seabench is read on its own population; the other held-out sets (foreign, fresh_arenahard2's
Vietnamese lines, evalsforeign, …) say whether it carries. A tuning file, never a held-out one. Licence: as
fresh_seabench's (none stated; evaluation only).
Run: python mkseabench_dev.py PUBLIC_QUESTIONS_JSONL [--list] > seabench_dev.jsonl
"""
import sys

from mkfresh_common import kept_fresh, write
from mkfresh_seabench import candidates, known, per_language_and_kind
from mkfresh_seabench import sample as held_out_sample

LABELS = """0 e|1 e|2 e|3 ur|4 ur|5 ur|6 r|7 r|8 r|9 rc|
10 rc|11 rc|12 re|13 re|14 re|15 rc|16 rc|17 rc|18 wc|19 wc|
20 cw|21 rc|22 rw|23 r|24 er|25 re|26 r|27 wr|28 w|29 uw|
30 e|31 e|32 e|33 ru|34 uwr|35 ur|36 r|37 r|38 r|39 rc|
40 rc|41 er|42 re|43 re|44 re|45 rc|46 rc|47 rc|48 cw|49 wrc|
50 cw|51 rc|52 r|53 r|54 r|55 r|56 r|57 wr|58 w|59 w|"""
PER_KIND = 3
LANGUAGES = ("vi", "id")


def sample(path: str) -> list[dict]:
    taken = {row["id"] for row in held_out_sample(path)}
    rows = [r for r in candidates(path) if r["id"] not in taken and r["lang"] in LANGUAGES]
    kept = kept_fresh(rows, known("seabench_dev.jsonl"))  # fresh_seabench's lines among the texts to keep away from
    return per_language_and_kind(kept, PER_KIND, 41)


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "seabench:{id}", "seabench", "--list" in sys.argv)


if __name__ == "__main__":
    main()
