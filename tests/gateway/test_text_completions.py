"""``POST /v1/completions`` (OpenAI's legacy text completions) as its real clients call it, on fake backends.

Shapes: OpenAI's "Create completion" reference as the ``openai`` SDK types it (``client.completions.create``,
``openai.types.Completion``; summarised at https://tessl.io/registry/tessl/pypi-openai/2.11.0/files/docs/completions.md);
the SDK itself is the client in most tests, so its parser checks every answer. Continue's fill-in-the-middle body is
taken from its source (below).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.gateway.fill_in import HOLE, INSTRUCTION
from tests.fakes import Fault
from tests.gateway.harness import GatewayServer, fake_config
from tests.gateway.test_lifecycle import log_row, open_request
from tests.reliability.kit import is_openai_error

_clients: list[openai.OpenAI] = []


def sdk(gw: GatewayServer, base: str = "/v1") -> openai.OpenAI:
    client = openai.OpenAI(base_url=gw.url + base, api_key="unused-on-loopback", max_retries=0, timeout=15)
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def sse_events(response: httpx.Response) -> list[dict | str]:
    """The ``data:`` payloads of an SSE body, JSON-decoded (``[DONE]`` kept as the string)."""
    out: list[dict | str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_the_sdk_gets_a_text_completion_from_the_agents_chain(gateway, fakes):
    raw = sdk(gateway).completions.with_raw_response.create(model="coder", prompt="Say this is a test", max_tokens=7,
                                                           temperature=0, top_p=1, seed=3, user="u-1")
    done = raw.parse()
    assert done.object == "text_completion" and done.id == "cmpl-" + raw.headers["x-modelyard-request-id"]
    assert done.model == "fast" and raw.headers["x-modelyard-model"] == "fast"
    assert raw.headers["x-modelyard-route"] == "fast ok"
    [choice] = done.choices
    assert (choice.text, choice.index, choice.finish_reason, choice.logprobs) == ("Hello from fast.", 0, "stop", None)
    assert done.usage.completion_tokens > 0 and done.usage.total_tokens == \
        done.usage.prompt_tokens + done.usage.completion_tokens
    sent = fakes[0].last_request  # the prompt as it is, to the server's own text completions (test_raw_prompts.py)
    assert sent.path == "/v1/completions" and sent.json["prompt"] == "Say this is a test"
    assert sent.json["max_tokens"] == 7 and sent.json["temperature"] == 0
    assert "coder" in [m.id for m in sdk(gateway).models.list().data]  # /v1/models as before


def test_a_list_holding_one_prompt_and_a_base_url_without_v1(gateway, fakes):
    """``prompt`` may be a list of strings (LangChain's ``OpenAI`` LLM sends one); Continue's ``apiBase`` often
    leaves out ``/v1``."""
    done = sdk(gateway, base="").completions.create(model="model:backup", prompt=["Tell me a joke"])
    assert done.choices[0].text == "Hello from backup." and done.model == "backup"
    sent = fakes[1].last_request  # Ollama: /api/generate, raw (no template around the prompt)
    assert sent.path == "/api/generate" and (sent.json["prompt"], sent.json["raw"]) == ("Tell me a joke", True)


def test_streamed_with_usage_ends_with_the_usage_chunk_and_done(gateway):
    chunks = list(sdk(gateway).completions.create(model="coder", prompt="hi", stream=True,
                                                  stream_options={"include_usage": True}))
    assert {c.object for c in chunks} == {"text_completion"} and {c.model for c in chunks} == {"fast"}
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello from fast."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    plain = list(sdk(gateway).completions.create(model="coder", prompt="hi", stream=True))
    assert all(c.choices for c in plain) and all(c.usage is None for c in plain)


def test_the_stream_ends_with_data_done(gateway):
    with httpx.stream("POST", gateway.url + "/v1/completions", timeout=15,
                      json={"model": "coder", "prompt": "hi", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]" and all(isinstance(e, dict) and e["object"] == "text_completion"
                                          for e in events[:-1])


def test_a_fallback_is_reported_whole_and_streamed(gateway, fakes):
    fakes[0].push(Fault.status(500))
    raw = sdk(gateway).completions.with_raw_response.create(model="coder", prompt="hi")
    assert raw.parse().choices[0].text == "Hello from backup." and raw.parse().model == "backup"
    assert raw.headers["x-modelyard-route"] == "fast fallback server_error, backup ok"
    fakes[0].push(Fault.status(503))
    with sdk(gateway).completions.with_streaming_response.create(model="coder", prompt="hi", stream=True) as r:
        assert r.headers["x-modelyard-model"] == "backup"
        assert r.headers["x-modelyard-route"].startswith("fast fallback overloaded, backup ok")
        assert "".join(c.choices[0].text for c in r.parse() if c.choices) == "Hello from backup."


def test_a_cloud_agent_gets_the_prompt_as_its_users_message(gateway, fakes):
    done = sdk(gateway).completions.create(model="writer", prompt="Write a line.", max_tokens=20)
    assert done.choices[0].text == "Hello from cloud." and done.model == "cloud"
    assert fakes[2].last_request.json["messages"][-1]["content"] in ("Write a line.",
                                                                   [{"type": "text", "text": "Write a line."}])
    # Anthropic's API takes no prompt: a fill-in-the-middle is asked of it in words (fill_in.py)
    sdk(gateway).completions.create(model="writer", prompt="def f():\n    ", suffix="\nf()\n")
    sent = fakes[2].last_request.json
    assert INSTRUCTION in json.dumps(sent.get("system"))
    assert json.dumps(f"def f():\n    {HOLE}\nf()\n")[1:-1] in json.dumps(sent["messages"][-1]["content"])


# Continue's fill-in-the-middle request to an OpenAI-compatible ``completions`` endpoint, field for field as its
# providers build it: continuedev/continue core/llm/llms/LlamaStack.ts and SiliconFlow.ts, ``_streamFim`` (``new
# URL("completions", this.apiBase)``, body {model, prompt: prefix, suffix, max_tokens, temperature, top_p,
# frequency_penalty, presence_penalty, stop, stream: true}, read as ``chunk.choices[0].text``); the same body from
# packages/openai-adapters/src/apis/Llamastack.ts ``fimStream``. Continue's autocomplete sends many stop words.
CONTINUE_FIM = {"model": "coder", "prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))\n",
                "max_tokens": 64, "temperature": 0.01, "top_p": None, "frequency_penalty": None,
                "presence_penalty": None, "stop": ["\n\n", "\ndef", "from", "```"], "stream": True}


def test_a_continue_fill_in_the_middle_request(gateway, fakes):
    # its headers with no key set: `Bearer ${this.apiKey}` of undefined, `this.apiKey ?? ""`
    headers = {"authorization": "Bearer undefined", "x-api-key": "", "accept": "application/json"}
    with httpx.stream("POST", gateway.url + "/v1/completions", json=CONTINUE_FIM, timeout=15, headers=headers) as r:
        assert r.status_code == 200
        events = sse_events(r)
    texts = [e["choices"][0]["text"] for e in events if isinstance(e, dict) and e["choices"]]
    assert "".join(texts) == "Hello "  # cut before the stop word "from", as a model sent it would have stopped
    assert [e["choices"][0]["finish_reason"] for e in events[:-1] if isinstance(e, dict)][-1] == "stop"
    assert events[-1] == "[DONE]"
    sent = fakes[0].last_request  # to the server's own fill-in-the-middle: prompt and suffix as they came
    assert sent.path == "/v1/completions"
    assert (sent.json["prompt"], sent.json["suffix"]) == (CONTINUE_FIM["prompt"], CONTINUE_FIM["suffix"])


def test_a_suffix_with_an_empty_prompt_is_a_fill_at_the_start(gateway, fakes):
    done = sdk(gateway).completions.create(model="solo", prompt="", suffix="return x\n")
    assert done.choices[0].text == "Hello from fast."
    assert (fakes[0].last_request.json["prompt"], fakes[0].last_request.json["suffix"]) == ("", "return x\n")


def test_echo_puts_the_prompt_before_the_answer(gateway):
    assert sdk(gateway).completions.create(model="solo", prompt="Q: ", echo=True).choices[0].text == \
        "Q: Hello from fast."
    chunks = list(sdk(gateway).completions.create(model="solo", prompt="Q: ", echo=True, stream=True))
    assert chunks[0].choices[0].text == "Q: " and "".join(c.choices[0].text for c in chunks) == "Q: Hello from fast."


def test_stop_cuts_the_whole_answer(gateway):
    done = sdk(gateway).completions.create(model="solo", prompt="hi", stop=" from")
    assert (done.choices[0].text, done.choices[0].finish_reason) == ("Hello", "stop")


@pytest.mark.parametrize(("extra", "param", "says"), [
    ({"prompt": [1, 2, 3]}, "prompt", "token arrays are not supported"),
    ({"prompt": [[1, 2], [3]]}, "prompt", "token arrays are not supported"),
    ({"prompt": ["one"] * 65}, "prompt", "at most 64 prompts"),
    ({"prompt": []}, "prompt", "empty list"),
    ({"prompt": ""}, "prompt", "empty"),
    ({"prompt": ["a", 1]}, "prompt", "a string or a list of strings"),
    ({"n": 2}, "n", "one completion per request"),
    ({"best_of": 3}, "best_of", "one completion per request"),
    ({"logprobs": 0}, "logprobs", "log probabilities are not available"),
    ({"logprobs": 5, "echo": True, "max_tokens": 1}, "logprobs", "log probabilities are not available"),
    ({"max_tokens": 0}, "max_tokens", "max_tokens"),
    ({"temperature": 3}, "temperature", "temperature"),
])
def test_what_is_not_supported_is_a_400_naming_it(gateway, fakes, extra, param, says):
    body = {"model": "coder", "prompt": "hi", **extra}
    with pytest.raises(openai.BadRequestError) as err:
        sdk(gateway).completions.create(**body)
    error = err.value.body
    assert error["param"] == param and says in error["message"] and error["type"] == "invalid_request_error"
    assert is_openai_error({"error": error})
    assert not fakes[0].requests and not fakes[1].requests  # refused before any model was asked


def test_a_missing_prompt_and_a_broken_body_are_openai_errors(gateway):
    r = httpx.post(gateway.url + "/v1/completions", json={"model": "coder"}, timeout=15)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    r = httpx.post(gateway.url + "/v1/completions", content=b"{not json", timeout=15,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and is_openai_error(r.json())


def test_an_unknown_model_is_the_sdks_404(gateway):
    with pytest.raises(openai.NotFoundError) as err:
        sdk(gateway).completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    assert err.value.body["code"] == "model_not_found" and err.value.body["param"] == "model"


def test_no_model_could_answer_is_an_openai_error_with_the_attempts(gateway, fakes):
    fakes[0].push(Fault.status(401))
    with pytest.raises(openai.APIStatusError) as err:
        sdk(gateway).completions.create(model="solo", prompt="hi")
    assert err.value.status_code == 424 and err.value.body["code"] == "no_model_available"
    assert [a["reason"] for a in err.value.body["attempts"]] == ["auth_error"]
    fakes[0].push(Fault.status(401))
    with pytest.raises(openai.APIStatusError) as err:  # a stream not yet committed: the same status, not a 200
        list(sdk(gateway).completions.create(model="solo", prompt="hi", stream=True))
    assert err.value.status_code == 424


def test_a_stream_that_breaks_off_ends_with_an_error_event_not_done(gateway, fakes):
    fakes[0].push(Fault.error_midstream(after_chunks=1))
    with httpx.stream("POST", gateway.url + "/v1/completions", timeout=15,
                      json={"model": "solo", "prompt": "hi", "stream": True}) as r:
        events = sse_events(r)
    assert "[DONE]" not in events and is_openai_error(events[-1])
    assert events[-1]["error"]["code"] == "stream_interrupted"
    fakes[0].push(Fault.error_midstream(after_chunks=1))
    with pytest.raises(openai.APIError):
        list(sdk(gateway).completions.create(model="solo", prompt="hi", stream=True))


def test_a_gateway_with_keys_refuses_a_request_without_one(tmp_path, fakes, monkeypatch):
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), api_keys=("key-0123456789",)) as gw:
        r = httpx.post(gw.url + "/v1/completions", json={"model": "coder", "prompt": "hi"}, timeout=15)
        assert r.status_code == 401 and is_openai_error(r.json())
        assert not oa.requests  # the refused request reached no model
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="key-0123456789", max_retries=0, timeout=15)
        with client:
            assert client.completions.create(model="coder", prompt="hi").choices[0].text == "Hello from fast."


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_cancels_the_upstream_call_and_frees_the_slot(gateway, fakes, stream):
    oa = fakes[0]
    oa.push(Fault.hang_after_first_token() if stream else Fault.hang_before_headers())
    slots = gateway.router.pool.local("fast").slots
    sock = open_request(gateway.url, {"model": "solo", "stream": stream, "prompt": "x"}, "/v1/completions")
    gateway.wait_for(lambda: slots.in_flight == 1 and oa.in_flight == 1)
    if stream:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()
    gateway.wait_for(lambda: slots.in_flight == 0, timeout=1.0)
    oa.wait_for(lambda: oa.in_flight == 0, timeout=1.0)
    assert gateway.wait_for(lambda: log_row(gateway, outcome="cancelled"))["agent"] == "solo"


@pytest.mark.parametrize("stream", [False, True])
def test_the_routing_row_is_committed_before_the_answer_is_delivered(gateway, stream):
    r = httpx.post(gateway.url + "/v1/completions", timeout=15,
                   json={"model": "coder", "stream": stream, "prompt": "note this"})
    assert r.status_code == 200
    row = log_row(gateway, r.headers["x-modelyard-request-id"])
    assert row is not None and row["outcome"] == "ok" and row["model"] == "fast" and row["prompt"] == "note this"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
BODY = st.fixed_dictionaries(
    {"model": st.sampled_from(["coder", "solo", "nope", ""]) | JSON, "prompt": JSON},
    optional={"suffix": JSON, "stream": JSON, "echo": JSON, "n": JSON, "best_of": JSON, "logprobs": JSON,
              "max_tokens": JSON, "temperature": JSON, "stop": JSON, "stream_options": JSON})


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODY | JSON)
def test_random_bodies_get_an_answer_or_an_openai_error(gateway, body):
    r = httpx.post(gateway.url + "/v1/completions", content=json.dumps(body).encode(), timeout=15,
                   headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 404), (body, r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    if r.status_code != 200:
        assert is_openai_error(r.json()), r.text[:300]
    if r.status_code == 404:  # a name that is no agent or model, never the endpoint itself missing
        assert r.json()["error"]["code"] == "model_not_found", r.text[:300]


def test_langchains_openai_llm_invokes_streams_and_batches(gateway, fakes):
    """LangChain's ``OpenAI`` LLM class (langchain_openai.llms.base.BaseOpenAI) calls ``completions.create`` with
    ``prompt`` as a list, ``n: 1`` and ``logprobs: null``; several prompts go in one call unless ``batch_size=1``
    (answered choice by choice: test_raw_prompts.py)."""
    langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is not installed")
    llm = langchain_openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", model="coder", max_retries=0,
                                  max_tokens=20, timeout=15)
    assert llm.invoke("Tell me a joke") == "Hello from fast."
    assert "".join(llm.stream("Tell me a joke")) == "Hello from fast."
    sent = fakes[0].last_request.json
    assert sent["prompt"] == "Tell me a joke" and sent["max_tokens"] == 20
    assert llm.batch(["a", "b"]) == ["Hello from fast.", "Hello from fast."]
    one_a_call = langchain_openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", model="coder",
                                         max_retries=0, batch_size=1, timeout=15)
    assert one_a_call.batch(["a", "b"]) == ["Hello from fast.", "Hello from fast."]
