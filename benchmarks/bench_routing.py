"""Issues #3 and #10: the orchestrator's fast path — latency over 1,000 varied prompts, and how often it
picks an acceptable agent on held-out public prompts (benchmarks/routing_eval/test.jsonl), against
two simple baselines: always the most common agent, and the classifier trained on the config's own
descriptions and examples only (no built-in role examples — what issue #10 measured).

Run: ``.venv/bin/python benchmarks/bench_routing.py [--config FILE] [--labels FILE] [--compare] [--held-out
[--decisions FILE] [--same-as FILE]]``.
``--held-out`` also reads every held-out set of routing_eval/ once (routing_sets.HELD_OUT: the twenty, and
round 21's fresh_long): each one's acceptable share and right above the threshold, and all of them together;
with ``--decisions FILE`` it writes each line's agent and confidence, with ``--same-as FILE`` it compares them with such
a file from other code (round 23: a speed-up must change no decision and no confidence beyond float noise).
``--compare`` also times round 8's plain implementation (routing_reference.py) interleaved with the fast
one, and checks that both decide every prompt the same.
Prompts are built from the labelled set's sentences: as-is, lower-cased, with a prefix or a
suffix, with a typo, truncated, joined with another, and padded to a few hundred words, so the
latency covers short and long inputs. Targets: fast-path p50 ≤ 5 ms on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from modelyard.agents.classifier import Classifier, training_samples
from modelyard.agents.encoder import shared
from modelyard.agents.evaluation import read_labels, wilson
from modelyard.agents.orchestrator import Orchestrator
from modelyard.cli.agents_cmds import evaluate
from modelyard.config import load_config
from modelyard.ledger.labels import Label
from modelyard.paths import embedded_default_config
from routing_reference import reference
from routing_sets import HELD_OUT
from routing_sets import path as set_path

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = ["please ", "hey, ", "quick one: ", "can you ", "I need you to ", "urgent: ", ""]
SUFFIXES = ["", " thanks!", " asap", " — keep it short", " in detail please", "?"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def typo(text: str, rng: random.Random) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def prompts(base: list[str], n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = rng.choice(base)
        kind = i % 6
        if kind == 1:
            text = rng.choice(PREFIXES) + text.lower() + rng.choice(SUFFIXES)
        elif kind == 2:
            text = typo(text, rng)
        elif kind == 3:
            text = text[: max(8, len(text) // 2)]
        elif kind == 4:
            text = text + " Also, " + rng.choice(base).lower()
        elif kind == 5:
            text = " ".join([text] * rng.randint(10, 40))  # long message, a few hundred words
        out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(embedded_default_config()))
    parser.add_argument("--labels", default=str(ROOT / "benchmarks" / "routing_eval" / "test.jsonl"))
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--corrections", type=Path,
                        help="labelled JSONL: its first 50 lines become trusted routing labels (the latency of "
                             "the fast path with a correction memory)")
    parser.add_argument("--threshold", type=float, default=0.92,
                        help="the confidence line to report above (default: reference-mac64.yaml's, calibrated "
                             "on dev + sharegpt_dev)")
    parser.add_argument("--compare", action="store_true",
                        help="also time round 8's implementation of the same classifier (routing_reference.py), "
                             "interleaved, and check both make the same decision with the same confidence")
    parser.add_argument("--held-out", action="store_true",
                        help="also read every held-out set (routing_sets.HELD_OUT) once and report each one")
    parser.add_argument("--decisions", type=Path,
                        help="with --held-out: write each held-out line's agent and confidence there (JSONL)")
    parser.add_argument("--same-as", type=Path,
                        help="with --held-out: compare each held-out line's agent and confidence with a --decisions "
                             "file written by other code (a speed-up must change neither); exits 1 if any differs")
    args = parser.parse_args()

    config = load_config(args.config)
    config = config.model_copy(update={"orchestration": config.orchestration.model_copy(
        update={"threshold": args.threshold})})
    t0 = time.perf_counter()
    learned = [Label(i, r.text, r.accept[0], "cli") for i, r in
               enumerate(read_labels(args.corrections, set(config.agents))[:50], 1)] if args.corrections else []
    orchestrator = Orchestrator.from_config(config, learned)
    assert orchestrator is not None, "the config has no orchestrator"
    build_ms = (time.perf_counter() - t0) * 1000
    rows = read_labels(Path(args.labels), set(config.agents))
    texts = prompts([r.text for r in rows], args.n)

    plain = Classifier({t: [x for x in (config.agents[t].description, *config.agents[t].examples) if x.strip()]
                        or [t] for t in orchestrator.targets})
    # the same examples without the sentence encoder's member: what the encoder costs per decision
    unencoded = Classifier(training_samples(config, orchestrator.targets), encoder=None)
    before = reference(orchestrator.classifier) if args.compare else None
    for text in texts[:50]:  # warm up caches and allocations
        orchestrator.decide_fast(text)
        plain.decide(text)
        unencoded.decide(text)
        if before is not None:
            before.decide(text)
    latencies, plain_latencies, unencoded_latencies = [], [], []
    cpu: dict[tuple[str, bool], list[float]] = {}  # (implementation, long) → CPU ms per decision
    before_latencies, differ = [], 0
    for text in texts:  # interleaved, so machine load hits all alike
        t, c = time.perf_counter(), time.process_time()
        decision = orchestrator.decide_fast(text)
        latencies.append((time.perf_counter() - t) * 1000)
        cpu.setdefault(("fast", len(text) > 800), []).append((time.process_time() - c) * 1000)
        if before is not None:
            t, c = time.perf_counter(), time.process_time()
            old = before.decide(text)
            before_latencies.append((time.perf_counter() - t) * 1000)
            cpu.setdefault(("round 8", len(text) > 800), []).append((time.process_time() - c) * 1000)
            differ += (old.agent, old.detail) != (decision.agent, decision.detail) \
                or abs(old.confidence - decision.confidence) > 1e-12
        t = time.perf_counter()
        plain.decide(text)
        plain_latencies.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        unencoded.decide(text)
        unencoded_latencies.append((time.perf_counter() - t) * 1000)
    report = evaluate(orchestrator, rows)
    counts: dict[str, int] = {}
    for r in rows:
        for agent in r.accept:
            counts[agent] = counts.get(agent, 0) + 1
    majority = max(counts, key=lambda a: counts[a])
    plain_right = sum(plain.decide(r.text).agent in r.accept for r in rows)

    print(f"fast path over {len(texts)} varied prompts (targets: {', '.join(orchestrator.targets)})"
          + (f", with {len(learned)} trusted labels from {args.corrections.name}" if learned else ""))
    print(f"  classifier built in      {build_ms:8.1f} ms (once per config)")
    print(f"  decision p50             {percentile(latencies, 50):8.2f} ms   target ≤ 5 ms")
    print(f"  decision p99             {percentile(latencies, 99):8.2f} ms")
    print(f"  decision mean / max      {statistics.fmean(latencies):8.2f} / {max(latencies):.2f} ms")
    print(f"  config-examples-only classifier, same prompts interleaved: p50 {percentile(plain_latencies, 50):.2f} ms"
          f", p99 {percentile(plain_latencies, 99):.2f} ms")
    print(f"  without the sentence encoder ({'in use' if shared() else 'NOT LOADED'} above), "
          f"same prompts interleaved: p50 {percentile(unencoded_latencies, 50):.2f} ms, "
          f"p99 {percentile(unencoded_latencies, 99):.2f} ms")
    for (name, long), values in sorted(cpu.items()):
        print(f"  {name:8} CPU per decision, {'long (> 800 characters)' if long else 'short':24} "
              f"p50 {percentile(values, 50):.2f} / p90 {percentile(values, 90):.2f} ms (n={len(values)})")
    if before is not None:
        print(f"  round 8's implementation, same prompts interleaved: p50 {percentile(before_latencies, 50):.2f} ms, "
              f"p99 {percentile(before_latencies, 99):.2f} ms; decisions or confidences that differ: {differ}")
    low, high = report["accuracy_ci95"]
    print(f"labelled set: {report['n']} public prompts never used for training ({Path(args.labels).name})")
    print(f"  acceptable               {report['accuracy']:8.1%}   95% CI {low:.1%}–{high:.1%}   target ≥ 85%")
    print(f"  baseline: always {majority:9} {sum(majority in r.accept for r in rows) / len(rows):6.1%}")
    print(f"  baseline: config examples only {plain_right / len(rows):6.1%}")
    above = report["above_threshold"]
    print(f"  threshold {report['threshold']:.2f}: coverage {report['coverage']:.1%} decided fast; "
          "the rest go to the model")
    if above["n"]:
        print(f"  right above threshold    {above['value']:8.1%}   95% CI {above['ci95'][0]:.1%}–{above['ci95'][1]:.1%}"
              "   target ≥ 95%")
    for b in report["reliability"]:
        if b["n"]:
            low, high = b["confidence"]
            print(f"  confidence {low:.1f}–{high:.1f}: {b['value']:6.1%} right (n={b['n']})")
    for agent, m in report["per_agent"].items():
        print(f"  {agent:10} precision {m['precision']:.2f}  recall {m['recall']:.2f}  (n={m['support']})")
    if args.held_out:
        decisions = held_out(orchestrator, set(config.agents))
        if args.decisions:
            args.decisions.write_text("".join(json.dumps(d) + "\n" for d in decisions))
        if args.same_as and not same_decisions(decisions, args.same_as):
            raise SystemExit(1)


def held_out(orchestrator: Orchestrator, agents: set[str]) -> list[dict[str, object]]:
    """Every held-out set once: acceptable, and right above the threshold (decided fast); then all together.
    Returns each line's decision (set, line, agent, confidence)."""
    out: list[dict[str, object]] = []
    threshold = orchestrator.config.orchestration.threshold
    total = [0, 0, 0, 0]  # lines, acceptable, decided fast, right of those
    print(f"held-out sets (routing_sets.HELD_OUT), fast path deciding everything; threshold {threshold:.2f}")
    for name in HELD_OUT:
        rows = read_labels(set_path(name), agents)
        decisions = [orchestrator.decide_fast(r.text) for r in rows]
        out.extend({"set": name, "line": i, "agent": d.agent, "confidence": d.confidence}
                   for i, d in enumerate(decisions, 1))
        right = [d.agent in r.accept for d, r in zip(decisions, rows, strict=True)]
        fast = [ok for d, ok in zip(decisions, right, strict=True) if d.confidence >= threshold]
        counts = (len(rows), sum(right), len(fast), sum(fast))
        total = [a + b for a, b in zip(total, counts, strict=True)]
        print(f"  {name:16} {counts[1]:5} / {counts[0]:<5} {counts[1] / counts[0]:6.1%}   above {threshold:.2f}: "
              f"{counts[3]} / {counts[2]} at {counts[2] / counts[0]:.1%}")
    low, high = wilson(total[1], total[0])
    print(f"  {'all':16} {total[1]:5} / {total[0]:<5} {total[1] / total[0]:6.1%} ({low:.1%}–{high:.1%})   "
          f"above {threshold:.2f}: {total[3]} / {total[2]} ({total[3] / max(total[2], 1):.1%}) "
          f"at {total[2] / total[0]:.1%}")
    return out


def same_decisions(decisions: list[dict[str, object]], before: Path, tolerance: float = 1e-9) -> bool:
    """Whether ``decisions`` are ``before``'s line for line: the same agent, the confidence within ``tolerance``
    (float noise); prints each line that differs and the largest confidence difference."""
    old = [json.loads(line) for line in before.read_text().splitlines()]
    if [(d["set"], d["line"]) for d in old] != [(d["set"], d["line"]) for d in decisions]:
        print(f"held-out decisions: {before.name} holds other lines ({len(old)} against {len(decisions)})")
        return False
    differ, largest = 0, 0.0
    for a, b in zip(old, decisions, strict=True):
        gap = abs(float(a["confidence"]) - float(b["confidence"]))  # type: ignore[arg-type]
        largest = max(largest, gap)
        if a["agent"] != b["agent"] or gap > tolerance:
            differ += 1
            print(f"  differs: {a['set']} line {a['line']}: {a['agent']} {a['confidence']} → "
                  f"{b['agent']} {b['confidence']}")
    print(f"held-out decisions against {before.name}: {len(decisions)} lines, {differ} differ "
          f"(agent, or confidence by more than {tolerance:g}); largest confidence difference {largest:.3g}")
    return differ == 0


if __name__ == "__main__":
    main()
