"""Write fresh_trbench.jsonl: held-out Turkish requests, the "Turkish Language Benchmark Suite v2" (round 38).

Source: warhack811/Olympus at 6187bd9 (``docs/turkish_benchmark_v2_questions.md``, removed from the repository in a
later commit): 100 requests written in Turkish by the project's author to test models' Turkish in five kinds of 20 —
spelling and grammar (fix a sentence, which spelling is right and why), creative writing (stories, poems, dialogues,
scenes), reasoning and logic (riddles, word problems, syllogisms), role-play in street and everyday registers (a
persona and a line to answer in character), general culture (Turkish history, food, literature, geography). No set
here reads it, and none is written in Turkish but a few translated lines and evalsforeign's exam items: round 38's
language check was chosen on langs_dev.jsonl, whose Turkish lines this helper wrote; this is someone else's Turkish.
Candidates: every numbered request, none within a word TF-IDF cosine of 0.5 of a line of any set here (fresh_* and
the correction pools included), of a role or config example, or of an earlier candidate (mkfresh_common.py's rule);
all kept are taken, in the file's order (no draw: 100 is the whole collection).

Labelled prompt by prompt by POLICY.md by round 38's helper "route38" (who wrote no role or config example; who wrote
langs_dev.jsonl) from the listing alone (``--list``), and committed in a commit of its own before anything routed
them. Labelling rule: a fix of a given sentence utility, writer; a question about spelling, grammar or a word
research (research, utility when it asks about a given sentence); compositions writer; riddles and logic puzzles
research, chat; arithmetic and probability research, engineer; a persona to speak as chat, writer (writer first where
the line is a text to publish: an e-mail, rap lyrics, a promotion); knowledge research.
100 candidates, 0 dropped by the rule above, all 100 labelled. Best fit: research 57, writer 23, chat 17, utility 3,
engineer 0; 44 accept more than one agent (accepted anywhere: research 60, writer 44, chat 31, engineer 6, utility
4); always-research scores 60.0%. Short: median 88 characters (36–207). **Caveats:** one labeller; 100 lines (a 95%
interval of about ±9 points); every line in Turkish — a language USE multilingual knows —, so it reads whether the
fast path takes Turkish for Turkish, not Vietnamese, Finnish or Czech; no code and few chores.
**Licence:** the repository states none; the lines are here for evaluation only — delete the file and its line in
``routing_sets.py`` where that does not suit you (only the routing benchmarks and tests/bench/test_routing_sets.py
read it).
Run: python mkfresh_trbench.py QUESTIONS_MD [--list] > fresh_trbench.jsonl
"""
import re
import sys
from pathlib import Path

from mkfresh_common import kept_fresh, known_and_pools, write

LABELS = """0 uw|1 r|2 uw|3 r|4 r|5 ru|6 r|7 r|8 r|9 ur|
10 r|11 r|12 r|13 r|14 r|15 r|16 r|17 r|18 rw|19 r|
20 w|21 wr|22 w|23 w|24 w|25 w|26 w|27 w|28 w|29 wr|
30 w|31 w|32 w|33 w|34 w|35 w|36 w|37 w|38 w|39 w|
40 rc|41 rc|42 rc|43 r|44 rc|45 rc|46 re|47 rc|48 re|49 rc|
50 re|51 r|52 re|53 re|54 re|55 r|56 rc|57 rc|58 rc|59 r|
60 cw|61 cw|62 cw|63 cw|64 cw|65 cw|66 cw|67 cw|68 cw|69 cw|
70 wc|71 cw|72 wc|73 cw|74 cw|75 cw|76 cw|77 wc|78 cw|79 cw|
80 r|81 r|82 r|83 r|84 r|85 r|86 r|87 r|88 r|89 r|
90 r|91 r|92 rcw|93 r|94 r|95 r|96 r|97 r|98 r|99 r|"""
ITEM = re.compile(r"^(\d+)\. (.+)$")


def candidates(path: str) -> list[dict]:
    """Every numbered request (1–100) with its number."""
    rows = [ITEM.match(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [{"prompt": m.group(2).strip(), "id": int(m.group(1))} for m in rows if m]


def sample(path: str) -> list[dict]:
    return kept_fresh(candidates(path), known_and_pools("fresh_trbench.jsonl"))


def main() -> None:
    write(sample(sys.argv[1]), LABELS, "id", "olympus:turkish_benchmark_v2:{id}", "trbench", "--list" in sys.argv)


if __name__ == "__main__":
    main()
