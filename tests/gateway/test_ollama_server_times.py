"""The gateway's Ollama-format answers say the backend's own timings where it stated them.

docs.ollama.com/api/usage: ``load_duration``, ``prompt_eval_duration`` and ``eval_duration`` say how long the model
took to load, to evaluate the prompt and to generate the output tokens — "All timing values are measured in
nanoseconds" — and clients (Open WebUI, ``ollama run --verbose``) show ``eval_count / eval_duration`` as the model's
tokens/s. llama.cpp's server states the same in ``timings`` (``prompt_ms``, ``predicted_ms``; the fields of its
``/completion`` and of the last chunk of its OpenAI-compatible stream, tools/server/README.md). The gateway said its
own clock instead — the way to the backend and back, the router's parsing — and ``load_duration: 0`` always; both
tests failed on the old code.
"""

from __future__ import annotations

import json

import httpx

from tests.fakes import Fault
from tests.fakes.relays import TIMINGS, timings_only
from tests.integration.test_wire_shapes import NDJSON, ndjson

#: the last line of docs.ollama.com/api/usage's example, as Ollama sends it on a stream's end
DOCS_DONE = {"model": "backup-model", "created_at": "2025-10-17T23:14:07.414671Z",
             "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
             "total_duration": 174560334, "load_duration": 101397084, "prompt_eval_count": 11,
             "prompt_eval_duration": 13074791, "eval_count": 18, "eval_duration": 52479709}
HELLO = {"model": "backup-model", "created_at": "2025-10-17T23:14:07.3Z",
         "message": {"role": "assistant", "content": "Hello! How can I help you today?"}, "done": False}


def _last(gateway, path: str, model: str, stream: bool) -> dict:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]} if path == "/api/chat" \
        else {"model": model, "stream": stream, "prompt": "hi"}
    r = httpx.post(gateway.url + path, json=body, timeout=15)
    assert r.status_code == 200, r.text
    return json.loads(r.text.strip().splitlines()[-1])


def test_ollamas_stated_durations_are_passed_on(fakes, gateway):
    for path in ("/api/chat", "/api/generate"):
        for stream in (False, True):
            fakes[1].push(Fault.raw(200, ndjson(HELLO), ndjson(DOCS_DONE), headers=NDJSON))
            done = _last(gateway, path, "backup", stream)
            assert done["done"] and done["eval_count"] == 18, done
            assert (done["load_duration"], done["prompt_eval_duration"], done["eval_duration"]) == \
                (101397084, 13074791, 52479709), (path, stream, done)


def test_llama_servers_timings_are_passed_on_in_nanoseconds(fakes, gateway):
    fakes[0].push(timings_only("Hello from llama-server."))
    done = _last(gateway, "/api/chat", "fast", False)
    assert done["eval_count"] == TIMINGS["predicted_n"]
    assert done["prompt_eval_duration"] == round(TIMINGS["prompt_ms"] * 1e6)
    assert done["eval_duration"] == round(TIMINGS["predicted_ms"] * 1e6)
    assert done["load_duration"] == 0  # llama-server states no load time


def test_without_stated_times_the_gateways_own_measure_stays(fakes, gateway):
    """Guard (passes on the old code): an OpenAI-compatible backend that states no timings keeps the router's
    measure of the answer (tests/gateway/test_ollama_api.py checks its size)."""
    done = _last(gateway, "/api/chat", "fast", False)
    assert done["eval_duration"] > 0 and done["load_duration"] == 0


def test_stated_durations_of_any_shape_never_break_the_answer(fakes, gateway):
    """Provider data of any shape never gives a 500: durations that are no figure (a string, a boolean, negative, NaN
    is not JSON) are left out, and one past what a 64-bit count of ns holds (a float 1e300, an integer 10**30 — orjson
    refuses integers past 64 bits) is not passed on as it is."""
    for odd in ("52479709", True, -5, 1e300, 10**30, 2**64):
        fakes[1].push(Fault.raw(200, ndjson(HELLO), ndjson({**DOCS_DONE, "eval_duration": odd, "load_duration": odd,
                                                            "prompt_eval_duration": odd}), headers=NDJSON))
        done = _last(gateway, "/api/chat", "backup", False)
        assert done["done"] and 0 <= done["eval_duration"] < 2**63 and 0 <= done["load_duration"] < 2**63, (odd, done)
