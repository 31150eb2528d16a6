"""A twelfth outside-in pass (prov12): endpoints that carry a query, a host without room for a model, the one-call
ask on the OpenAI-compatible wire, then shapes real servers send that the fakes never did. Each is the server's own,
from its reference or an issue thread where its users met it (cited per test).

- Azure OpenAI's two URL shapes and Gemini's ``?key=``: the provider's path joined before the query, the query kept
  on every call (discovery too), a key in it never shown; an Azure endpoint written as it cannot answer, refused
  with what to write;
- Ollama out of GPU or system memory: the next model at once, this one rested, not called missing;
- ``parallel_tool_calls: false`` passed on, and dropped for a server that refuses it.

Each failed on the code before this pass.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.fakes import Fault
from tests.fakes.azure import AzureOpenAIServer, GeminiOpenAIServer
from tests.helpers import make_config
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling
from tests.integration.test_wire_shapes_round9 import _routed

from modelyard.errors import ProviderError
from modelyard.ledger import LogWriter, connect
from modelyard.providers.openai import OpenAIProvider
from modelyard.router import Router
from modelyard.router.records import ChainExhausted
from modelyard.types import ChatRequest, Message, ToolDefinition

PLAIN = ChatRequest(messages=[Message("user", "Say hello")])
AZURE_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
GEMINI_KEY = "AIzaSyD-fake-gemini-key-0123456789abcdef"
REPLY = "Hello from the cloud."


@pytest.fixture(scope="module")
def azure() -> Iterator[AzureOpenAIServer]:
    server = AzureOpenAIServer(["gpt-4o-prod"], api_key=AZURE_KEY, reply_text=REPLY).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiOpenAIServer]:
    server = GeminiOpenAIServer(["gemini-2.5-flash"], api_key=GEMINI_KEY, reply_text=REPLY).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)


async def _ask(model: dict[str, Any], tmp_path: Path, *requests: ChatRequest) -> list[Any]:
    """Each request routed by a router whose one model is ``model`` (closed after, whatever happened)."""
    config = make_config({"cloud": model}, {"agent": {"primary": "cloud"}},
                         defaults={"timeouts": {"connect": 2, "first_token": 5, "idle": 5, "total": 15},
                                   "retries": {"attempts": 1, "backoff": 0.01}})
    writer = LogWriter(tmp_path / "log.db")
    router = Router(config, sink=writer.submit)
    try:
        return [await router.complete("agent", request) for request in requests]
    finally:
        await router.aclose()
        writer.close()


# -- Azure OpenAI: the deployment's Target URI, as the portal shows it ------------------------------------------------

async def test_an_azure_deployment_url_serves_requests(azure: AzureOpenAIServer, tmp_path: Path) -> None:
    """The Azure portal gives a deployment's "Target URI" as ``https://NAME.openai.azure.com/openai/deployments/
    DEPLOYMENT/chat/completions?api-version=2024-10-21`` (the REST reference's shape, learn.microsoft.com azure/
    ai-services/openai/reference; learn.microsoft.com/answers/questions/2225315 pastes one). The provider's path went
    after the query (``…?api-version=2024-10-21/chat/completions/v1/chat/completions``): not one request could be
    served. And the key went as a bearer token, where such a URL takes ``api-key`` (the SDK's AzureOpenAI client and
    LiteLLM's azure provider send it so). Now the path goes before the query, and the key as ``api-key``."""
    azure.reset()
    endpoint = f"{azure.url}/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    [routed] = await _ask({"provider": "openai", "model": "gpt-4o-prod", "endpoint": endpoint,
                           "api_key_env": "AZURE_OPENAI_API_KEY"}, tmp_path, PLAIN)
    assert routed.response.text == REPLY and routed.record.attempts[0].outcome == "ok"
    [sent] = azure.requests
    assert sent.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == AZURE_KEY and "authorization" not in sent.headers


async def test_the_azure_v1_api_keeps_its_query_on_every_call(azure: AzureOpenAIServer, tmp_path: Path) -> None:
    """Azure's v1 API (``https://NAME.openai.azure.com/openai/v1/``, learn.microsoft.com azure/ai-services/openai/
    api-version-lifecycle) takes ``?api-version=preview`` for its preview features: the query stays on the chat and on
    the model listing (the context window read from it, ``init --detect``)."""
    azure.reset()
    endpoint = f"{azure.url}/openai/v1/?api-version=preview"
    [routed] = await _ask({"provider": "openai", "model": "gpt-4o-prod", "endpoint": endpoint,
                           "api_key_env": "AZURE_OPENAI_API_KEY"}, tmp_path, PLAIN)
    assert routed.response.text == REPLY
    provider = OpenAIProvider("cloud", make_config(
        {"cloud": {"provider": "openai", "model": "gpt-4o-prod", "endpoint": endpoint,
                   "api_key_env": "AZURE_OPENAI_API_KEY", "context": 8192}}, {"agent": {"primary": "cloud"}}
    ).models["cloud"])
    try:
        window = await provider.context_window()
    finally:
        await provider.aclose()
    assert "does not list the model" not in window.source and "HTTP" not in window.source
    assert [(r.path, r.query) for r in azure.requests] == [("/openai/v1/chat/completions", {"api-version": "preview"}),
                                                           ("/openai/v1/models", {"api-version": "preview"})]


@pytest.mark.parametrize("endpoint", [
    "https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod?api-version=2024-10-21",
    "https://contoso.openai.azure.com/openai/v1",
    "https://contoso-foundry.cognitiveservices.azure.com/openai/v1/",
    # Azure AI Foundry's model inference endpoint, its version in the query too
    "https://contoso-foundry.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
])
def test_an_azure_resource_is_sent_its_key_as_api_key(endpoint: str) -> None:
    """Azure's REST reference names the ``api-key`` header for a key on both shapes; its bearer token is a Microsoft
    Entra ID token. Any other OpenAI-compatible server keeps the bearer. The chat path goes straight below each
    (an endpoint naming its ``api-version`` names its API: no ``/v1`` added)."""
    config = make_config({"cloud": {"provider": "openai", "model": "gpt-4o-prod", "endpoint": endpoint,
                                    "api_key_env": "AZURE_OPENAI_API_KEY"}}, {"agent": {"primary": "cloud"}})
    provider = OpenAIProvider("cloud", config.models["cloud"])
    assert provider.client_headers() == {"api-key": AZURE_KEY} and provider._path() == "/chat/completions"
    groq = make_config({"g": {"provider": "openai", "model": "m", "endpoint": "https://api.groq.com/openai/v1",
                              "api_key_env": "AZURE_OPENAI_API_KEY"}}, {"agent": {"primary": "g"}})
    assert OpenAIProvider("g", groq.models["g"]).client_headers() == {"authorization": f"Bearer {AZURE_KEY}"}


@pytest.mark.parametrize(("endpoint", "fix"), [
    # the resource's address, as the portal's "Keys and Endpoint" page shows it: asked at /v1/chat/completions
    ("https://contoso.openai.azure.com/", "write endpoint: https://contoso.openai.azure.com/openai/v1"),
    # a deployment URL without its version (BAML's docs: "Azure will return 'not found' if the version is not
    # specified"), and with it misspelt
    ("https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod",
     "https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod?api-version=2024-10-21"),
    ("https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api_version=2024-10-21",
     "https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod?api-version=2024-10-21"),
    ("https://contoso.openai.azure.com/openai/deployments/", "the deployment's name is missing"),
])
def test_an_azure_endpoint_that_cannot_answer_says_what_to_write(endpoint: str, fix: str) -> None:
    """Each loaded and every request was a 404, read as a model not there (cooled for max_seconds, the chain's
    next asked): nothing said the URL was the fault. The config now refuses it with the URL to write."""
    with pytest.raises(ValidationError) as refused:
        make_config({"cloud": {"provider": "openai", "model": "gpt-4o-prod", "endpoint": endpoint}},
                    {"agent": {"primary": "cloud"}})
    assert fix in str(refused.value)


# -- Gemini's ?key= ---------------------------------------------------------------------------------------------------

async def test_an_endpoint_with_its_key_in_the_query_answers_and_never_shows_the_key(
        gemini: GeminiOpenAIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Gemini's OpenAI-compatible endpoint with the key in the query (``…/v1beta/openai/?key=…``, as Google's APIs
    take one): the chat and the listing go to ``/v1beta/openai/chat/completions?key=…`` and ``…/models?key=…``. It
    was ``…?key=…/chat/completions``: Google read the key as ``…/chat/completions`` appended, and refused it. When the
    server cannot be reached, no message, row or log line holds the key."""
    gemini.reset()
    endpoint = f"{gemini.url}/v1beta/openai/?key={GEMINI_KEY}"
    [routed] = await _ask({"provider": "openai", "model": "gemini-2.5-flash", "endpoint": endpoint}, tmp_path, PLAIN)
    assert routed.response.text == REPLY
    served = await OpenAIProvider.served_models(endpoint)
    assert [m.model_id for m in served] == ["gemini-2.5-flash"]
    assert [(r.path, r.query) for r in gemini.requests] == [
        ("/v1beta/openai/chat/completions", {"key": GEMINI_KEY}), ("/v1beta/openai/models", {"key": GEMINI_KEY})]
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}/v1beta/openai?key={GEMINI_KEY}"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ChainExhausted) as exhausted:
            await _ask({"provider": "openai", "model": "gemini-2.5-flash", "endpoint": gone}, tmp_path / "gone", PLAIN)
        with pytest.raises(ProviderError) as listing:
            await OpenAIProvider.served_models(gone)
    assert {a.reason for a in exhausted.value.record.attempts} == {"connect_error"}
    rows = connect(tmp_path / "gone" / "log.db").execute("SELECT * FROM attempts").fetchall()
    said = " ".join([str(exhausted.value), str(listing.value), caplog.text, repr([tuple(r) for r in rows])])
    assert GEMINI_KEY not in said and "key=***" in said


# -- Ollama: no memory for the model on this host now -----------------------------------------------------------------

#: Ollama's 500 when its runner died of ggml's allocator ("Error: llama runner process has terminated: CUDA error: out
#: of memory", ollama#9782; ggml-cuda's words in ollama#3237, #2752, #6382), and its scheduler's refusal of a model
#: larger than the free memory (continue#11478, home-assistant#139085) — on /api/chat, and through its /v1 in OpenAI's
#: error object (middleware/openai.go: type api_error)
CUDA_OOM = "llama runner process has terminated: CUDA error: out of memory"
SYSTEM_MEMORY = "model requires more system memory (5.3 GiB) than is available (3.5 GiB)"


@pytest.mark.parametrize(("kind", "said"), [("ollama", CUDA_OOM), ("openai", CUDA_OOM), ("ollama", SYSTEM_MEMORY),
                                            ("openai", SYSTEM_MEMORY)],
                         ids=["cuda_native", "cuda_v1", "system_native", "system_v1"])
async def test_a_host_with_no_memory_for_the_model_moves_on_and_rests_it(kind: str, said: str,
                                                                         servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """The model cannot load on this host now: other models hold the memory (Ollama keeps each for its keep_alive,
    5 minutes), or a long context asked more. "CUDA error: out of memory" was a server_error — asked again at once,
    refused again, the breaker's seconds —; "requires more system memory" was model_missing — the detail and the report
    ("cannot be used: fix that") sent people to pull a model they had. Now overloaded, in the closed vocabulary's
    words for a server with no room now: the next model at once, this one asked once and rested for Ollama's default
    keep_alive (past the breaker's 5 s here), the server's words kept."""
    body = {"error": said} if kind == "ollama" else {"error": {"message": said, "type": "api_error", "param": None,
                                                               "code": None}}
    routed, cooling = await route_cooling(kind, servers, tmp_path, Fault.raw(500, json.dumps(body), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)]
    detail = routed.record.attempts[0].detail or ""
    assert said in detail and "no memory for the model now" in detail
    assert cooling > 60
    assert len([r for r in servers[kind].requests if r.method == "POST"]) == 1


async def test_out_of_memory_said_inside_ollamas_stream_moves_on_too(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """The same words as an error line after the 200 (Ollama's stream writes ``{"error": …}`` when the runner fails
    under it) were a stream_error, asked again of the host that had just run out of memory."""
    fault = Fault.raw(200, json.dumps({"error": CUDA_OOM}) + "\n", headers={"content-type": "application/x-ndjson"})
    routed, cooling = await route_cooling("ollama", servers, tmp_path, fault, fault)
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)] and cooling > 60


# -- at most one tool call, asked of an OpenAI-compatible server ------------------------------------------------------

WEATHER = ToolDefinition("get_weather", "Weather in a city", {"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]})
ONE_CALL = ChatRequest(messages=[Message("user", "Weather in Paris?")], tools=[WEATHER], single_tool_call=True)
ANY_CALLS = ChatRequest(messages=[Message("user", "Weather in Paris?")], tools=[WEATHER])


def _posted(server: Any) -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.method == "POST"]


async def test_a_request_for_one_tool_call_is_passed_on_as_parallel_tool_calls_false(servers: dict[str, Any],  # noqa
                                                                                    tmp_path: Path) -> None:
    """A client's ``parallel_tool_calls: false`` reached Anthropic as ``disable_parallel_tool_use`` but an
    OpenAI-compatible server not at all: the model wrote several calls, their tokens spent, and the gateway dropped
    all but the first. OpenAI's API reference documents the field; vLLM's ChatCompletionRequest and llama-server take
    it, Groq and OpenRouter list it among their parameters, Ollama's /v1 ignores what it does not know. Sent only when
    asked and with tools (OpenAI refuses it without: "'parallel_tool_calls' is only allowed when 'tools' are
    specified", Upsonic#323)."""
    await _routed("openai", servers, tmp_path, ONE_CALL, ANY_CALLS, PLAIN)
    one, any_calls, plain = _posted(servers["openai"])
    assert one["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in any_calls and "parallel_tool_calls" not in plain


#: OpenAI's o-series (fast-agent#279, semantic-kernel#10365, tensorzero#2805) and OpenRouter's 404 for a parameter no
#: upstream of the model takes (its provider-routing refusal, as relayed in zed#36094 for tool_choice)
O_SERIES = {"error": {"message": "Unsupported parameter: 'parallel_tool_calls' is not supported with this model.",
                      "type": "invalid_request_error", "param": "parallel_tool_calls", "code": "unsupported_parameter"}}
OPENROUTER = {"error": {"message": "No endpoints found that can handle the requested parameters. To learn more about "
                                   "provider routing, visit: https://openrouter.ai/docs/provider-routing", "code": 404}}


@pytest.mark.parametrize(("status", "body"), [(400, O_SERIES), (404, OPENROUTER)], ids=["o_series", "openrouter"])
async def test_a_server_that_refuses_parallel_tool_calls_is_asked_again_without_it(
        status: int, body: dict[str, Any], servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """The refusal is of the courtesy, not of the request: asked again at once without the field (the gateway keeps
    the first call whatever comes), and not sent to that model again."""
    servers["openai"].push(Fault.raw(status, json.dumps(body), headers=JSON))
    first, second = await _routed("openai", servers, tmp_path, ONE_CALL, ONE_CALL)
    assert outcomes(first) == [("primary", "ok", None)] and outcomes(second) == [("primary", "ok", None)]
    assert [("parallel_tool_calls" in b) for b in _posted(servers["openai"])] == [True, False, False]


# -- Azure: a deployment of a model that cannot chat ------------------------------------------------------------------

async def _refused_by_azure(azure: AzureOpenAIServer, tmp_path: Path, error: dict[str, Any]) -> Any:
    """The one attempt of a request Azure's deployment refused with a 400 carrying ``error``."""
    azure.reset()
    azure.push(Fault.raw(400, json.dumps({"error": error}), headers=JSON))
    endpoint = f"{azure.url}/openai/deployments/gpt-4o-prod?api-version=2024-10-21"
    with pytest.raises(ChainExhausted) as exhausted:
        await _ask({"provider": "openai", "model": "gpt-4o-prod", "endpoint": endpoint,
                    "api_key_env": "AZURE_OPENAI_API_KEY"}, tmp_path, PLAIN)
    [attempt] = exhausted.value.record.attempts
    return attempt


async def test_an_azure_deployment_of_an_embedding_model_is_the_configs_mistake(azure: AzureOpenAIServer,
                                                                                tmp_path: Path) -> None:
    """Azure's 400 for a chat asked of an embedding deployment, ``{"error": {"code": "OperationNotSupported",
    "message": "The chatCompletion operation does not work with the specified model, text-embedding-3-large. …"}}``
    (graphrag#1557, AI-Red-Teaming-Playground-Labs#18, langchain#6363: each had named the embedding deployment). As a
    bad_request the model was asked, and refused, on every request, and the client told its request was wrong. Now
    the config's mistake, as Ollama's embedding model named in a chain is: model_missing, with what to do."""
    said = ("The chatCompletion operation does not work with the specified model, text-embedding-3-large. Please "
            "choose different model and try again. You can learn more about which models can be used with each "
            "operation here: https://go.microsoft.com/fwlink/?linkid=2197993.")
    attempt = await _refused_by_azure(azure, tmp_path, {"code": "OperationNotSupported", "message": said})
    assert (attempt.outcome, attempt.reason) == ("fallback", "model_missing")
    assert "name a chat deployment" in attempt.detail


@pytest.mark.parametrize("said", [
    # o3-mini under an older api-version (langchain4j#2636, genaiscript#1121, chatwise-releases#258), verbatim
    "Model {modelName} is enabled only for api versions 2024-12-01-preview and later",
    "API version not supported",  # mindshub#11563
])
async def test_an_api_version_azure_refuses_for_the_model_is_the_endpoints_mistake(said: str, azure: AzureOpenAIServer,
                                                                                  tmp_path: Path) -> None:
    """Azure's 400 ``BadRequest`` for an ``api-version`` its deployment's model is not served under holds for every
    request until the endpoint changes: as a bad_request the model was asked and refused each time, never cooled, and
    a chain ending on it told the client its own request was wrong. Now the endpoint's mistake, as a wrong path is,
    the detail saying where the version is written."""
    attempt = await _refused_by_azure(azure, tmp_path, {"code": "BadRequest", "message": said})
    assert (attempt.outcome, attempt.reason) == ("fallback", "model_missing")
    assert said in attempt.detail and "?api-version=" in attempt.detail


# -- Ollama behind a tunnel: a Host it does not know ------------------------------------------------------------------

async def test_ollama_refusing_a_tunnels_host_says_what_to_forward(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """Ollama listening on loopback answers a request whose ``Host`` it does not know — a tunnel's name, as ngrok and
    Cloudflare Tunnel forward it — with a bare 403 (server/routes.go, allowedHostsMiddleware: ``c.AbortWithStatus(
    http.StatusForbidden)``; ollama#3215 "Access Denied Using LocalTunnel or Ngrok", JHubi1/ollama-app#40; Ollama's FAQ
    gives ngrok ``--host-header="localhost:11434"``). "auth_error: HTTP 403" sent people looking for a key Ollama
    never asks for; the detail now says what to forward."""
    routed, _ = await route_cooling("ollama", servers, tmp_path,
                                    Fault.raw(403, "", headers={"content-type": "text/plain"}))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)]
    assert "--host-header=localhost:11434" in (routed.record.attempts[0].detail or "")
