"""What a request *does*, which a bag of words cannot say: nudges for composing and for transforming given text.

A linear model over words adds evidence word by word, so a request's verb and its topic vote apart: "write a blog
post explaining how vaccines work" drifts to research by its topic, and "translate the article below" by the
article's. What decides the role is a conjunction — a verb that composes, followed by a kind of text for a reader;
a verb of mechanical change, with material the person gives — and no single n-gram carries it. Round 16
(benchmarks/README.md) tried both ways of using them on the tuning sets: as extra word tokens the members learn
weights for (1,103 → 1,095–1,103 of 1,313: no gain, they are diluted among ~1,400 examples' words) and as a fixed
nudge on the members' mean vote for the role the conjunction names (:data:`NUDGE`, chosen leave-one-file-out).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from modelyard.agents.roles import Role

#: material the person gives: a marker of pasted material (agents/request.py), a pointer to a text, or a colon
#: that opens an inline input
GIVEN = re.compile(
    r"\(pasted [a-z ]+\)|\b(?:the\s+following|below|above|this|these|my|attached|given|provided|pasted)\s+"
    r"(?:\w+\s+)?(?:text|paragraphs?|passages?|sentences?|e-?mails?|messages?|lists?|data|dataset|tables?|csv|"
    r"json|xml|yaml|articles?|essays?|documents?|transcripts?|notes|reviews?|comments?|tweets?|lines?|words?|"
    r"stor(?:y|ies)|poems?|letters?|reports?|descriptions?|items?|names|records|entries|values|input)\b"
    r"|:\s*\n|:\s*[\"'“]", re.IGNORECASE)
#: verbs of a mechanical or editorial change to something given
TRANSFORM = re.compile(
    r"\b(?:re-?write|rephrase|paraphrase|reword|convert|extract|translate|summari[sz]e|reformat|format|fix|"
    r"correct|proofread|shorten|condense|simplify|sort|count|classify|categori[sz]e|tag|label|pull\s+out|"
    r"turn|transform|clean\s+up|edit|polish|improve|anonymi[sz]e|redact|normali[sz]e|dedupe|deduplicate|"
    r"alphabeti[sz]e|capitali[sz]e|parse|tabulate)\b", re.IGNORECASE)
#: a request to compose a kind of text for a reader
COMPOSE = re.compile(
    r"\b(?:write|draft|compose|create|generate|craft|pen|come\s+up\s+with|give\s+me|make)\b[^.?!\n]{0,50}?\b"
    r"(?:e-?mails?|letters?|posts?|stor(?:y|ies)|poems?|essays?|articles?|blogs?|speech(?:es)?|captions?|bios?|"
    r"ads?|adverts?|advertisements?|slogans?|scripts?|songs?|lyrics|cover\s+letter|resumes?|cv|outlines?|"
    r"lesson\s+plans?|tweets?|headlines?|titles?|taglines?|newsletters?|toasts?|eulogy|limericks?|haikus?|"
    r"press\s+release|invitations?|announcements?|product\s+descriptions?|descriptions?|paragraphs?|"
    r"sonnets?|verses?|dialogues?|monologues?|jokes?|reviews?)\b", re.IGNORECASE)
#: added to the members' mean probability of the named role when its cue is there (0.12 for both: chosen on the
#: ten tuning files, each held out in turn — 9 of 10 folds chose it; 1,103 → 1,109 of 1,313, 6 fixed, 0 broken)
NUDGE = 0.12


#: the three cues for a text in ASCII, searched in its lower case (their patterns hold no capital): the same matches
#: as ignoring case, for ~40% of their CPU (round 23)
_LOWER = {cue: re.compile(cue.pattern) for cue in (GIVEN, TRANSFORM, COMPOSE)}


def nudges(text: str) -> dict[Role, float]:
    """What to add to each role's mean vote for ``text`` (the message's main view): writer for a composition,
    utility for a change to given material; nothing when neither cue is there."""
    found: Callable[[re.Pattern[str]], object] = _searcher(text)
    out: dict[Role, float] = {}
    if found(COMPOSE):
        out[Role.WRITER] = NUDGE
    if found(TRANSFORM) and found(GIVEN):
        out[Role.UTILITY] = NUDGE
    return out


def _searcher(text: str) -> Callable[[re.Pattern[str]], object]:
    """A search of ``text`` for a cue: a case-sensitive one in its lower case when it is ASCII (where lower-casing
    changes A–Z only, as ignoring case does), else the cue's own."""
    if text.isascii():
        lowered = text.lower()
        return lambda cue: _LOWER[cue].search(lowered)
    return lambda cue: cue.search(text)
