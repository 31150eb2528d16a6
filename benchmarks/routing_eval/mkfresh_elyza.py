"""Write fresh_elyza.jsonl: held-out Japanese tasks, ELYZA-tasks-100 (round 32).

Source: ELYZA-tasks-100 (ELYZA Inc., CC-BY-SA-4.0; huggingface.co/datasets/elyza/ELYZA-tasks-100), read from the
copy in purupurumeguru/bench_elyza at 645e61f (``results/gpt-4o/results.json``: each of the 100 tasks' ``input``
with one model's answer; every model's file there holds the same 100 inputs in the same order). 100 tasks written
in Japanese by ELYZA's staff to evaluate Japanese instruction following: ideas to list, advice, explanations,
reasoning and arithmetic puzzles, rewriting and summarising given text, extraction and classification of given
items, emails and stories to compose, role-play set-ups, jokes to explain. No set here reads that collection (nor
any Japanese collection written in Japanese but evalsforeign's 11 exam items); the two non-English sets held out
before round 30 are ShareGPT's and OpenAI Evals', round 30's BELLE Chinese — this is native Japanese, chores and
compositions side by side, the kind round 30 and 31 found weakest (chores in another language).
Candidates: every task, none within a word TF-IDF cosine of 0.5 of a line of any set here (fresh_* and the
correction pools included), of a role or config example, or of an earlier candidate (mkfresh_common.py's rule);
all kept are taken, in the collection's order (no draw: 100 is the whole collection).

Labelled prompt by prompt by POLICY.md by round 32's helper "route35", who wrote no role or config example, from
the listing alone (``--list``), and committed before anything routed them. Labelling rule: the request decides, not
the topic — code engineer; maths, logic and reasoning puzzles research, engineer; knowledge, explanations, advice
research (everyday advice and opinions also chat); lists of ideas, plans and outlines writer, research (research
first where it is knowledge listed); compositions (emails, stories, slogans, dialogue lines to write) writer; a
chore on given text (extract, classify, convert, correct, translate, count) utility with its POLICY.md co-labels;
rewriting given prose for style or register writer, utility; a summary of given text utility, writer, research; a
question answered from a given passage research, utility; role-play as conversation in character chat, writer;
explaining a joke or a riddle research, chat.
100 candidates, 0 dropped by the rule above, all 100 labelled (none marked ``x``). Best fit: research 60, writer 17,
utility 16, chat 7, engineer 0; 82 accept more than one agent (accepted anywhere: research 82, utility 42, writer 37,
chat 32, engineer 6); always-research scores 82.0%. Short (median 100 characters, 8–516): terse questions, puzzles
and word problems, instructions with their input after a line break (a table, an article, a dialogue, a list), few-
shot set-ups to continue. **Caveats:** one labeller; 100 lines (a 95% interval of about ±8 points); every line in
Japanese, so this reads the multilingual path only; research dominates, as in the collection; chat rests on 7
prompts, and no line is best fit for engineer. The text is ELYZA's (CC-BY-SA-4.0): the file is here for evaluation
under those terms, with attribution, not under the project's MIT licence.
Run: python mkfresh_elyza.py RESULTS_JSON [--list] > fresh_elyza.jsonl
"""
import json
import sys
from pathlib import Path

from mkfresh_common import kept_fresh, known_and_pools, write

LABELS = """0 rwc|1 w|2 rw|3 rw|4 r|5 ur|6 ru|7 u|8 u|9 ur|
10 w|11 cwr|12 u|13 cwr|14 ru|15 w|16 wu|17 rc|18 wu|19 r|
20 ruw|21 rc|22 r|23 wru|24 uwr|25 re|26 re|27 rc|28 r|29 uw|
30 rc|31 rc|32 wr|33 rc|34 rc|35 crw|36 cr|37 rc|38 r|39 r|
40 r|41 rc|42 ru|43 rcw|44 reu|45 ruc|46 rc|47 ru|48 reu|49 ure|
50 rc|51 ru|52 re|53 rc|54 ru|55 ur|56 cw|57 ru|58 r|59 ru|
60 ru|61 ru|62 rc|63 rc|64 ru|65 ur|66 wu|67 cr|68 cw|69 rc|
70 rw|71 wr|72 uw|73 wur|74 rc|75 w|76 ru|77 rw|78 uwr|79 ru|
80 ur|81 rwu|82 ru|83 rw|84 w|85 rc|86 wc|87 rw|88 u|89 rc|
90 rc|91 wr|92 w|93 wcr|94 ur|95 ru|96 rwc|97 ru|98 wr|99 ur|"""


def candidates(path: str) -> list[dict]:
    """Every task's input, with its position in the collection (0–99)."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [{"prompt": r["input"].strip(), "id": i} for i, r in enumerate(rows) if r["input"].strip()]


def sample(path: str) -> list[dict]:
    return kept_fresh(candidates(path), known_and_pools("fresh_elyza.jsonl"))


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "elyza:tasks-100:{id}", "elyza", "--list" in sys.argv)


if __name__ == "__main__":
    main()
