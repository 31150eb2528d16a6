"""Write belle_dev.jsonl: more of the BELLE evaluation set's Chinese instructions, to tune on (round 30).

The population of fresh_belle.jsonl (mkfresh_belle.py says what and where: LianjiaTech/BELLE ``eval/eval_set.json``
at 645084d, Apache-2.0), none of its 160 lines: a seeded 12 of each class among the candidates mkfresh_belle.py kept
and did not pick, none within a word TF-IDF cosine of 0.5 of a line of any set here (fresh_belle's included), of a
role or config example, or of an earlier candidate (mkfresh_common.py's rule). Why: round 30 found that the ten
tuning files hold 9 chores in another language (extract, classify, translate, summarise given text), too few to
choose or check a lever for them on, while fresh_belle's utility lines were its weakest kind; a later round may tune on
this file, and read fresh_belle held out.
Labelled prompt by prompt by POLICY.md by round 30's helper "routes31", with mkfresh_belle.py's rule, from the listing
alone (``--list``), and committed before anything routed them. 840 candidates (the 160 of fresh_belle left out), 5
dropped by the rule above, 835 kept, 120 picked, all labelled. Best fit: research 54, utility 36, writer 17, engineer
13; 76 accept more than one agent (accepted anywhere: research 81, utility 58, writer 37, engineer 26, chat 6);
always-research scores 67.5%. One labeller (fresh_belle's); the same population as fresh_belle, so a lever chosen on
this file and read on fresh_belle is read on its own population: the other held-out sets say whether it carries.
Run: python mkbelle_dev.py EVAL_SET_JSON [--list] > belle_dev.jsonl
"""
import sys

from mkfresh_belle import candidates, draw, sample
from mkfresh_common import write

PER_CLASS = 12
LABELS = """0 uwr|1 e|2 w|3 ur|4 e|5 wu|6 e|7 w|8 ur|9 re|
10 er|11 u|12 ur|13 r|14 rw|15 re|16 r|17 ru|18 r|19 uw|
20 ur|21 wu|22 ru|23 rc|24 ur|25 w|26 u|27 r|28 wr|29 ru|
30 r|31 wu|32 uwr|33 e|34 ru|35 u|36 wu|37 re|38 w|39 rw|
40 r|41 re|42 uwr|43 r|44 ru|45 r|46 ru|47 re|48 r|49 ru|
50 uwr|51 u|52 re|53 r|54 r|55 w|56 ru|57 ur|58 w|59 uwr|
60 uwr|61 uw|62 ru|63 e|64 ru|65 ur|66 uw|67 r|68 w|69 uw|
70 rc|71 er|72 uwr|73 ru|74 uwr|75 r|76 r|77 ru|78 wu|79 ur|
80 uwr|81 uwr|82 wr|83 uw|84 e|85 e|86 r|87 rc|88 ru|89 re|
90 ur|91 w|92 uwr|93 e|94 rc|95 uw|96 re|97 re|98 rc|99 e|
100 r|101 re|102 re|103 uer|104 uw|105 re|106 rc|107 ru|108 w|109 u|
110 e|111 ru|112 ur|113 ur|114 u|115 e|116 wu|117 r|118 r|119 ru|"""


def rest(path: str) -> list[dict]:
    held = {row["id"] for row in sample(path)}
    return draw([r for r in candidates(path) if r["id"] not in held], "belle_dev.jsonl", 20261202, PER_CLASS)


def main() -> None:
    write(rest(sys.argv[1]), LABELS, "id", "belle:eval_set:{id}:{class}", "belle", "--list" in sys.argv)


if __name__ == "__main__":
    main()
