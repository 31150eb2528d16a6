"""A model its server says it does not have — not pulled on an Ollama — and how long that is believed.

Ollama answers a model it has not pulled with a 404 ``{"error": "model \\"x\\" not found, try pulling it first"}`` on
its native API (server/routes.go; ``model 'x' not found, …`` before 0.5: ollama/ollama#718, ollama-python#149), and
through its OpenAI-compatible /v1 with the same words in OpenAI's error object (middleware/openai.go ``writeError``:
``"type": "api_error"`` in older servers, netease-youdao/QAnything#555; "not_found_error" since openai.NewError names
the 404). It was ``model_missing``, which cools a model for ``cooldown.max_seconds`` at once (errors.PERSISTENT) — a
verdict on the model's health, in every process sharing its state, for a fact of the setup that one ``ollama pull``
mends. Now the router skips the model (``model_missing``, the words saying which ``ollama pull`` to run) without
asking its server for :data:`ABSENT_FOR`, nothing cools, and the next request after that asks again: the model may
have been pulled meanwhile. A refused connection forgets it (another server may come back), as for the other facts
learned of a server.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

#: seconds a server's "not pulled" is believed before the model is asked again: a pull of a few GB takes longer, and
#: the 404 that says it again costs the server next to nothing
ABSENT_FOR = 30.0

#: Ollama's words for a model it has not pulled, both quotings (see the module docstring)
_NOT_PULLED = re.compile(r"""model ["'](?P<name>[^"']+)["'] not found, try pulling it first""")
#: the kind :func:`not_pulled` names for the words: the providers' extract functions return it, and the error it
#: becomes carries ``absent`` (http.error_from_body)
NOT_PULLED = "not_pulled"


def not_pulled(message: str) -> tuple[str, str] | None:
    """(:data:`NOT_PULLED`, the words with what to run) when ``message`` is Ollama's "not pulled"; None otherwise."""
    found = _NOT_PULLED.search(message)
    if found is None:
        return None
    return NOT_PULLED, f"{message} (not pulled on its Ollama: run `ollama pull {found.group('name')}` there)"


@dataclass(slots=True, frozen=True)
class Absence:
    """What the server said (``said``), when (``at``) and until when (``until``, both ``time.monotonic``) the model is
    not asked again."""

    said: str
    at: float
    until: float

    @classmethod
    def now(cls, said: str) -> Absence:
        at = time.monotonic()
        return cls(said, at, at + ABSENT_FOR)

    def standing(self) -> str | None:
        """Why the model is skipped now, or None once it is to be asked again."""
        now = time.monotonic()
        if now >= self.until:
            return None
        return f"{self.said} (said {now - self.at:.0f}s ago: asked again in {self.until - now:.0f}s)"
