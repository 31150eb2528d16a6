"""When ``/agent X`` becomes a routing label: on the question asked again, not on the switch alone.

A switch right after a routed answer was taken as a correction of it — "Noted: your last request belonged to it".
A newcomer trying the commands (a question, then ``/agent engineer`` to see what it does) so labelled questions that
routing had sent right, and those labels train the fast path. Issue #10's "learn from use" counts a 👎 *followed by a
re-ask*; the same evidence makes a switch a correction: the person moved to X and asked X the same thing again. A
👎 before the switch stays a correction by itself (the person said the answer was wrong).
"""

from __future__ import annotations

import re
from enum import StrEnum

#: share of the routed question's words the new message must repeat, and how much longer it may be
COVER = 0.8
LONGER = 2.0
_WORD = re.compile(r"\w+")


class Switch(StrEnum):
    """What ``/agent X`` did to routing's labels."""
    #: a 👎'd (or otherwise disputed) routed answer: labelled now
    LABELLED = "labelled"
    #: right after an answer routed elsewhere: asking the question again labels it
    ASK_AGAIN = "ask again"
    #: nothing to correct (no routed answer, the same agent, someone else's answer)
    NONE = "none"


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def reasks(text: str, question: str) -> bool:
    """Whether ``text`` asks ``question`` again: it repeats most of its words (typos and a word or two changed
    allowed) and is not a new, longer request that merely quotes it."""
    asked, said = set(_words(question)), _words(text)
    if not asked or not said:
        return False
    return len(asked & set(said)) >= COVER * len(asked) and len(said) <= LONGER * max(len(_words(question)), 1)
