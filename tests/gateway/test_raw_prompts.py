"""Text-completion clients end to end: a prompt goes to the model as it is, through the router, on fake backends that
speak the documented wire protocols.

Wire specs the fakes and assertions follow:

- OpenAI's legacy "Create completion" (platform.openai.com/docs/api-reference/completions/create; the ``openai`` SDK's
  ``completions.create``): ``prompt`` a string or a list of strings, one choice per prompt by ``index``, ``suffix``.
- Ollama's ``POST /api/generate`` (docs.ollama.com/api/generate): ``raw`` — "if true no formatting will be applied to
  the prompt"; ``suffix`` for fill-in-the-middle; raw with ``system`` is refused (ollama server/routes.go
  GenerateHandler: "raw mode does not support template, system, or context").
- Mistral's ``POST /v1/fim/completions`` (docs.rs/mistral-openapi-client FimApi.md, FIMCompletionRequest: ``model``,
  ``prompt``, ``suffix``, ``max_tokens``, ``temperature``, ``top_p``, ``stream``, ``stop``; the answer a chat
  completion), as Continue's ``openai`` provider posts it (continuedev/continue core/llm/llms/OpenAI.ts
  ``_streamFim``: ``new URL("fim/completions", this.apiBase)``, read as ``chunk.choices[0].delta.content``).
- LangChain's ``OpenAI`` LLM (langchain_openai.llms.base.BaseOpenAI): ``.batch()`` sends up to ``batch_size`` (20)
  prompts as one ``prompt`` list and reads ``choices`` back by position.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest

from modelyard.ledger import connect
from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config

#: a prompt in a client's own FIM template (Qwen2.5-Coder's tokens, as Continue's autocomplete renders it)
FIM_TEMPLATED = "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n\nprint(add(1, 2))<|fim_middle|>"


def _echo(body: dict[str, Any]) -> str:
    """What the fake model says: the prompt it was sent (and the suffix), so a test sees what reached it."""
    if "prompt" not in body:
        return "[a chat]"
    return f"[{body['prompt']}|{body['suffix']}]" if body.get("suffix") else f"[{body['prompt']}]"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[OpenAIServer, OllamaServer, AnthropicServer]]:
    with OpenAIServer(reply_text=_echo) as oa, OllamaServer(reply_text=_echo) as ol, \
            AnthropicServer(api_key=ANTHROPIC_KEY, reply_text="Hello from cloud.") as an:
        yield oa, ol, an


@pytest.fixture
def gw(tmp_path, servers, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    for server in servers:
        server.reset()
    oa, ol, an = servers
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url)) as server:
        yield server


@pytest.fixture
def sdk(gw) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=15) as client:
        yield client


def _rows(gw: GatewayServer) -> list[tuple[str, str, str]]:
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        return [tuple(r) for r in conn.execute("SELECT id, model, outcome FROM requests ORDER BY ts")]
    finally:
        conn.close()


def test_the_sdks_prompt_reaches_an_openai_compatible_server_verbatim(gw, servers, sdk):
    """Was: the prompt became a chat (``/v1/chat/completions``, the agent's system prompt, the model's template)."""
    oa = servers[0]
    done = sdk.completions.create(model="solo", prompt="The sky is", max_tokens=5, temperature=0)
    assert done.choices[0].text == "[The sky is]" and done.model == "fast"
    sent = oa.requests_to("/v1/completions")[-1].json
    assert sent["prompt"] == "The sky is" and sent["model"] == "fast-model" and "messages" not in sent
    assert sent["max_tokens"] == 5 and sent["temperature"] == 0
    assert oa.requests_to("/v1/chat/completions") == []
    chunks = list(sdk.completions.create(model="solo", prompt="Once upon", stream=True,
                                         stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "[Once upon]"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_a_list_of_prompts_is_answered_choice_by_choice_each_logged(gw, servers, sdk):
    """Was: a 400 ("one prompt per request"); LangChain users had to set ``batch_size=1``."""
    raw = sdk.completions.with_raw_response.create(model="coder", prompt=["one", "two", "three"], max_tokens=9)
    done = raw.parse()
    assert [(c.index, c.text, c.finish_reason) for c in done.choices] == [
        (0, "[one]", "stop"), (1, "[two]", "stop"), (2, "[three]", "stop")]
    assert done.id == "cmpl-" + raw.headers["x-modelyard-request-id"]
    sent = [r.json["prompt"] for r in servers[0].requests_to("/v1/completions")]
    assert sorted(sent) == ["one", "three", "two"]  # one routed request each (side by side: prompt_batch.py)
    assert done.usage.completion_tokens == 3 and done.usage.prompt_tokens == 3  # the total: one word each way
    rows = _rows(gw)
    assert len(rows) == 3 and {r[1:] for r in rows} == {("fast", "ok")}
    assert done.id[len("cmpl-"):] in {r[0] for r in rows}

    streamed = list(sdk.completions.create(model="coder", prompt=["alpha", "beta"], stream=True,
                                           stream_options={"include_usage": True}))
    by_index: dict[int, str] = {}
    for chunk in streamed:
        for choice in chunk.choices:
            by_index[choice.index] = by_index.get(choice.index, "") + choice.text
    assert by_index == {0: "[alpha]", 1: "[beta]"}
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens == 2
    assert len(_rows(gw)) == 5


def test_langchains_openai_llm_batches_without_batch_size_one(gw, servers):
    import langchain_openai  # a test dependency (pyproject.toml); imported here, it is slow to import
    llm = langchain_openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", model="coder", max_retries=0,
                                  max_tokens=20, timeout=15)
    assert llm.batch(["Tell me a joke", "Name a colour", "Count to two"]) == [
        "[Tell me a joke]", "[Name a colour]", "[Count to two]"]
    sent = servers[0].requests_to("/v1/completions")
    assert [r.json["prompt"] for r in sent] == ["Tell me a joke", "Name a colour", "Count to two"]


def _generate(gw: GatewayServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(gw.url + "/api/generate", json={"stream": False, **body}, timeout=15)


def test_raw_generate_reaches_ollama_and_openai_backends_verbatim(gw, servers):
    """Continue's autocomplete sends its own FIM template with ``raw: true`` (core/llm/llms/Ollama.ts
    ``_streamComplete`` with ``options.raw``). Was: ``raw`` ignored, the tokens shown to a chat model as a user's
    message through ``/api/chat``."""
    oa, ol, _ = servers
    client = ollama.Client(host=gw.url, timeout=15)
    answer = client.generate(model="model:backup", prompt=FIM_TEMPLATED, raw=True, options={"num_predict": 32})
    assert answer.response == f"[{FIM_TEMPLATED}]" and answer.done
    sent = ol.requests_to("/api/generate")[-1].json
    assert sent["raw"] is True and sent["prompt"] == FIM_TEMPLATED and sent["options"]["num_predict"] == 32
    assert "system" not in sent and "messages" not in sent and ol.requests_to("/api/chat") == []
    streamed = "".join(part.response for part in client.generate(model="solo", prompt=FIM_TEMPLATED, raw=True,
                                                                  stream=True))
    assert streamed == f"[{FIM_TEMPLATED}]"
    assert oa.requests_to("/v1/completions")[-1].json["prompt"] == FIM_TEMPLATED


def test_a_raw_prompt_is_refused_by_a_chat_only_model_and_the_chain_moves_on(gw, servers):
    """Anthropic's API takes only chat messages: a raw prompt there would be the template's tokens as the user's
    words. Its attempt is refused (no request sent, no cooldown) and the next model answers; a chain of chat-only
    models is a 400 saying why. Was: Claude was asked the special tokens as a message."""
    oa, _, an = servers
    r = _generate(gw, {"model": "writer", "prompt": FIM_TEMPLATED, "raw": True})
    assert r.status_code == 200 and r.json()["response"] == f"[{FIM_TEMPLATED}]"
    assert r.headers["x-modelyard-route"].startswith("cloud fallback bad_request, fast ok")
    assert an.requests_to("/v1/messages") == []
    only_cloud = _generate(gw, {"model": "model:cloud", "prompt": FIM_TEMPLATED, "raw": True})
    assert only_cloud.status_code == 400, only_cloud.text
    assert "raw prompt" in only_cloud.json()["error"] and "anthropic" in only_cloud.json()["error"]
    assert an.requests_to("/v1/messages") == []
    # not raw: the chat-only model answers the prompt as a user's message, as before
    done = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=15).completions.create(
        model="writer", prompt="Write a line.")
    assert done.choices[0].text == "Hello from cloud."
    assert gw.router.pool["cloud"].cooling()[0] == 0


def test_raw_with_system_is_refused_as_ollama_refuses_it(gw):
    r = _generate(gw, {"model": "coder", "prompt": "x", "raw": True, "system": "Be brief."})
    assert r.status_code == 400 and "raw mode does not support" in r.json()["error"]


def test_generate_with_a_suffix_goes_to_ollamas_own_fill_in_the_middle(gw, servers):
    """Continue's Ollama provider sends ``prompt`` + ``suffix`` (no raw) to a model whose template mentions
    ``.Suffix``: Ollama puts them in the model's FIM tokens. Was: asked of the chat model in words (fill_in.py)."""
    ol = servers[1]
    r = _generate(gw, {"model": "model:backup", "prompt": "def add(a, b):", "suffix": " # end"})
    assert r.status_code == 200 and r.json()["response"] == "[def add(a, b):| # end]"
    sent = ol.requests_to("/api/generate")[-1].json
    assert (sent["prompt"], sent["suffix"]) == ("def add(a, b):", " # end") and "raw" not in sent


# Continue's OpenAI.ts ``_streamFim`` body, field for field (its ``stop`` and penalties unset here: JSON drops them)
CONTINUE_FIM = {"model": "coder", "prompt": "def add(a, b):", "suffix": " # end", "max_tokens": 64,
                "temperature": 0.01, "top_p": None, "frequency_penalty": None, "presence_penalty": None,
                "stop": ["\n\n"], "stream": True}


def test_continues_openai_provider_fim_is_served_in_mistrals_shape(gw, servers):
    """Was: 404 (``/v1/fim/completions`` not served)."""
    headers = {"authorization": "Bearer undefined", "x-api-key": "", "accept": "application/json"}
    with httpx.stream("POST", gw.url + "/v1/fim/completions", json=CONTINUE_FIM, headers=headers, timeout=15) as r:
        assert r.status_code == 200, r.read()
        payloads = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    # as Continue reads them: choices[0].delta.content of every chunk (a chunk without choices would throw there)
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "[def add(a, b):| # end]"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["completion_tokens"] > 0
    sent = servers[0].requests_to("/v1/completions")[-1].json
    assert (sent["prompt"], sent["suffix"]) == ("def add(a, b):", " # end")

    whole = httpx.post(gw.url + "/v1/fim/completions", json={**CONTINUE_FIM, "stream": False}, timeout=15)
    assert whole.status_code == 200
    body = whole.json()
    assert body["object"] == "chat.completion" and body["model"] == "fast"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "[def add(a, b):| # end]",
                                             "tool_calls": None}
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    # a base URL without /v1 (Continue's apiBase often has none) finds it too
    assert httpx.post(gw.url + "/fim/completions", json={**CONTINUE_FIM, "stream": False},
                      timeout=15).status_code == 200
