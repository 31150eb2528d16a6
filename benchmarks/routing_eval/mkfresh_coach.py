"""Write fresh_coach.jsonl: held-out English instructions of the CoachLM150 test set (round 40).

Source: lunyiliu/CoachLM (Apache-2.0, the repository's LICENSE) at 3761729, ``CoachLM150 Test Set.json``: 150
instructions the CoachLM authors (Huawei) collected as an instruction-following test suite, "covering topics from
information extraction, scientific inference, dialogue completion, brainstorming, in-domain question answering, and
more", each with an optional input and a human reference answer (not used here). Everyday advice and
recommendations, multiple-choice science items, one-sentence summaries of pasted news, titles and ads to write,
stories and jokes, dialogues to compose, entity and keyword extraction, translation, grammar fixes, ordering, sorting
and classifying given items — many of them chores on given text and short compositions, the kinds round 39 named
weakest. No set here reads this file. Candidates: every instruction, its input pasted below it after a blank line
as a person would send it (mkfresh_seed.py's form), none within a word TF-IDF cosine of 0.5 of a line of any set
here (fresh_* and the correction pools included), of a role or config example, or of an earlier candidate
(mkfresh_common.py's rule); every one kept is used, in the file's order.

Labelled prompt by prompt by POLICY.md by round 40's helper "route40en" from the listing alone (``--list``), before
anything routed them, and committed in a commit of its own before any reading. Labelling rule: the request decides,
not the topic — knowledge, explanations, recommendations, multiple-choice and science items research (everyday
advice, opinions, hypotheticals, riddles and puzzles also chat); maths research, engineer; compositions — stories,
emails, ads, titles, quizzes, dialogues to write — writer (lists of ideas writer, research); a chore on given text
(extract, classify, sort, order, translate, correct, convert) utility with its POLICY.md co-labels (a summary of a
pasted text utility, writer, research; rewriting given prose for style writer, utility; grammar fixes utility,
writer; classifying given items utility, research); a question answered from a pasted passage research, utility;
talk about feelings, the assistant and small talk chat (feelings that ask for advice chat, research); jokes chat,
writer. The author of this set also chose round 40's lever afterwards, on the tuning files only.
150 candidates, 10 dropped by the rule above, 140 kept, all labelled (none marked ``x``). Best fit: research 51,
utility 47, writer 32, chat 10; 90 accept more than one agent (accepted anywhere: research 102, writer 63, utility 56,
chat 31, engineer 4); always-research scores 72.9%. Median 103 characters (21–1,321; 7 over 800). **Caveats:** one
labeller; written by the CoachLM authors to test models, not typed by users (a few read as translated: "Where do you
image humankind to be…"), some inputs come from public corpora (news summaries of XSum/CNN, a Dolly passage, the
Goocrux playground example); no code (engineer rests on 4 co-labels); chat on 10 best-fit lines.
Run: python mkfresh_coach.py COACHLM150_JSON [--list] > fresh_coach.jsonl
"""
import json
import sys
from pathlib import Path

from mkfresh_common import kept_fresh, known_and_pools, write

LABELS = """0 rc|1 rc|2 ru|3 ru|4 rc|5 rc|6 rc|7 r|8 r|9 r|
10 r|11 rc|12 rc|13 r|14 r|15 r|16 r|17 r|18 r|19 r|
20 r|21 r|22 r|23 uwr|24 rwc|25 r|26 wu|27 uwr|28 uwr|29 uwr|
30 wur|31 uwr|32 uwr|33 uwr|34 uwr|35 uwr|36 uwr|37 wu|38 uwr|39 wu|
40 uwr|41 uwr|42 w|43 w|44 w|45 wr|46 wr|47 w|48 w|49 w|
50 we|51 cwr|52 cw|53 re|54 re|55 re|56 r|57 r|58 r|59 r|
60 r|61 r|62 wcr|63 cr|64 cr|65 wc|66 cr|67 r|68 rc|69 ruw|
70 r|71 r|72 r|73 r|74 cr|75 wc|76 rc|77 r|78 rc|79 rw|
80 r|81 ur|82 ur|83 ur|84 wrc|85 rcw|86 rw|87 ur|88 ur|89 ur|
90 ur|91 ur|92 ur|93 ur|94 ur|95 uwr|96 uw|97 uw|98 uwr|99 u|
100 uw|101 w|102 wu|103 w|104 wrc|105 uw|106 uw|107 uw|108 w|109 w|
110 ur|111 ur|112 uwr|113 uwr|114 ur|115 ur|116 ruc|117 ur|118 ur|119 ur|
120 ur|121 ur|122 ur|123 ur|124 ur|125 wc|126 w|127 w|128 w|129 cw|
130 w|131 w|132 w|133 w|134 rc|135 c|136 w|137 c|138 rc|139 c|"""


def prompt(task: dict) -> str:
    given = task["input"].strip()
    return task["instruction"].strip() + (f"\n\n{given}" if given else "")


def sample(path: str) -> list[dict]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    for i, row in enumerate(rows):
        row["prompt"], row["id"] = prompt(row), i
    return kept_fresh(rows, known_and_pools("fresh_coach.jsonl"))


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "coachlm150:{id}", "coach", "--list" in sys.argv)


if __name__ == "__main__":
    main()
