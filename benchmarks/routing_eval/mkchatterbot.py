# ruff: noqa: E501  (the label table is data)
"""Write chatterbot.jsonl: a fourth held-out set, everyday chatbot messages from a PyPI package.

Source: the ``chatterbot-corpus`` wheel on PyPI (version 1.3.3), ``chatterbot_corpus/data/<language>/*.yml``:
conversations people wrote for a chatbot (greetings, feelings, insults, questions about the bot,
trivia, science, literature, movies, sports, money, coding and tech-support requests). The first
message of each conversation; a seeded 100 of the English ones and 20 of ten other languages
(German, French, Spanish, Italian, Portuguese, Russian, Japanese, Chinese, Dutch, Ukrainian),
duplicates removed. Labelled prompt by prompt from POLICY.md before any classifier ran on them.
Run: python mkchatterbot.py CHATTERBOT_CORPUS_DATA_DIR > chatterbot.jsonl
"""
import json
import random
import sys
from pathlib import Path

import yaml

AGENTS = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}
# sample index → acceptable agents, best first
LABELS = """0 c|1 e|2 e|3 c|4 r|5 c|6 c|7 rc|8 r|9 r|10 c|11 c|12 r|13 e|14 r|15 r|16 c|17 r|18 c|19 r|
20 r|21 c|22 re|23 e|24 c|25 r|26 c|27 c|28 c|29 r|30 cr|31 e|32 e|33 r|34 r|35 r|36 c|37 c|38 r|39 c|
40 e|41 c|42 c|43 c|44 c|45 r|46 r|47 c|48 c|49 r|50 r|51 r|52 er|53 c|54 c|55 c|56 r|57 c|58 e|59 c|
60 r|61 r|62 r|63 c|64 r|65 c|66 r|67 r|68 r|69 r|70 c|71 r|72 r|73 c|74 cr|75 e|76 c|77 c|78 e|79 r|
80 c|81 r|82 r|83 c|84 c|85 r|86 r|87 c|88 r|89 c|90 r|91 c|92 r|93 r|94 r|95 r|96 c|97 r|98 cr|99 c|
100 c|101 c|102 c|103 c|104 c|105 cw|106 cr|107 c|108 c|109 c|110 r|111 r|112 rc|113 cr|114 r|115 re|116 er|117 cr|118 r|119 c"""
OTHER = ("german", "french", "spanish", "italian", "portuguese", "russian", "japanese", "chinese", "dutch", "ukrainian")


def labels() -> dict[int, list[str]]:
    pairs = (item.split() for item in LABELS.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v] for k, v in pairs}


def firsts(root: Path, language: str) -> list[tuple[str, str]]:
    """(file, first message) of each conversation in one language, duplicates removed."""
    found, seen = [], set()
    for file in sorted((root / language).glob("*.yml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for conversation in data.get("conversations") or []:
            if isinstance(conversation, list) and conversation and isinstance(conversation[0], str):
                text = conversation[0].strip()
                if len(text) >= 3 and text.lower() not in seen:
                    seen.add(text.lower())
                    found.append((f"{language}/{file.stem}", text))
    return found


def main() -> None:
    root = Path(sys.argv[1])
    rng = random.Random(20261128)
    rows = rng.sample(firsts(root, "english"), 100)
    rows += rng.sample([x for language in OTHER for x in firsts(root, language)], 20)
    table = labels()
    for k, (source, text) in enumerate(rows):
        print(json.dumps({"text": text, "accept": table[k], "source": f"chatterbot-corpus:{source}",
                          "style": "chatbot"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
