"""A text completion from llama-server keeps the server's own ``timings``, as a chat answer does.

llama-server's last object on ``/v1/completions`` carries ``usage`` and ``timings`` side by side, the finish reason
on an empty text (tools/server/server-task.cpp, ``server_task_result_cmpl_final::to_json_oaicompat``: ``if
(timings.prompt_n >= 0) res.push_back({"timings", timings.to_json()})``; the partial objects before it are
``text_completion`` choices with ``finish_reason: null``). The chat stream read them (its speed, and
``/api/chat``'s durations: tests/gateway/test_ollama_server_times.py); the text completion did not — its
tokens/s was the gateway's clock over the stream, and ``/api/generate``'s ``eval_duration`` the gateway's own, the
way to the server and back included. Both tests failed on the old code.
"""

from __future__ import annotations

import json

import httpx

from modelyard.ledger import connect
from tests.fakes import Fault
from tests.fakes.relays import SSE, TIMINGS, data

HEAD = {"created": 1764518400, "model": "local", "system_fingerprint": "b7200-0a1b2c3d", "object": "text_completion",
        "id": "chatcmpl-mY3Hq0bL6uWm2kC8rJ1tVdXs"}


def _llama_completion(text: str) -> Fault:
    """llama-server's ``/v1/completions`` stream: the text, then the last object with usage and timings, [DONE]."""
    piece = {"choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": None}], **HEAD}
    last = {"choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}], **HEAD,
            "usage": {"completion_tokens": TIMINGS["predicted_n"], "prompt_tokens": 237, "total_tokens": 272},
            "timings": TIMINGS}
    return Fault.raw(200, data(piece), data(last), "data: [DONE]\n\n", headers=SSE)


def test_the_servers_speed_is_logged_for_a_text_completion(fakes, gateway):
    fakes[0].push(_llama_completion("Once upon a time"))
    with httpx.stream("POST", gateway.url + "/v1/completions", timeout=15,
                      json={"model": "solo", "prompt": "Once", "stream": True}) as r:
        assert r.status_code == 200, r.read()
        assert "Once upon a time" in "".join(r.iter_text())
    conn = connect(gateway.runtime.log_path, readonly=True)
    try:
        (speed, out), = conn.execute("SELECT tokens_per_s, tokens_out FROM requests").fetchall()
    finally:
        conn.close()
    assert out == TIMINGS["predicted_n"]
    assert speed == TIMINGS["predicted_per_second"]


def test_api_generate_says_llama_servers_durations(fakes, gateway):
    """``raw: true`` (an autocomplete client's own template, Continue's): the prompt goes to ``/v1/completions``."""
    for stream in (True, False):
        fakes[0].push(_llama_completion("Once upon a time"))
        body = {"model": "solo", "prompt": "Once", "raw": True, "stream": stream}
        r = httpx.post(gateway.url + "/api/generate", json=body, timeout=15)
        assert r.status_code == 200, r.text
        done = json.loads(r.text.strip().splitlines()[-1])
        assert done["done"] and done["eval_count"] == TIMINGS["predicted_n"], done
        assert done["prompt_eval_duration"] == round(TIMINGS["prompt_ms"] * 1e6), (stream, done)
        assert done["eval_duration"] == round(TIMINGS["predicted_ms"] * 1e6), (stream, done)
