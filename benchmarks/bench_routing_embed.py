"""Issue #10, round 22: a non-generative slow path — a classifier over the embedded 0.5B model's own representation.

Below the calibrated threshold (0.92) the fast path's guess is right 77.7% of the time on tuning data; the 0.5B
model asked to *choose* (bench_routing_slow.py) is right 32–50%. Here the model is not asked anything: its mean-pooled
hidden state (llama.cpp, ``embedding=True``) of each training text — the fast path's own samples: config examples,
descriptions and the role examples — trains a logistic regression, and a message below the threshold is decided by
that regression combined with the fast path's vote. Variants (``--variants``): ``fast`` (the fast guess), ``emb``
(the regression alone), ``top3`` (the regression among the fast path's three best candidates), ``avg:W`` (argmax of
(1−W)·fast + W·regression). A long message is read as the fast path reads it (its views, weighted).

Chosen on the ten tuning files only, holding each out in turn (nested: each file's variant chosen on the other
nine); ``--held-out`` reads every held-out set's below-threshold messages once, for the variant named by ``--pick``,
and prints fixed / broken against the fast guess with a two-sided sign test. ``--time N`` embeds N below-threshold
tuning messages one at a time and prints per-message seconds (run it under ``flock /work/team/bench.lock``).

Embeddings are cached in ``data_dir()/routing-embed/`` keyed by the model file's SHA-256 and the texts, so a rerun
(or another variant) embeds nothing again; ``--fill`` only fills that cache (two fills can run side by side). One
llama.cpp thread: with two, on this shared 2-core machine at load ~7, a short text took 7.3 s instead of 1.2 s.
Round 22's run (benchmarks/README.md, "Orchestrator slow path"; measured, not landed):
``bench_routing_embed.py --fill training --per-class 80``, ``--fill tuning --sample 10``, then
``--per-class 80 --sample 10 [--c 0.1|10] --variants fast emb top3 avg:0.25 avg:0.5 avg:0.75``, and
``flock /work/team/bench.lock … --time 10``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.agents.classifier import Classifier, Decision, training_samples
from modelyard.agents.evaluation import Labelled, read_labels
from modelyard.agents.request import views
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config import load_config
from modelyard.paths import data_dir, default_model_path, embedded_default_config
from routing_sets import HELD_OUT, TUNING
from routing_sets import path as set_path

if TYPE_CHECKING:
    from numpy.typing import NDArray

THRESHOLD = 0.92
#: the model's context (one batch of texts)
N_CTX = 512
#: characters of one view the model reads: its first and last half of this (~75 tokens; a token costs ~25 ms of
#: CPU on one core here, so a long message's two views stay a few seconds)
VIEW_CHARS = 300
CANDIDATES = 3


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class Embedder:
    """Mean-pooled embeddings of the embedded GGUF, cached on disk per text (model hash + pooling + text)."""

    def __init__(self, model: Path, threads: int = 1):
        self.model, self.threads = model, threads
        self.tag = f"{file_hash(model)}-mean-{VIEW_CHARS}"
        self.folder = data_dir() / "routing-embed" / self.tag
        self.folder.mkdir(parents=True, exist_ok=True)
        self._llm: Any = None
        self.embedded = 0

    @staticmethod
    def cap(text: str) -> str:
        half = VIEW_CHARS // 2
        return text if len(text) <= VIEW_CHARS else f"{text[:half]} … {text[-half:]}"

    def _path(self, text: str) -> Path:
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.npy"

    def llm(self) -> Any:
        if self._llm is None:
            import llama_cpp

            self._llm = llama_cpp.Llama(str(self.model), embedding=True, n_ctx=N_CTX, n_batch=N_CTX,
                                        n_ubatch=N_CTX, n_threads=self.threads, n_threads_batch=self.threads,
                                        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False)
        return self._llm

    def raw(self, text: str) -> NDArray:
        """Embed without the cache (for timing)."""
        import numpy as np

        vector = np.asarray(self.llm().embed(self.cap(text) or " ", truncate=True), dtype=np.float32)
        return vector / (np.linalg.norm(vector) or 1.0)

    def many(self, texts: list[str], batch: int = 16) -> None:
        """Embed the texts not cached yet, several per llama.cpp batch (~40% less CPU per text than one by one)."""
        import numpy as np

        todo = sorted({t for t in texts if not self._path(t).is_file()})
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            for text, vector in zip(chunk, self.llm().embed([self.cap(t) or " " for t in chunk], truncate=True),
                                    strict=True):
                v = np.asarray(vector, dtype=np.float32)
                np.save(self._path(text), v / (np.linalg.norm(v) or 1.0))
                self.embedded += 1

    def __call__(self, text: str) -> NDArray:
        import numpy as np

        path = self._path(text)
        if not path.is_file():
            self.many([text])
        return np.load(path)


def main() -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=["fast", "emb", "top3", "avg:0.25", "avg:0.5", "avg:0.75"])
    parser.add_argument("--sample", type=int, default=0, help="at most this many below-threshold lines per file")
    parser.add_argument("--per-class", type=int, default=0,
                        help="train on at most this many of each agent's texts (seeded; 0: all 1,640 — ~9 min of CPU)")
    parser.add_argument("--c", type=float, default=1.0, help="the regression's inverse regularisation")
    parser.add_argument("--held-out", action="store_true", help="read the held-out sets once, with --pick")
    parser.add_argument("--pick", default="", help="the variant chosen on the tuning files (--held-out)")
    parser.add_argument("--time", type=int, default=0, help="time N uncached embeddings and stop")
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--fill", choices=["training", "tuning", "held-out"],
                        help="only embed (into the cache) the training texts or a set's below-threshold views")
    args = parser.parse_args()

    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    samples = training_samples(config, routing_targets(config, name))
    fast = Classifier(samples)
    classes = list(fast.classes)
    agents = set(config.agents)
    embedder = Embedder(Path(args.model))

    def below(files: tuple[str, ...]) -> dict[str, list[tuple[Labelled, Decision]]]:
        out = {}
        for file in files:
            decided = [(r, fast.decide(r.text)) for r in read_labels(set_path(file), agents)]
            kept = [(r, d) for r, d in decided if d.confidence < THRESHOLD]
            if args.sample and len(kept) > args.sample:
                kept = random.Random(22).sample(kept, args.sample)
            out[file] = kept
        return out

    if args.time:
        pool = [r for kept in below(TUNING).values() for r, _ in kept]
        picked = random.Random(7).sample(pool, min(args.time, len(pool)))
        embedder.raw("warm up")
        seconds, cpu, tokens = [], [], []
        for r in picked:
            t0, c0 = time.perf_counter(), time.process_time()
            for view, _ in views(r.text):
                embedder.raw(view)
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            tokens.append(sum(len(embedder.llm().tokenize(embedder.cap(v).encode(), add_bos=False))
                              for v, _ in views(r.text)))
        load = os.getloadavg()
        print(json.dumps({"n": len(seconds), "p50_s": round(statistics.median(seconds), 3),
                          "p90_s": round(sorted(seconds)[int(0.9 * len(seconds))], 3), "max_s": round(max(seconds), 3),
                          "cpu_p50_s": round(statistics.median(cpu), 3), "cpu_max_s": round(max(cpu), 3),
                          "tokens_p50": statistics.median(tokens), "load": [round(x, 2) for x in load]}))
        return

    # the regression over the model's representation of the fast path's own training texts
    chosen = {c: (random.Random(22).sample(samples[c], args.per_class)
                  if args.per_class and len(samples[c]) > args.per_class else list(samples[c])) for c in classes}
    texts = [t for c in classes for t in chosen[c]]
    y = [c for c in classes for _ in chosen[c]]
    t0 = time.time()
    if args.fill in ("tuning", "held-out"):
        filled = below(TUNING if args.fill == "tuning" else HELD_OUT)
        embedder.many([v for kept in filled.values() for r, _ in kept for v, _ in views(r.text)])
        print(json.dumps({"filled": args.fill, "embedded_now": embedder.embedded, "seconds": round(time.time() - t0)}))
        return
    embedder.many(texts)
    if args.fill:
        print(json.dumps({"filled": "training", "embedded_now": embedder.embedded,
                          "seconds": round(time.time() - t0)}))
        return
    x = np.vstack([embedder(t) for t in texts])
    print(json.dumps({"training_texts": len(texts), "embedded_now": embedder.embedded,
                      "seconds": round(time.time() - t0)}), file=sys.stderr, flush=True)
    regression = LogisticRegression(C=args.c, max_iter=2000).fit(x, y)
    assert list(regression.classes_) == sorted(classes)
    order = [list(regression.classes_).index(c) for c in classes]

    def emb_proba(text: str) -> NDArray:
        reads = views(text)
        return sum((w * regression.predict_proba(embedder(v)[None, :])[0][order] for v, w in reads),
                   np.zeros(len(classes)))

    def choose(variant: str, text: str, decision: Decision) -> str:
        if variant == "fast":
            return str(decision.agent)
        p_fast = np.array([fast.scores(text)[c] for c in classes])
        p_emb = emb_proba(text)
        if variant == "emb":
            return classes[int(p_emb.argmax())]
        if variant == "top3":
            top = np.argsort(-p_fast)[:CANDIDATES]
            return classes[int(top[int(p_emb[top].argmax())])]
        how, weight = variant.split(":")
        assert how == "avg"
        w = float(weight)
        return classes[int(((1 - w) * p_fast + w * p_emb).argmax())]

    if args.held_out:
        assert args.pick, "--held-out reads the held-out sets once, for the variant chosen: name it with --pick"
        fixed = broken = same_right = n = 0
        per = {}
        for file, kept in below(HELD_OUT).items():
            f_right = p_right = 0
            for r, decision in kept:
                a = decision.agent in r.accept
                b = choose(args.pick, r.text, decision) in r.accept
                f_right += a
                p_right += b
                fixed += b and not a
                broken += a and not b
                same_right += a and b
                n += 1
            per[file] = {"n": len(kept), "fast": f_right, args.pick: p_right}
            print(json.dumps({"set": file, **per[file]}), flush=True)
        print(json.dumps({"below_threshold": n, "fast": sum(v["fast"] for v in per.values()),
                          args.pick: sum(v[args.pick] for v in per.values()), "fixed": fixed, "broken": broken,
                          "sign_p": sign_test(fixed, broken), "embedded_now": embedder.embedded}))
        return

    sets = below(TUNING)
    results: dict[str, dict[str, int]] = {v: {} for v in args.variants}
    for file, rows in sets.items():
        for variant in args.variants:
            results[variant][file] = sum(choose(variant, r.text, d) in r.accept for r, d in rows)
        print(json.dumps({"file": file, "n": len(rows), **{v: results[v][file] for v in args.variants},
                          "embedded_now": embedder.embedded}), flush=True)
    n = sum(len(rows) for rows in sets.values())
    for variant in args.variants:
        print(json.dumps({"variant": variant, "right": sum(results[variant].values()), "of": n}))
    nested = {}
    for held in TUNING:  # each file's variant chosen on the other nine
        best = max(args.variants, key=lambda v: sum(results[v][f] for f in TUNING if f != held))
        nested[held] = (best, results[best][held])
    print(json.dumps({"nested": sum(r for _, r in nested.values()), "of": n,
                      "chosen": {f: v for f, (v, _) in nested.items()}}))


def sign_test(fixed: int, broken: int) -> float:
    """Two-sided exact sign test of fixed against broken (ties dropped)."""
    n = fixed + broken
    if not n:
        return 1.0
    k = min(fixed, broken)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return round(min(1.0, 2 * tail), 4)


if __name__ == "__main__":
    main()
