"""A hand-off never loses the upstream answer: what it asks of the next agent, and when its result counts.

Issue #14.2: writer produced a 321-token blog post, the hand-off asked utility to "do your part on
this output", and utility's 14-token title was all the user saw. Now:

- the request says what the hand-off is for (:class:`HandoffPurpose`): a *revision* must return
  the whole text with its edits, and gets the output budget to do so (the upstream answer's
  length plus a margin, never less than the agent's own ``max_tokens``);
- its result is *checked* (:func:`rejection`): a hand-off that failed, came back empty, was cut
  off at its token limit, or — for a revision — is much shorter than what it revised does not
  replace the answer; the upstream answer stands and the route says why;
- both steps stay in the routing log (the hand-off's request is a child of the first one), and a
  rejected one carries the reason in its ``error`` column.
"""

from __future__ import annotations

from modelyard.agents.topology import HandoffPurpose
from modelyard.types import ChatRequest, Message

#: a revision shorter than this share of the text it revises dropped content: not a formatting result
MIN_REVISION_SHARE = 0.5
#: extra output tokens a revision gets over the length of what it revises (markup, a fixed typo...)
REVISION_MARGIN = 1.3
_MIN_EXTRA_TOKENS = 32


def handoff_request(purpose: HandoffPurpose, *, request: str, source: str, output: str,
                    output_tokens: int, max_tokens: int | None) -> ChatRequest:
    """What the next agent receives: the user's request, the upstream answer, and what to do with it."""
    budget: int | None
    if purpose is HandoffPurpose.REVISE:
        task = ("Revise this answer: fix formatting, spelling, grammar and clarity. Return the COMPLETE "
                "revised answer — keep all of its content and roughly its length; do not summarise it, do not "
                "reply with only a title, do not add comments. Reply with the revised answer only.")
        needed = int(output_tokens * REVISION_MARGIN) + _MIN_EXTRA_TOKENS
        budget = max(max_tokens or 0, needed)
    else:
        task = "Use this output to do your part of the user's request, and reply with the result only."
        budget = max_tokens
    content = f"The user asked:\n{request}\n\nThe {source} agent produced:\n{output}\n\n{task}"
    return ChatRequest(messages=[Message("user", content)], max_tokens=budget)


def rejection(purpose: HandoffPurpose, upstream: str, result: str, *, truncated: bool) -> str | None:
    """None when the hand-off's (visible) result may replace ``upstream``; else why it may not."""
    if not result.strip():
        return "its answer was empty"
    if truncated:
        return "its answer was cut off at max_tokens"
    if purpose is HandoffPurpose.REVISE and len(result.strip()) < MIN_REVISION_SHARE * len(upstream.strip()):
        return (f"its answer ({len(result.strip())} characters) is much shorter than the "
                f"{len(upstream.strip())} it was to revise — not a revision")
    return None
