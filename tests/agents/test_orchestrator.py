"""The orchestrator's slow path (model, repair, default), the classifier, and the topology rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents import confidence
from modelyard.agents.classifier import Classifier
from modelyard.agents.errors import HandoffRefused
from modelyard.agents.orchestrator import Orchestrator, parse_choice
from modelyard.agents.request import views
from modelyard.agents.topology import handoff_path, orchestrator_name, routing_targets
from modelyard.config import load_config
from modelyard.paths import embedded_default_config
from tests.agents.conftest import default_data, fake_config
from tests.fakes import Fault, OpenAIServer
from tests.helpers import make_config

LABELS = Path(__file__).parent.parent / "data" / "routing_labels.jsonl"


def scripted(*answers: str) -> OpenAIServer:
    queue = list(answers)
    return OpenAIServer(reply_text=lambda body: queue.pop(0) if queue else "unused")


async def test_invalid_answer_gets_one_repair(runtime_for, tmp_path: Path) -> None:
    with scripted("I think research would be best", 'sure: {"agent": "Writer", "task": "t"}') as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path, orchestration={"threshold": 1.0}))
        orchestrator = Orchestrator.from_config(runtime.config)
        decision = await orchestrator.decide(runtime.router, "write me a poem")
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert (decision.agent, decision.method) == ("writer", "model_repaired")
    assert len(bodies) == 2
    assert "unusable: the answer contains no JSON object" in bodies[1]["messages"][-1]["content"]
    assert bodies[1]["messages"][-2] == {"role": "assistant", "content": "I think research would be best"}


async def test_two_invalid_answers_keep_the_fast_path_choice(runtime_for, tmp_path: Path) -> None:
    with scripted('{"agent": "plumber"}', "{not json}") as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path, orchestration={"threshold": 1.0, "default": "research"}))
        orchestrator = Orchestrator.from_config(runtime.config)
        decision = await orchestrator.decide(runtime.router, "write a poem about the sea")
    # the classifier's choice (right ~80% of the time), not a fixed default agent
    assert (decision.agent, decision.method) == ("writer", "fast_fallback")
    assert "after one repair" in decision.detail and "does not parse" in decision.detail


async def test_no_model_answering_keeps_the_fast_path_choice(runtime_for, tmp_path: Path) -> None:
    with OpenAIServer() as fake:
        fake.set_default(Fault.status(500))
        runtime = runtime_for(fake_config(fake.url, tmp_path, orchestration={"threshold": 1.0}))
        orchestrator = Orchestrator.from_config(runtime.config)
        decision = await orchestrator.decide(runtime.router, "fix this segfault in my C code")
    assert (decision.agent, decision.method) == ("engineer", "fast_fallback")
    assert "no model could answer" in decision.detail


def test_slow_path_prompt_carries_policies_and_contrasting_examples() -> None:
    orchestrator = Orchestrator.from_config(load_config(embedded_default_config()))
    candidates = orchestrator.candidates("extract the dates from this text as JSON")
    assert candidates[0] == "utility" and len(candidates) == 3
    prompt = orchestrator.prompt(candidates)
    assert "never writes new content" in prompt and "Examples:" in prompt  # what it takes and what it does not
    assert orchestrator.schema(candidates)["properties"]["agent"]["enum"] == candidates


def test_parse_choice() -> None:
    targets = ["chat", "engineer"]
    assert parse_choice('```json\n{"agent": "ENGINEER", "task": "fix"}\n```', targets).agent == "engineer"
    assert "not one of the agents" in parse_choice('{"agent": "writer"}', targets)
    assert "no string field" in parse_choice('{"task": "x"}', targets)
    # an integer past Python's 4300-digit limit is a plain ValueError, not a JSONDecodeError
    assert "does not parse" in parse_choice('{"agent": "chat", "n": ' + "9" * 5000 + "}", targets)


def test_default_topology_targets() -> None:
    config = load_config(embedded_default_config())
    assert orchestrator_name(config) == "orchestrator"
    # chat (the delegation-free default agent) takes small talk; utility takes data-shaped chores
    # directly and is also where writer hands off
    assert routing_targets(config, "orchestrator") == ["chat", "engineer", "research", "writer", "utility"]
    assert handoff_path(config, "writer") == ["writer", "utility"]
    assert handoff_path(config, "engineer") == ["engineer"]


def test_topology_refusals() -> None:
    model = {"m": {"provider": "openai"}}
    looping = make_config(model, {"a": {"primary": "m", "consumers": ["b"]}, "b": {"primary": "m", "consumers": ["a"]}})
    with pytest.raises(HandoffRefused, match="a → b → a"):
        handoff_path(looping, "a")
    dangling = make_config(model, {"a": {"primary": "m", "consumers": ["ghost"]}})
    with pytest.raises(HandoffRefused, match="unknown agent 'ghost'"):
        handoff_path(dangling, "a")
    assert orchestrator_name(make_config(model, {"a": {"primary": "m"}})) is None


def test_classifier_routes_the_held_out_set_well() -> None:
    """The labelled set shares no sentence with the config examples, so this is a held-out figure."""
    config = load_config(embedded_default_config())
    rows = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]
    examples = {e.lower() for a in default_data()["agents"].values() for e in a.get("examples", [])}
    assert len(rows) >= 100 and not [r for r in rows if r["text"].lower() in examples]
    orchestrator = Orchestrator.from_config(config)
    decisions = [orchestrator.decide_fast(r["text"]) for r in rows]
    accuracy = sum(d.agent == r["agent"] for d, r in zip(decisions, rows, strict=True)) / len(rows)
    assert accuracy >= 0.85
    assert all(d.method == "fast" and 0 < d.confidence <= 1 and d.ms > 0 for d in decisions)


def test_classifier_with_one_agent_is_certain() -> None:
    decision = Classifier({"only": ["anything"]}).decide("whatever")
    assert (decision.agent, decision.confidence) == ("only", 1.0)


def test_classifier_votes_equal_scikit_learn() -> None:
    """The fast path applies the fitted vocabularies and weights itself (scikit-learn's per-call checks
    cost more than the arithmetic); each member must give exactly what scikit-learn would."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    samples = {"a": ["fix the bug in my code", "write a function", "stack trace error"],
               "b": ["write a poem", "draft an email to my boss", "a story about a cat"],
               "c": ["hello there", "thanks!", "how are you"]}
    classifier = Classifier(samples)
    texts = [t for v in samples.values() for t in v]
    y = [k for k, v in samples.items() for _ in v]
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    w, c = words.fit_transform(texts), chars.fit_transform(texts)
    def regression() -> LogisticRegression:
        return LogisticRegression(C=10.0, solver="saga", tol=1e-3, max_iter=3000, random_state=0)

    members = [(regression().fit(w, y), lambda t: words.transform([t])),
               (regression().fit(c, y), lambda t: chars.transform([t])),
               (regression().fit(hstack([w, c]).tocsr(), y),
                lambda t: hstack([words.transform([t]), chars.transform([t])]).tocsr()),
               (MultinomialNB(alpha=0.05).fit(c, y), lambda t: chars.transform([t]))]
    encoder = classifier.encoder
    if encoder is not None:  # the fifth member: a regression over the sentence encoder's vectors
        members.append((regression().fit(encoder.many(texts), y), lambda t: encoder(t)[None, :]))
    for text in ["please fix this error in my function", "Write A Poem!!", "unseen zzz words", "x" * 2000,
                 "write a poem about my cat\n\n" + "The cat sat on the mat all day long. " * 40 + "\n\nthanks!"]:
        votes = classifier.votes(text)
        # a long message is read as weighted views (agents/request.py): its request and its head and tail
        read = views(text)
        assert len(read) == (1 if len(text) <= 800 else 2)
        for row, (model, features) in zip(votes, members, strict=True):
            expected = sum(weight * model.predict_proba(features(view))[0] for view, weight in read)
            assert row == pytest.approx(expected, abs=1e-6)
        decision = classifier.decide(text)
        best = classifier.classes.index(decision.agent)
        assert best == int(votes.mean(axis=0).argmax())
        # the confidence is estimated from signals, the first being the least convinced member's probability
        agent, values = classifier.signals(text)
        assert agent == decision.agent and values[0] == pytest.approx(float(votes[:, best].min()))
        assert decision.confidence == pytest.approx(
            confidence.probability(values, *confidence.coefficients(classifier.encoder is not None)))
