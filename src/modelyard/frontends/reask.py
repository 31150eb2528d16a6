"""When ``/agent X`` becomes a routing label: on the question asked again, not on the switch alone.

A switch right after a routed answer was taken as a correction of it — "Noted: your last request belonged to it".
A newcomer trying the commands (a question, then ``/agent engineer`` to see what it does) so labelled questions that
routing had sent right, and those labels train the fast path. Issue #10's "learn from use" counts a 👎 *followed by a
re-ask*; the same evidence makes a switch a correction: the person moved to X and asked X the same thing again. A
👎 before the switch stays a correction by itself (the person said the answer was wrong).

"The same thing again" is what a person retypes, not a byte-for-byte copy: case, punctuation, apostrophes
(``don't`` / ``dont``), accents (``café`` / ``cafe``) and a typo per word (``teh``, ``frnace``) do not make it
another question — comparing words exactly missed a retyped question with two typos in six words. A short
request to repeat it (``same question again``, ``try again``), sent right after the switch, asks it again too: the
agent reads the conversation, so it answers the routed question.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

#: share of the routed question's words the new message must repeat, and how much longer it may be
COVER = 0.8
LONGER = 2.0
#: words this long or longer match a word one typo away (an edit or two neighbours swapped); shorter ones must be
#: exact or swapped ("teh"), as "is"/"it" or "cat"/"car" are other words
TYPO_LENGTH = 4
_WORD = re.compile(r"\w+")
_APOSTROPHES = re.compile(r"(?<=\w)['’ʼ`](?=\w)")
#: the whole message, normalised, asking for the last question again (English; anything else is compared by words)
_AGAIN = re.compile(r"(?:(?:please|pls|ok|so|now)\s+)*"
                    r"(?:(?:(?:the\s+)?same\s+(?:question|thing|one)(?:\s+again)?)"
                    r"|(?:(?:try|ask|answer|do|say)(?:\s+(?:it|that|this|the\s+question|my\s+question))?"
                    r"\s+again)"
                    r"|again|retry|repeat|redo|once\s+more)"
                    r"(?:\s+please)?")


class Switch(StrEnum):
    """What ``/agent X`` did to routing's labels."""
    #: a 👎'd (or otherwise disputed) routed answer: labelled now
    LABELLED = "labelled"
    #: right after an answer routed elsewhere: asking the question again labels it
    ASK_AGAIN = "ask again"
    #: nothing to correct (no routed answer, the same agent, someone else's answer)
    NONE = "none"


def _words(text: str) -> list[str]:
    """The words of ``text`` as a person means them: case, accents and apostrophes inside a word dropped."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return _WORD.findall(_APOSTROPHES.sub("", bare))


def _one_typo(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are one typo apart: two neighbours swapped, or (both :data:`TYPO_LENGTH` letters or
    more) one letter changed, added or dropped."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
            return True
        return len(diff) == 1 and len(a) >= TYPO_LENGTH
    if abs(len(a) - len(b)) != 1 or min(len(a), len(b)) < TYPO_LENGTH:
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[i:] == long_[i + 1:]


def _repeated(word: str, said: set[str]) -> bool:
    return word in said or any(_one_typo(word, other) for other in said)


def _asks_again(words: list[str]) -> bool:
    """Whether a message's words (:func:`_words`) are only a request to repeat the last question (``same question
    again``, ``try again``)."""
    return _AGAIN.fullmatch(" ".join(words)) is not None


def reasks(text: str, question: str) -> bool:
    """Whether ``text`` asks ``question`` again: it repeats most of its words (case, punctuation, accents and a typo
    per word aside), or only asks for it again, and is not a new, longer request that merely quotes it."""
    asked, said = _words(question), _words(text)
    if not asked or not said:
        return False
    if _asks_again(said):
        return True
    words, heard = set(asked), set(said)
    repeated = sum(1 for w in words if _repeated(w, heard))
    return repeated >= COVER * len(words) and len(said) <= LONGER * len(asked)
