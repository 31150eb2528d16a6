"""A ``/v1/completions`` list of prompts is answered side by side within the first model's slots, in order, and all
or nothing.

The ``openai`` SDK's ``completions.create(prompt=[…])`` (OpenAI's "Create completion": ``prompt`` "string or array";
the answer's ``choices[].index`` says whose), LangChain's ``OpenAI`` LLM batching its ``generate`` into such lists.
The fake takes a while an answer, as a model does, and serves calls side by side as llama-server does with
``--parallel`` slots. Was: one prompt after another, streamed or not — four prompts took four answers' time with a
slot free; the tests of the waves failed on the old code; the failure tests are guards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import Fault, OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import arrival_waves, make_config

DELAY = 0.6
PROMPTS = ["one", "two", "three", "four"]


def _echo(body: dict[str, Any]) -> str:
    return f"[{body.get('prompt')}]"


@pytest.fixture
def slow() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply_text=_echo) as server:
        server.faults.set_default(Fault.delay(DELAY))
        yield server


def _config(tmp_path, url: str, max_concurrent: int) -> Any:
    models = {"m": {"provider": "openai", "endpoint": url, "model": "qwen2.5-7b", "max_concurrent": max_concurrent}}
    defaults = {"timeouts": {"queue": 5, "connect": 2, "first_token": 10, "idle": 10, "total": 30},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, {"coder": {"primary": "m"}}, defaults=defaults, log={"path": str(tmp_path / "log.db")})


def _waves(server: OpenAIServer) -> list[int]:
    return arrival_waves((r.received_at for r in server.requests_to("/v1/completions")), DELAY / 2)


def _ask(gw: GatewayServer) -> Any:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=30) as sdk:
        return sdk.completions.create(model="coder", prompt=PROMPTS, max_tokens=9)


@pytest.mark.parametrize(("slots", "waves"), [(4, [4]), (2, [2, 2])])
def test_the_prompts_go_at_once_within_the_models_slots_in_order(tmp_path, slow, slots, waves):
    with GatewayServer(_config(tmp_path, slow.url, slots)) as gw:
        done = _ask(gw)
        assert [(c.index, c.text) for c in done.choices] == [(i, f"[{p}]") for i, p in enumerate(PROMPTS)]
        assert _waves(slow) == waves
        assert gw.router.pool.local("m").slots.peak == slots


@pytest.mark.parametrize(("slots", "waves"), [(4, [4]), (2, [2, 2])])
def test_streamed_the_later_prompts_are_read_ahead_and_sent_in_order(tmp_path, slow, slots, waves):
    with GatewayServer(_config(tmp_path, slow.url, slots)) as gw, \
            openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=30) as sdk:
        indexes: list[int] = []
        texts: dict[int, str] = {}
        for chunk in sdk.completions.create(model="coder", prompt=PROMPTS, max_tokens=9, stream=True):
            for choice in chunk.choices:
                indexes.append(choice.index)
                texts[choice.index] = texts.get(choice.index, "") + choice.text
        assert indexes == sorted(indexes)  # choice by choice, never interleaved
        assert texts == {i: f"[{p}]" for i, p in enumerate(PROMPTS)}
        assert _waves(slow) == waves
        assert gw.router.pool.local("m").slots.peak == slots


def test_one_prompt_failing_fails_the_answer(tmp_path, slow):
    """Guard: one prompt no model could answer is the client's error, never a list with a choice missing."""
    slow.faults.push(Fault.delay(DELAY), Fault.status(500))
    with GatewayServer(_config(tmp_path, slow.url, 4)) as gw, pytest.raises(openai.APIStatusError) as failed:
        _ask(gw)
    assert failed.value.status_code >= 500


def test_streamed_a_later_prompt_failing_ends_the_stream_and_the_rest_are_not_asked(tmp_path, slow):
    """Guard (the old code, one prompt at a time, did the same): the stream ends with an error event at the failed
    prompt, and a prompt read ahead whose turn comes after the failure is not asked. One slot: the prompts go one at a
    time, so the fake's faults meet them in order."""
    slow.faults.push(Fault.delay(DELAY), Fault.status(500))
    with GatewayServer(_config(tmp_path, slow.url, 1)) as gw:
        body = {"model": "coder", "prompt": ["one", "two", "three"], "max_tokens": 9, "stream": True}
        with httpx.stream("POST", gw.url + "/v1/completions", json=body, timeout=30) as r:
            assert r.status_code == 200
            lines = [line for line in r.iter_lines() if line.startswith("data: ")]
        assert '"[one]"' in "".join(lines) and "prompt 1:" in lines[-1] and "[DONE]" not in lines[-1]
        assert [q.json["prompt"] for q in slow.requests_to("/v1/completions")] == ["one", "two"]
