"""What a model-swapping proxy's refusals mean, where their status says otherwise: llama-swap's.

llama-swap (mostlygeek/llama-swap) starts and stops a llama-server per model as requests ask for them. Two of its
answers read as the request's fault by their status alone, and neither is:

- a **400 with an empty body**, sent now and then to a request that was in flight when another one made it swap
  models; neither llama-swap nor llama-server logs anything, and the same request asked again is answered
  (mostlygeek/llama-swap#635, "Empty HTTP 400 response when swapping models sometimes", open). A server that
  refuses a request says why — llama-server's, vLLM's, Ollama's and llama-swap's own 400s all carry a message
  (llama-swap's ``swaputil.SendResponse``: an OpenAI error object, or its words in plain text or HTML) — so a 400
  that says nothing at all is a proxy's moment, not a verdict on the request. As a ``bad_request`` it was not asked
  again, and a chain whose models all did so told the client its request was wrong (400 ``rejected_by_models``):
  it is a ``server_error`` now, asked again after a backoff (bounded), then the next model.
- a **400 "could not find suitable inference handler for <model>"** (proxy/proxymanager.go before its 2026-06
  rewrite, ``sendErrorResponse``: plain text unless the request accepts JSON, then ``{"error": "…"}``): the model
  is not in llama-swap's config — a model not there, as its later 404 "no router for requested model" says; as a
  ``bad_request`` it was asked, and refused, on every request. It is ``model_missing``.

With ``sendLoadingState: true`` (off by default, on in its config.example.yaml; llama-swap#366) a streamed chat to a
model not loaded yet is answered at once with a 200 event stream of **loading status in ``reasoning_content``**
("━━━━━", "llama-swap loading model: <model>", a dot every 750 ms, a joke now and then, "Done! (12.34s)"), each
event nothing but ``{"choices": [{"delta": {"reasoning_content": "…"}}]}`` (internal/router/loading.go,
``sendData``), and the upstream's own stream follows in the same body. Read as the model's thinking, it was passed
on to clients and logged as the model's, counted as its output tokens, and its first event met the first-token bound
for a model still loading, its dots the idle bound. :func:`loading_status` tells those events; they are skipped, so
a model being loaded behind llama-swap is bounded as one behind a llama-swap that says nothing. A load that fails then
writes its error envelope into the stream without ``data:`` — read as a ``stream_error``, asked again.

A model that fails to load comes as a 5xx in every version (500 "error swapping process group: upstream command
exited prematurely", later "unspecific error: …"; 502 when the upstream died; 503 "Process can not ProxyRequest,
state is stopping"), which the status rules already read as the server's.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.errors import Reason

#: old llama-swap's refusal of a model its config does not name
NO_HANDLER_WORDS = re.compile(r"could not find suitable (?:inference )?handler for", re.IGNORECASE)


def refusal_reason(status: int, body: bytes, message: str) -> Reason | None:
    """The reason a 400 really gives where its status alone would say ``bad_request``; None when the status rules
    stand. ``body``: the answer's bytes as sent; ``message``: what was read of them."""
    if status != 400:
        return None
    if not body.strip():
        return Reason.SERVER_ERROR
    if NO_HANDLER_WORDS.search(message):
        return Reason.MODEL_MISSING
    return None


def loading_status(event: dict[str, Any]) -> bool:
    """``event`` is one of llama-swap's loading-status events: nothing but one choice whose delta is nothing but
    ``reasoning_content`` — no ``id``, ``object``, ``index`` or finish reason, which every server's own chunk has."""
    if len(event) != 1:
        return False
    choices = event.get("choices")
    if type(choices) is not list or len(choices) != 1 or type(choice := choices[0]) is not dict or len(choice) != 1:
        return False
    delta = choice.get("delta")
    return type(delta) is dict and len(delta) == 1 and type(delta.get("reasoning_content")) is str
