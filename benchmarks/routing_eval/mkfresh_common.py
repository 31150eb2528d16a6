"""What the fresh_*.jsonl makers share: the texts a fresh prompt must not resemble, and the test of resemblance.

The fresh sets (round 12) measure routing on collections nobody on the team had read. A prompt that is (nearly)
a line of another set of this folder, or of the role examples the fast path trains on (``src/modelyard/agents/
roles.py``, both example configs), would measure memory, not routing, so it is dropped **before** sampling:
a word TF-IDF cosine of ``LIMIT`` or more with any of them. Standard library only (no classifier is imported,
none runs): the makers were run, and the labels written, before anything routed these prompts.
"""
from __future__ import annotations

import ast
import json
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LIMIT = 0.5
AGENTS = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}
WORD = re.compile(r"\w+", re.UNICODE)


def known_texts() -> list[str]:
    """Every line of the other sets here, every role example and every config example."""
    sets = [f for f in sorted(HERE.glob("*.jsonl")) if not f.name.startswith(("fresh_", "corrections_fresh"))]
    texts = [json.loads(line)["text"] for f in sets for line in f.open(encoding="utf-8") if line.strip()]
    tree = ast.parse((ROOT / "src" / "modelyard" / "agents" / "roles.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            texts += [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    for config in sorted((ROOT / "examples").glob("*.yaml")):
        texts += re.findall(r"^\s+- ['\"]?(.+?)['\"]?$", config.read_text(encoding="utf-8"), re.M)
    return texts


def words(text: str) -> Counter[str]:
    return Counter(w.casefold() for w in WORD.findall(text))


def fresh(candidates: list[str], known: list[str]) -> list[bool]:
    """For each candidate: True when no known text reaches a TF-IDF cosine of LIMIT with it."""
    bags = [words(t) for t in known] + [words(t) for t in candidates]
    df: Counter[str] = Counter(w for bag in bags for w in bag)
    idf = {w: math.log((1 + len(bags)) / (1 + n)) + 1 for w, n in df.items()}

    def vector(bag: Counter[str]) -> dict[str, float]:
        v = {w: (1 + math.log(n)) * idf[w] for w, n in bag.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for i, bag in enumerate(bags[:len(known)]):
        for w, x in vector(bag).items():
            postings[w].append((i, x))
    out = []
    for bag in bags[len(known):]:
        dots: defaultdict[int, float] = defaultdict(float)
        for w, x in vector(bag).items():
            for i, y in postings.get(w, ()):
                dots[i] += x * y
        out.append(max(dots.values(), default=0.0) < LIMIT)
    return out


def labels(table: str) -> dict[int, list[str]]:
    """``"0 w|1 rc|2 x|…"`` → {0: ["writer"], 1: ["research", "chat"], 2: [], …} (best fit first; x: dropped)."""
    pairs = (item.split() for item in table.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v if c != "x"] for k, v in pairs}


def known_and_pools(own: str) -> list[str]:
    """:func:`known_texts` and every line of the fresh sets and correction pools here but ``own`` (the file made)."""
    pools = [f for f in sorted(HERE.glob("*fresh_*.jsonl")) if f.name != own]
    return known_texts() + [json.loads(x)["text"] for f in pools for x in f.open(encoding="utf-8") if x.strip()]


def kept_fresh(rows: list[dict], known: list[str]) -> list[dict]:
    """The rows whose ``prompt`` is fresh against ``known`` and against every earlier row kept (in order)."""
    far = fresh([r["prompt"] for r in rows], known)
    kept: list[dict] = []
    for row, ok in zip(rows, far, strict=True):  # a near-copy of an earlier candidate is dropped too
        if ok and (not kept or fresh([row["prompt"]], [k["prompt"] for k in kept])[0]):
            kept.append(row)
    print(f"# {len(rows)} candidates, {len(kept)} kept", file=sys.stderr)
    return kept


#: characters other than \n that ``str.splitlines`` breaks a line at, which ``ensure_ascii=False`` leaves raw in a
#: JSON string (U+2028 in an arena prompt): escaped, so every reader of a JSONL file sees one line per prompt
_LINE_BREAKS = {c: f"\\u{c:04x}" for c in (0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}


def write(picked: list[dict], table: str, tag: str, source: str, style: str, listing: bool) -> None:
    """With ``listing``, the candidates to label (``=== i [row[tag]] length``, long ones cut in the middle);
    else one JSONL line per labelled row (``source`` formatted with the row; rows marked ``x`` left out)."""
    if listing:
        for i, r in enumerate(picked):
            text = r["prompt"]
            shown = text if len(text) <= 900 else text[:600] + f"\n[… {len(text) - 900} chars …]\n" + text[-300:]
            print(f"=== {i} [{r[tag]}] {len(text)}\n{shown}\n")
        return
    accepted = labels(table)
    assert len(accepted) == len(picked), (len(accepted), len(picked))
    for i, r in enumerate(picked):
        if accepted[i]:
            line = json.dumps({"text": r["prompt"], "accept": accepted[i], "source": source.format(**r),
                               "style": style}, ensure_ascii=False)
            print(line.translate(_LINE_BREAKS))
