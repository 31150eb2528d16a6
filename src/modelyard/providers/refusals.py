"""What a model said it does not serve (a chat asked of an embedding model, vectors of a chat model), and for how long
that is believed.

A refusal spares the server a round trip per request, but a server changes: ``ollama pull`` puts other weights under
the same name, llama-server is restarted with ``--embeddings``. So a refusal is believed for ``cooldown.max_seconds``
(300 s by default: what a missing model — the other property of a setup, not of a moment — cools for), and no longer
once the server is seen to go away (a refused connection: whatever comes back may be another server); then the next
request of that kind asks again, and a second refusal is remembered as the first was.

Until the model gives that kind again, a refusal past its time still says the model does not embed when a chain
decides whose vectors its answer must be in (router/embedding.py): a model cooling down cannot be asked, and the
last thing it said is the best guess of what it serves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from modelyard.errors import ProviderError


@dataclass(slots=True)
class _Refusal:
    error: ProviderError
    #: ``time.monotonic()`` after which the kind is asked of the server again
    until: float


class KindRefusals:
    """One model's refusals by kind (embeddings: True, chat: False)."""

    __slots__ = ("_by_kind",)

    def __init__(self) -> None:
        self._by_kind: dict[bool, _Refusal] = {}

    def __bool__(self) -> bool:
        return bool(self._by_kind)

    def learn(self, embeddings: bool, error: ProviderError, seconds: float) -> None:
        """The server refused the kind: believe it for ``seconds`` (a refusal repeated here from memory, while it
        stands, extends nothing: the server was not asked)."""
        if self.standing(embeddings) is None:
            self._by_kind[embeddings] = _Refusal(error, time.monotonic() + seconds)

    def standing(self, embeddings: bool) -> tuple[ProviderError, float] | None:
        """(the refusal, seconds it is still believed) while the kind is not to be asked; None: ask the server."""
        refusal = self._by_kind.get(embeddings)
        if refusal is None or (left := refusal.until - time.monotonic()) <= 0:
            return None
        return refusal.error, left

    def said(self, embeddings: bool) -> bool:
        """Whether the model's last word on the kind was a refusal (believed or not: it has not served it since)."""
        return embeddings in self._by_kind

    def served(self, embeddings: bool) -> None:
        """The model gave that kind: whatever it refused before, it serves it now."""
        self._by_kind.pop(embeddings, None)

    def server_gone(self) -> None:
        """The server went away: the one that comes back may serve what this one refused, so ask it."""
        for refusal in self._by_kind.values():
            refusal.until = 0.0
