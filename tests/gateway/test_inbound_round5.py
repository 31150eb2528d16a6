"""Request fields real clients send (the inbound hunt, round 5), through the clients themselves.

``logit_bias`` (OpenAI's chat and text completions: "Accepts a JSON object that maps tokens (specified by their token
ID in the tokenizer) to an associated bias value from -100 to 100", platform.openai.com/docs/api-reference/chat/create)
was ignored at the gateway with no word said: the banned token could come back. It is passed on to OpenAI-compatible
servers (vLLM's ``logit_bias: dict[str, float]``, llama-server's — which also reads ``false`` as a ban, its README —,
LM Studio's); Ollama's API has none (ollama/ollama#3795, open): asked without it, and the route says so. LangChain's
``ChatOpenAI`` sent ``logit_bias: {}`` on every request until langchain-ai/langchain#28460: an empty one is none.

A ``max_tokens`` far past what any model writes (10**30; 2**63) went to the backend as sent, to servers that read it
into a fixed-size integer (Ollama's ``num_predict`` a Go ``int``: encoding/json refuses a larger number, a 400;
llama-server's ``n_predict`` 32 bits).
Now clamped to the model's output limit, else its context, else 2**31-1, and the route says so (as the clamp to an
output limit always did).

Azure OpenAI's deployment paths (``/openai/deployments/{deployment}/chat/completions?api-version=…``, the key in
``api-key``: learn.microsoft.com, azure/ai-services/openai/reference) were a 404 with a hint; openai-python's
``AzureOpenAI`` client now gets its answers there, the deployment naming the agent or model. These tests failed on
the old code; guards say so.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.fakes import OllamaServer, OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

ASK = [{"role": "user", "content": "hi"}]
KEY = "sk-gw-round5"


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[OpenAIServer, OllamaServer]]:
    with OpenAIServer() as oa, OllamaServer() as ol:
        yield oa, ol


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: tuple[OpenAIServer, OllamaServer]) -> Iterator[GatewayServer]:
    oa, ol = fakes
    models = {"oa": {"provider": "openai", "endpoint": oa.url, "model": "qwen2.5-7b"},
              "oactx": {"provider": "openai", "endpoint": oa.url, "model": "qwen2.5-7b-8k", "context": 8192},
              "ol": {"provider": "ollama", "endpoint": ol.url, "model": "qwen2.5:7b"}}
    config = make_config(models, {"viaopenai": {"primary": "oa"}, "viaollama": {"primary": "ol"},
                                  "eightk": {"primary": "oactx"}},
                         defaults={"retries": {"attempts": 0}},
                         log={"path": str(tmp_path_factory.mktemp("round5") / "log.db")})
    with GatewayServer(config, api_keys=(KEY,)) as server:
        yield server


@pytest.fixture
def client(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0, timeout=15)


# -- logit_bias ------------------------------------------------------------------------------------------------------


def test_the_sdks_logit_bias_reaches_an_openai_compatible_server(client, fakes):
    oa, _ = fakes
    client.chat.completions.create(model="viaopenai", messages=ASK, logit_bias={"50256": -100, "1734": 5})
    assert oa.last_request.json["logit_bias"] == {"50256": -100, "1734": 5}
    client.completions.create(model="viaopenai", prompt="1, 2, 3,", logit_bias={"11": 10})
    assert oa.last_request.json["logit_bias"] == {"11": 10}


def test_llama_servers_false_is_sent_as_a_ban_and_an_empty_one_as_none(client, fakes):
    """llama-server's README: ``false`` "ensures that the token … is never produced"; read as 0.0 it was no bias at
    all. OpenAI's -100 "should result in a ban" on every server. LangChain's ``{}`` sends nothing."""
    oa, _ = fakes
    client.chat.completions.create(model="viaopenai", messages=ASK, extra_body={"logit_bias": {"15043": False}})
    assert oa.last_request.json["logit_bias"] == {"15043": -100}
    client.chat.completions.create(model="viaopenai", messages=ASK, logit_bias={})
    assert "logit_bias" not in oa.last_request.json


@pytest.mark.parametrize("bias", [101, -100.5, True, "5"])
def test_a_bias_out_of_range_or_no_number_is_a_400_naming_it(client, bias):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="viaopenai", messages=ASK, extra_body={"logit_bias": {"50256": bias}})
    assert err.value.body["param"] == "logit_bias.50256"


def test_ollamas_api_is_asked_without_it_and_the_route_says_so(client, fakes):
    _, ol = fakes
    raw = client.chat.completions.with_raw_response.create(model="viaollama", messages=ASK, logit_bias={"50256": -100})
    assert b"logit_bias" not in ol.last_request.body
    assert "logit_bias left out: Ollama's API takes none" in raw.headers["x-modelyard-route"]


# -- max_tokens far past any model's -----------------------------------------------------------------------------------


@pytest.mark.parametrize("asked", [10**30, 2**63, 2**31])
def test_a_max_tokens_past_any_model_is_clamped_and_said_never_a_500(client, fakes, asked):
    oa, _ = fakes
    raw = client.chat.completions.with_raw_response.create(model="viaopenai", messages=ASK, max_tokens=asked)
    assert raw.parse().choices[0].message.content
    assert oa.last_request.json["max_tokens"] == 2**31 - 1
    assert "clamped to 2147483647, the most any server is sent" in raw.headers["x-modelyard-route"]


def test_a_max_tokens_past_the_models_context_is_clamped_to_it(client, fakes):
    oa, _ = fakes
    raw = client.chat.completions.with_raw_response.create(model="eightk", messages=ASK, max_completion_tokens=10**30)
    assert oa.last_request.json["max_tokens"] == 8192
    assert "max_tokens ~10^30 clamped to 8192, the model's context" in raw.headers["x-modelyard-route"]


def test_ollamas_and_anthropics_clients_huge_budgets_are_clamped(gw, fakes):
    oa, ol = fakes
    ollama.Client(host=gw.url, headers={"authorization": f"Bearer {KEY}"}).chat(
        model="viaollama", messages=ASK, options={"num_predict": 10**30})
    assert ol.last_request.json["options"]["num_predict"] == 2**31 - 1
    claude = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0, timeout=15)
    answer = claude.messages.create(model="viaopenai", max_tokens=10**30, messages=ASK)
    assert answer.content[0].text and oa.last_request.json["max_tokens"] == 2**31 - 1


def test_a_budget_within_every_limit_goes_as_sent(client, fakes):
    """Guard (right before too): an ordinary max_tokens is neither clamped nor noted."""
    oa, _ = fakes
    raw = client.chat.completions.with_raw_response.create(model="eightk", messages=ASK, max_tokens=300)
    assert oa.last_request.json["max_tokens"] == 300 and "clamped" not in raw.headers["x-modelyard-route"]


# -- Azure OpenAI's deployment paths -----------------------------------------------------------------------------------


@pytest.fixture
def azure(gw: GatewayServer) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=gw.url, api_version="2024-10-21", api_key=KEY, max_retries=0, timeout=15)


def test_the_azure_client_is_answered_with_the_deployment_as_the_agent(azure, fakes):
    oa, _ = fakes
    done = azure.chat.completions.create(model="viaopenai", messages=ASK)
    assert done.choices[0].message.content and done.model == "oa"
    assert oa.last_request.json["model"] == "qwen2.5-7b"
    streamed = list(azure.chat.completions.create(model="viaopenai", messages=ASK, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == done.choices[0].message.content


def test_the_path_names_the_deployment_whatever_the_body_says(gw, fakes):
    """``AzureOpenAI(azure_deployment=…)`` puts the deployment in the base URL; the body's ``model`` is then the
    caller's own word (Azure does not read it)."""
    oa, ol = fakes
    fixed = openai.AzureOpenAI(azure_endpoint=gw.url, azure_deployment="viaollama", api_version="2024-10-21",
                               api_key=KEY, max_retries=0, timeout=15)
    assert fixed.chat.completions.create(model="gpt-4o", messages=ASK).model == "ol"
    assert ol.last_request.json["model"] == "qwen2.5:7b"


def test_azure_embeddings_and_text_completions(azure, fakes):
    oa, _ = fakes
    vectors = azure.embeddings.create(model="oa", input=["one", "two"])
    assert len(vectors.data) == 2 and vectors.data[0].embedding
    assert azure.completions.create(model="viaopenai", prompt="1, 2,", max_tokens=5).choices[0].text


def test_the_key_is_read_from_api_key_and_a_wrong_one_refused(gw):
    wrong = openai.AzureOpenAI(azure_endpoint=gw.url, api_version="2024-10-21", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.chat.completions.create(model="viaopenai", messages=ASK)
    assert "'api-key: <key>'" in err.value.body["message"]
    r = httpx.post(gw.url + "/openai/deployments/viaopenai/chat/completions?api-version=2024-10-21",
                   json={"messages": ASK}, timeout=15)  # Azure's body needs no model: the path has it
    assert r.status_code == 401


def test_a_deployment_path_not_served_says_which_are(gw):
    r = httpx.post(gw.url + "/openai/deployments/viaopenai/images/generations?api-version=2024-10-21",
                   headers={"api-key": KEY}, json={"prompt": "a cat"}, timeout=15)
    assert r.status_code == 404
    assert "/openai/deployments/{deployment}/chat/completions" in r.json()["error"]["message"]


def test_azures_v1_api_is_the_openai_api(gw, fakes):
    """Azure's v1 API: the plain OpenAI client on ``…/openai/v1/`` (openai-node docs/azure.md), model = deployment."""
    v1 = openai.OpenAI(base_url=gw.url + "/openai/v1/", api_key=KEY, max_retries=0, timeout=15)
    assert v1.chat.completions.create(model="viaopenai", messages=ASK).choices[0].message.content
