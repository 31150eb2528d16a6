"""Issue #10, round 19: the tuning sets' own labelled prompts as extra training examples, judged leave-one-file-out.

Each fold trains the fast path's classifier on ``default.yaml``'s samples (config + role examples) plus the other
nine tuning files' lines as a variant takes them, and scores it on the tenth — as unfamiliar traffic meets it; the
variant's size can then be chosen per fold on the other nine (``nested``). No held-out set is read: a tuning line
whose word trigrams overlap a held-out line's by 0.5 or more (Jaccard) is never trained on, found by text alone.

Run: ``.venv/bin/python benchmarks/bench_routing_lofo.py none long main:60 short:60 …`` — a variant is
``how[:cap[:seed]]``: ``none`` (the baseline), ``main`` (every line as the fast path reads it: a long one's
request), ``raw`` (every line whole), ``long`` / ``short`` (only lines over / up to 800 characters, as read),
``longonly`` (round 20: ``long``'s classifier decides only the lines over 800 characters, the unchanged one the rest);
``cap``: a seeded sample of at most that many lines per file. Prints one JSON line per variant, then the nested
choice over the variants given.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import defaultdict

from modelyard.agents.classifier import Classifier, Samples, training_samples
from modelyard.agents.evaluation import SHORT, Labelled, read_labels
from modelyard.agents.request import views
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config import load_config
from modelyard.paths import embedded_default_config
from routing_sets import CLINC_HELD_OUT, HELD_OUT, TUNING
from routing_sets import path as set_path

#: word-trigram Jaccard overlap with a held-out line at which a tuning line is not trained on
NEAR = 0.5
WORD = re.compile(r"\w+")


def shingles(text: str) -> set[str]:
    words = WORD.findall(text.lower())
    return {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}


def near_held_out(rows: dict[str, list[Labelled]], agents: set[str]) -> set[str]:
    """The tuning lines within :data:`NEAR` of some held-out line (18 of 1,313 in round 19)."""
    held = [shingles(r.text) for name in (*HELD_OUT, CLINC_HELD_OUT) for r in read_labels(set_path(name), agents)]
    index: defaultdict[str, set[int]] = defaultdict(set)
    for i, grams in enumerate(held):
        for gram in grams:
            index[gram].add(i)
    near = set()
    for lines in rows.values():
        for r in lines:
            grams, shared = shingles(r.text), defaultdict[int, int](int)
            for gram in grams:
                for i in index.get(gram, ()):
                    shared[i] += 1
            if any(n / len(grams | held[i]) >= NEAR for i, n in shared.items()):
                near.add(r.text)
    return near


def main() -> None:
    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    base = training_samples(config, routing_targets(config, name))
    agents = set(config.agents)
    rows = {n: read_labels(set_path(n), agents) for n in TUNING}
    near = near_held_out(rows, agents)

    def extra(files: list[str], how: str, cap: int | None, seed: int) -> list[tuple[str, str]]:
        out = []
        for file in files:
            lines = list(rows[file])
            if cap is not None and len(lines) > cap:
                lines = random.Random(seed).sample(lines, cap)
            for r in lines:
                wrong_length = (how in ("long", "longonly") and len(r.text) <= SHORT) or \
                    (how == "short" and len(r.text) > SHORT)
                if r.text in near or wrong_length:
                    continue
                out.append((r.text if how == "raw" else max(views(r.text), key=lambda v: v[1])[0], r.accept[0]))
        return out

    def classifier(added: list[tuple[str, str]]) -> Classifier:
        samples = Samples({k: list(v) for k, v in base.items()})
        samples.roles = dict(base.roles)
        for text, agent in added:
            if agent in samples:
                samples[agent].append(text)
        return Classifier(samples, calibrated=False)

    cache: list[Classifier] = []

    def base_clf() -> Classifier:
        if not cache:
            cache.append(classifier([]))
        return cache[0]

    results: dict[str, dict[str, int]] = {}
    for spec in _variants():
        parts = spec.split(":")
        how, cap, seed = parts[0], int(parts[1]) if len(parts) > 1 and parts[1] else None, \
            int(parts[2]) if len(parts) > 2 else 0
        t0 = time.time()
        plain = base_clf() if how == "none" else None
        per = {}
        for held in TUNING:
            clf = plain or classifier(extra([f for f in TUNING if f != held], how, cap, seed))
            short = base_clf() if how == "longonly" else clf  # longonly: short lines keep the unchanged classifier
            per[held] = sum((clf if len(r.text) > SHORT else short).decide(r.text).agent in r.accept
                            for r in rows[held])
        results[spec] = per
        print(json.dumps({"variant": spec, "right": sum(per.values()), "of": sum(len(v) for v in rows.values()),
                          "per": per, "seconds": round(time.time() - t0)}), flush=True)
    nested = {}
    for held in TUNING:  # each fold's variant chosen on the other nine files' scores
        best = max(results, key=lambda v: sum(results[v][f] for f in TUNING if f != held))
        nested[held] = (best, results[best][held])
    print(json.dumps({"nested": sum(r for _, r in nested.values()), "chosen": {f: v for f, (v, _) in nested.items()}}))


def _variants() -> list[str]:
    """The variants named on the command line (``--help``: the module's docstring, nothing run)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=["none"], metavar="how[:cap[:seed]]",
                        help="none, main, raw, long, longonly or short, optionally with a per-file cap and a seed")
    return list(parser.parse_args().variants)


if __name__ == "__main__":
    main()
