"""The fast path's confidence: how often a decision that looks like this one is right on prompts it never saw.

The members' lowest vote alone (what shipped before) was sure of itself on prompts in a style the
examples do not cover: on a set of exam-style task prompts only 54% of decisions above the threshold
were right. So the confidence also asks how **familiar** the prompt is — how similar it is to its
nearest training example and to its five nearest, whether those neighbours belong to the chosen
agent, and what share of its words the examples contain — and turns these signals, with the
members' lowest and mean vote and the margin to the runner-up, into a probability of being right
by a logistic regression. That regression is fitted (:func:`fit`) on decisions the classifier made
on training examples it was not trained on (5-fold cross-validation over ``default.yaml``'s
agents' descriptions, examples and role examples): no evaluation prompt is involved, and a prompt
unlike the examples gets a low confidence because held-out examples unlike the rest were the ones
the classifier got wrong. The threshold is then calibrated on ``routing_eval/dev.jsonl`` + ``sharegpt_dev.jsonl``.
Two sets of weights: with the sentence encoder's member and without it (its package missing).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from modelyard.agents.encoder import Encoder

#: the signals, in the order of :data:`WEIGHTS`
SIGNALS = ("lowest_vote", "mean_vote", "margin", "nearest", "nearest5", "neighbours_agree", "known_words")
#: how many nearest training examples ``nearest5`` and ``neighbours_agree`` look at
NEIGHBOURS = 5
FOLDS = 5
#: fitted by :func:`fit` on the built-in ``default.yaml`` (``python -m modelyard.agents.confidence``
#: prints them; tests/agents/test_confidence.py checks they are still what it gives): with the sentence
#: encoder's member (agents/encoder.py) …
INTERCEPT = -1.6104965605004538
WEIGHTS: tuple[float, ...] = (0.562818, 1.387073, 3.775894, 1.11772, -0.00155, 0.796399, 0.21857)
#: … and without it (its package missing: four TF-IDF members)
INTERCEPT_WITHOUT_ENCODER = -1.6819614389614932
WEIGHTS_WITHOUT_ENCODER: tuple[float, ...] = (0.322288, 1.579107, 3.099381, 0.805406, -0.330078, 1.265283, 0.173898)


def coefficients(encoded: bool) -> tuple[float, tuple[float, ...]]:
    """Intercept and weights for a classifier with (``encoded``) or without the encoder's member."""
    return (INTERCEPT, WEIGHTS) if encoded else (INTERCEPT_WITHOUT_ENCODER, WEIGHTS_WITHOUT_ENCODER)


def signals(votes: NDArray, best: int, similarities: NDArray, example_class: NDArray,
            known_words: float) -> list[float]:
    """The signals of one decision: ``votes`` members × classes, ``best`` the chosen class, ``similarities``
    the cosine to every training example, ``example_class`` each example's class index."""
    import numpy as np

    mean = votes.mean(axis=0)
    runner_up = float(np.partition(mean, -2)[-2]) if mean.size > 1 else 0.0
    k = min(NEIGHBOURS, similarities.size)
    if k:
        nearest = np.argpartition(-similarities, k - 1)[:k]
        top, top5, agree = float(similarities[nearest].max()), float(similarities[nearest].mean()), \
            float(np.mean(example_class[nearest] == best))
    else:
        top = top5 = agree = 0.0
    return [float(votes[:, best].min()), float(mean[best]), float(mean[best]) - runner_up, top, top5, agree,
            known_words]


def probability(values: Sequence[float], intercept: float = INTERCEPT,
                weights: Sequence[float] = WEIGHTS) -> float:
    z = intercept + sum(w * v for w, v in zip(weights, values, strict=True))
    return 1.0 / (1.0 + math.exp(-z))


def fit(samples: dict[str, list[str]], folds: int = FOLDS, seed: int = 0, *,
        encoder: Encoder | str | None = "shared") -> tuple[float, list[float]]:
    """Intercept and weights: a logistic regression of "right" on the signals of decisions made on
    held-out training examples (each fold's classifier never saw them). ``encoder`` as for the classifier."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from modelyard.agents.classifier import Classifier, english_side

    pairs = [(text, agent) for agent, texts in samples.items() for text in english_side(texts)]
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    x, y = [], []
    for k in range(folds):
        held = set(order[k::folds])
        train: dict[str, list[str]] = {}
        for i, (text, agent) in enumerate(pairs):
            if i not in held:
                train.setdefault(agent, []).append(text)
        # without the multilingual member: the weights are the round-10 ones, kept (on the tuning data the
        # multilingual member's decisions are, if anything, under-confident: benchmarks/README.md, round 11)
        classifier = Classifier(train, calibrated=False, encoder=encoder, multilingual=None)
        for i in sorted(held):
            text, agent = pairs[i]
            chosen, values = classifier.signals(text)
            x.append(values)
            y.append(chosen == agent)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(np.array(x), np.array(y))
    return float(model.intercept_[0]), [float(w) for w in model.coef_[0]]


def main() -> None:
    """Print the coefficients for the built-in default config (paste them above when the examples change)."""
    from modelyard.agents.classifier import training_samples
    from modelyard.agents.encoder import shared
    from modelyard.agents.topology import orchestrator_name, routing_targets
    from modelyard.config import load_config
    from modelyard.paths import embedded_default_config

    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    samples = training_samples(config, routing_targets(config, name))
    if shared() is None:
        raise SystemExit("the sentence encoder cannot be loaded (see the log): install wordllama first")
    for suffix, encoder in (("", "shared"), ("_WITHOUT_ENCODER", None)):
        intercept, weights = fit(samples, encoder=encoder)
        print(f"INTERCEPT{suffix} = {intercept!r}")
        print(f"WEIGHTS{suffix}: tuple[float, ...] = ({', '.join(repr(round(w, 6)) for w in weights)})")


if __name__ == "__main__":
    main()
