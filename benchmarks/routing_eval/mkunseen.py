# ruff: noqa: E501  (the label tables are data)
"""Write unseen.jsonl: a second labelled set, drawn and labelled (by POLICY.md) before round 3's tuning began.

Sources (copies passed on the command line):
  1. AlpacaEval's evaluation set (tatsu-lab/alpaca_eval, results/NullModel/model_outputs.json: the 805
     instructions): a seeded 90 of its `oasst` (OpenAssistant users) and 50 of its `helpful_base`
     (Anthropic HH everyday questions) subsets — collections not in dev/test.
  2. HWU64 personal-assistant utterances (xliuhw/NLU-Evaluation-Data, KFold_1 test fold CSVs) of the
     intents an assistant that cannot act could still take (jokes, praise, quirky talk, definitions,
     facts, maths, currencies, time zones, recipes, recommendations, emails and posts to compose).
Lines that only make sense as device actions or are unreadable were dropped (indices absent below).
Run: python mkunseen.py ALPACA_EVAL_MODEL_OUTPUTS.json HWU_TESTSET_CSV_DIR > unseen.jsonl
"""
import csv
import json
import random
import sys
from pathlib import Path

# sample index → acceptable agents, best first (c chat, e engineer, r research, w writer, u utility)
AE = """0 e|1 rw|2 rc|3 cw|4 r|5 r|6 r|7 rc|8 r|9 r|10 c|11 rc|12 rc|13 r|14 cr|15 ce|16 w|17 wre|18 r|19 e|
20 w|21 re|22 re|23 rcw|24 rc|25 r|26 wc|27 e|28 r|29 rc|30 re|31 r|32 cr|33 er|34 e|35 rc|36 r|37 r|38 rc|39 er|
40 w|41 wc|42 re|43 e|44 re|45 e|46 r|47 re|48 re|49 w|50 r|51 ruw|52 w|53 r|54 r|55 e|56 rc|57 rc|58 cr|59 re|
60 wcr|61 e|62 cr|63 r|64 rc|65 er|66 cr|67 c|68 r|69 r|70 cr|71 er|72 r|73 r|74 r|75 rw|76 e|77 cr|78 r|79 r|
80 e|81 e|82 e|83 re|84 r|85 w|86 c|87 wc|88 e|89 r|90 r|91 r|92 r|93 rc|94 r|95 r|96 r|97 r|98 r|99 r|
100 rc|101 r|102 r|103 r|104 r|105 r|106 r|107 r|108 r|109 r|110 r|111 r|112 r|113 r|114 r|115 r|116 r|117 r|118 r|119 r|
120 r|121 r|122 w|123 rc|124 r|125 r|126 r|127 r|128 rc|129 rc|130 r|131 r|132 r|133 r|134 r|135 r|136 r|137 r|138 rc|139 r"""
HWU = """0 r|1 r|2 r|5 r|6 r|7 ur|8 ur|13 ur|15 w|16 w|20 c|21 c|22 c|23 c|24 c|25 c|26 c|27 c|28 c|29 c|30 c|31 c|32 c|33 c|
37 r|42 cr|43 rc|45 c|46 ru|47 ru|48 ru|49 ur|50 ru|51 ur|52 ru|53 r|54 rc|55 r|56 r|57 r|58 r|60 r|61 r|62 r|63 r|64 r|65 r|66 r|
67 re|68 re|70 ur|71 re|72 re|74 r|75 r|76 r|77 r|78 r|79 r|80 r|81 r|82 r|83 r|84 r|85 r|86 r|87 r|88 rc|89 rc|91 r|92 r|94 r|
97 w|98 w|99 w|100 w"""
AGENTS = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}
HWU_INTENTS = {"cooking_recipe": 7, "datetime_convert": 7, "email_sendemail": 6, "general_joke": 7, "general_praise": 7,
               "general_quirky": 12, "qa_currency": 7, "qa_definition": 7, "qa_factoid": 7, "qa_maths": 7,
               "recommendation_events": 7, "recommendation_locations": 7, "recommendation_movies": 7, "social_post": 6}


def labels(table: str) -> dict[int, list[str]]:
    pairs = (item.split() for item in table.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v] for k, v in pairs}


def main() -> None:
    here = Path(__file__).resolve().parent
    seen = {json.loads(line)["text"].strip().lower()[:200]
            for name in ("dev.jsonl", "test.jsonl") for line in (here / name).read_text().splitlines()}
    rng = random.Random(2611)
    alpaca = json.loads(Path(sys.argv[1]).read_text())
    sample = []
    for dataset, n in (("oasst", 90), ("helpful_base", 50)):
        items = [(i, x["instruction"]) for i, x in enumerate(alpaca)
                 if x["dataset"] == dataset and x["instruction"].strip().lower()[:200] not in seen]
        sample += [(dataset, i, t) for i, t in rng.sample(items, n)]
    rng = random.Random(2611)
    utterances = []
    for intent, n in sorted(HWU_INTENTS.items()):
        texts: list[str] = []
        with open(Path(sys.argv[2]) / f"{intent}.csv", newline="") as f:
            for row in csv.DictReader(f, delimiter=";"):
                t = row["answer_from_user"].strip().strip("<>").strip()
                if t and t.lower() not in (x.lower() for x in texts):
                    texts.append(t)
        utterances += [(intent, t) for t in rng.sample(texts, min(n, len(texts)))]
    for k, accept in labels(AE).items():
        dataset, i, text = sample[k]
        print(json.dumps({"text": text, "accept": accept, "source": f"alpaca_eval:{dataset}:{i}",
                          "style": "oasst" if dataset == "oasst" else "everyday"}, ensure_ascii=False))
    for k, accept in labels(HWU).items():
        intent, text = utterances[k]
        print(json.dumps({"text": text, "accept": accept, "source": f"hwu64:{intent}", "style": "assistant-utterance"},
                         ensure_ascii=False))


if __name__ == "__main__":
    main()
