"""Write corrections_clinc.jsonl (a pool of corrections for bench_routing_learn.py, from outside the evaluation
sets) and, with ``heldout``, clinc_heldout.jsonl (more held-out prompts of the same kind, to measure them on).

Source: CLINC150's **train** split (clinc/oos-eval ``data/data_full.json``; dev and test took their
CLINC150 lines from its test split), 10 utterances (seeded) of each of the 39 intents assemble.py
uses, labelled by the same intent → agents table (fixed with POLICY.md before any tuning). Lines
equal to a dev, test or unseen prompt are left out.
Run: python mkcorrections.py DATA_FULL_JSON > corrections_clinc.jsonl
"""
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assemble import CLINC, accept

here = Path(__file__).resolve().parent
taken = {json.loads(line)["text"].strip().lower() for name in ("dev.jsonl", "test.jsonl", "unseen.jsonl")
         for line in (here / name).read_text().splitlines()}
data = json.loads(Path(sys.argv[1]).read_text())
split = "test" if sys.argv[2:] == ["heldout"] else "train"
rng = random.Random(1128)
for intent in sorted(CLINC):
    texts = sorted({t for t, i in data[split] if i == intent and t.strip().lower() not in taken})
    for text in (texts if split == "test" else rng.sample(texts, 10)):
        print(json.dumps({"text": text, "accept": accept(CLINC[intent]), "source": f"clinc150:{split}:{intent}"},
                         ensure_ascii=False))
