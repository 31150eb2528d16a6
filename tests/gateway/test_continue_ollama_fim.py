"""Continue's Ollama provider completes code through ``suffix``, not a raw prompt in its own FIM template.

Continue (continuedev/continue core/llm/llms/Ollama.ts) asks ``POST /api/show`` with ``{"name": model}`` when it
is configured, and sets ``fimSupported = !!body?.template?.includes(".Suffix")`` ("There is no API to get the
model's FIM capabilities, so we have to make an educated guess"). Its autocomplete
(core/autocomplete/generation/CompletionStreamer.ts) then calls ``streamFim(prefix, suffix)`` — ``/api/generate``
with ``prompt`` and ``suffix`` — for such a model, and otherwise ``streamComplete(prompt, {raw: true})`` with the
prompt already rendered in a FIM template of Continue's choosing (``<fim_prefix>…<fim_suffix>…<fim_middle>``).
Ollama documents ``raw`` as "no formatting will be applied to the prompt … if you are specifying a full templated
prompt"; every model behind this gateway is asked through its chat API, so a raw prompt would reach it as a
user's message, special tokens and all. ``/api/show`` now reports the template the gateway applies (with
``.Suffix``, and Ollama's ``insert`` capability), so Continue takes the ``suffix`` path: prompt and suffix go to a
backend's own fill-in-the-middle (an OpenAI-compatible ``/v1/completions`` here), a chat-only one is asked in words
(fill_in.py). (``raw: true`` is served too: test_raw_prompts.py.)
"""

from __future__ import annotations

import json

import httpx

from modelyard.gateway.fill_in import HOLE
from tests.gateway.harness import GatewayServer

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n\nprint(add(1, 2))\n"


def _continue_detects_fim(shown: dict) -> bool:
    """Continue's own test, as Ollama.ts writes it."""
    return ".Suffix" in (shown.get("template") or "")


def test_show_tells_continue_that_suffix_is_taken(gateway: GatewayServer):
    r = httpx.post(gateway.url + "/api/show", json={"name": "coder"})  # Continue sends "name"
    assert r.status_code == 200
    shown = r.json()
    assert _continue_detects_fim(shown)
    assert "insert" in shown["capabilities"]  # Ollama's word for a template with .Suffix


def test_continue_fim_request_reaches_the_servers_own_fill_in_the_middle(gateway: GatewayServer, fakes):
    oa = fakes[0]
    shown = httpx.post(gateway.url + "/api/show", json={"name": "coder"}).json()
    assert _continue_detects_fim(shown)
    # _getGenerateOptions(options, prefix, suffix): raw is options.raw, unset on the FIM path (absent from the JSON)
    body = {"model": "coder", "prompt": PREFIX, "suffix": SUFFIX,
            "options": {"temperature": 0.01, "num_predict": 256, "stop": ["\n\n"], "num_ctx": 8096},
            "keep_alive": 1800, "stream": True}
    with httpx.stream("POST", gateway.url + "/api/generate", json=body, timeout=15) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert lines[-1]["done"] is True and "".join(line["response"] for line in lines)
    sent = oa.last_request
    assert sent.path == "/v1/completions" and (sent.json["prompt"], sent.json["suffix"]) == (PREFIX, SUFFIX)
    assert "fim_" not in json.dumps(sent.json) and HOLE not in json.dumps(sent.json)
