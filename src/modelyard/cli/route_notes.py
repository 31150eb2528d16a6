"""What a setup mistake on the way to an answer says under ``ask``'s and ``chat``'s route lines.

An answered request whose chain skipped a model for a mistake in the setup showed only the reason in its route line —
``writer → qwen3-14b (after claude-haiku: auth_error)`` — and the answer came, slower, from a fallback, every time: a
key pasted wrong, ``ANTHROPIC_KEY`` exported for ``ANTHROPIC_API_KEY``, a model id its server does not have. The why and
what to do were in the log's attempt row and in ``modelyard models``, which a newcomer whose request was answered has no
reason to open. A failed request prints every attempt's why already; a key simply not set (no key on purpose, as the
embedded default's Claude Haiku) stays the route line's word alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from modelyard.errors import Reason
from modelyard.router import RequestRecord

#: a setup that needs changing: the same attempt fails the same way next time
_MISTAKES = frozenset({Reason.AUTH_ERROR, Reason.MODEL_MISSING, Reason.MISSING_CREDENTIALS})
#: providers/base.py's words for a key variable simply not set (nothing near it set, no file holding it)
_PLAIN_NOT_SET = re.compile(r"^environment variable \S+ is not set: `export ")


def setup_notes(records: Iterable[RequestRecord]) -> list[str]:
    """One line per model an *answered* request passed over for a setup mistake: the model and its attempt's why
    (names of variables only, never values: the detail is what the router logged)."""
    notes: dict[str, str] = {}
    for record in records:
        if not record.outcome.answered:
            continue
        for a in record.attempts:
            if a.reason not in _MISTAKES or not a.detail or a.model in notes or a.model == record.model:
                continue
            if a.reason is Reason.MISSING_CREDENTIALS and _PLAIN_NOT_SET.match(a.detail):
                continue
            notes[a.model] = f"{a.model} was passed over ({a.reason}): {a.detail}"
    return list(notes.values())
