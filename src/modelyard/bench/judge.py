"""Judge checks: a model of your config grades an open-ended answer against a rubric.

A judged verdict is an opinion, not a measurement: results carry ``judged`` and every table marks
agents whose pass rates include one. The judge only runs when the deterministic checks passed.
"""

from __future__ import annotations

import json
import re

from modelyard.types import ChatRequest, Message

SYSTEM = ("You grade one answer against a rubric. Reply with a JSON object only, no other text: "
          '{"pass": true or false, "reason": "one short sentence"}.')
_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)
_WORD = re.compile(r"\b(pass|fail)(?:ed|es)?\b", re.IGNORECASE)


def judge_request(rubric: str, task: str, answer: str, max_tokens: int) -> ChatRequest:
    prompt = (f"Rubric:\n{rubric}\n\nTask given to the assistant:\n{task}\n\n"
              f"The assistant's answer:\n<<<\n{answer}\n>>>\n\nDoes the answer meet the rubric?")
    return ChatRequest([Message("system", SYSTEM), Message("user", prompt)], max_tokens=max_tokens,
                       temperature=0, thinking=False)


def parse_verdict(text: str) -> tuple[bool, str]:
    """(passed, reason) from the judge's reply; ValueError when it gave no readable verdict."""
    for block in _OBJECT.findall(text):
        try:
            value = json.loads(block)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict) and isinstance(value.get("pass"), bool):
            return value["pass"], str(value.get("reason", ""))[:200]
    word = _WORD.search(text)
    if word:
        return word.group(1).lower() == "pass", " ".join(text.split())[:200]
    raise ValueError(f"no verdict in the judge's reply: {' '.join(text.split())[:80]!r}")
