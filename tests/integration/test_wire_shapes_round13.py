"""A thirteenth outside-in pass (prov13): what the twelfth left open, then shapes relays and hosted APIs send that the
fakes never did. Each is the server's own, rebuilt from the report where its users met it (cited per test and in
``tests/fakes/relays.py``), replayed through the router.

- a relay's error chunk that carries llama-server's 503 "Loading model" in its words: the model rests, the chain
  moves on, as for the 503 itself;
- GLM's stale, cut-off event glued to the next on one line: the whole event read, the fragment dropped;
- a whole answer in one chunk, its finish reason on it, then nothing on a connection held open: kept, not lost to
  the idle bound;
- an Azure resource asked what it serves: its deployments, not Azure's catalog;
- a request refused inside the stream with its 4xx status: the request's, not the model's;
- token counts only in llama.cpp's ``timings``: read, not estimated;
- two chunks back to back in one event: both read.

Each failed on the code before this pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.azure import AzureOpenAIServer
from tests.fakes.relays import (
    completion_no_end,
    glued_chunks,
    in_band_error,
    one_chunk_no_end,
    relayed_loading,
    spliced_event,
    timings_only,
)
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling
from tests.integration.test_wire_shapes_round9 import _routed, _rows

from modelyard.errors import ProviderError
from modelyard.ops.starter import discover, draft
from modelyard.providers.openai import OpenAIProvider
from modelyard.types import ChatRequest, Message, TextPrompt

PLAIN = ChatRequest(messages=[Message("user", "Say hello")])
COMPLETION = ChatRequest(messages=[Message("user", "Once")], prompt=TextPrompt("Once"))


def _posts(server: Any) -> int:
    return len([r for r in server.requests if r.method == "POST"])


# -- a relay passing on llama-server's "Loading model" inside its own stream ------------------------------------------

async def test_a_relayed_loading_model_in_a_stream_rests_the_model_and_moves_on(servers: dict[str, Any],  # noqa: F811
                                                                               tmp_path: Path) -> None:
    """Second-Me's relay (mindverse/Second-Me#20) caught llama-server's 503 ``{"error": {"code": 503, "message":
    "Loading model", "type": "unavailable_error"}}`` through the openai client and sent it on inside its own 200
    stream: ``{"error": {"code": 1, "message": "Request processing failed: Error code: 503 - {…'Loading model'…}"}}``
    then ``[DONE]``. It was a stream_error — asked again at once of a model still loading, refused again, counted
    against it. The status in its words (openai-python's "Error code: 503") is read as the 503 would be: overloaded,
    rested as a loading llama-server is (LOADING_WAIT, 5 s), the next model asked at once."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, relayed_loading(), relayed_loading())
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)]
    assert "Loading model" in (routed.record.attempts[0].detail or "")
    assert 4 < cooling <= 5
    assert _posts(servers["openai"]) == 1


# -- GLM: a stale, cut-off event glued to the next --------------------------------------------------------------------

@pytest.mark.parametrize("own_line", [False, True], ids=["one_line", "line_before"])
async def test_another_answers_cut_off_event_glued_to_the_next_loses_only_the_fragment(
        own_line: bool, servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Z.ai's GLM-4.7/5.1 streams (zai-org/GLM-5#66; opencode#7692, #8282, #23442, #25858; kilocode#9432) now and then
    send a cut-off event — another answer's, its own id, its ``created`` 71 s older — and the next event on the same
    line (``data: {…"object":"chat.cdata: {…}``, no blank line between) or on the line after. SSE reads either as one
    event whose data is not JSON: the whole answer was malformed_response, asked again (kilocode's users saw the
    retry loop). The fragment never was this answer's: the event after it is read, the fragment dropped. A cut event
    of this answer's own (its id) lost content: still malformed, not passed on as whole."""
    servers["openai"].push(spliced_event("Sunny.", own_line=own_line))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."
    assert _posts(servers["openai"]) == 1 and _rows(tmp_path) == 1
    servers["openai"].push(spliced_event("Sunny.", own_line=own_line, same_answer=True))
    [own] = await _routed("openai", servers, tmp_path / "own", PLAIN)
    assert outcomes(own)[0] == ("primary", "fallback", "malformed_response")


# -- a whole answer in one chunk, then nothing on an open connection --------------------------------------------------

@pytest.mark.parametrize("keepalive", [0, 40], ids=["silent", "keepalive_comments"])
async def test_a_one_chunk_answer_whose_end_never_comes_is_kept(keepalive: int, servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """The answer's one chunk carries its text and ``finish_reason: "stop"``; no usage chunk, no ``[DONE]``, the
    connection held open, silent or with keep-alive comments (bifrost#6784). A finish reason on a chunk with text is
    not taken for the end by itself (LiteLLM relaying Gemini puts one on every chunk, litellm#2195, #4339), so the
    answer was lost to the idle bound: idle_timeout, the next model asked. openai-python and LiteLLM read on to
    ``[DONE]`` or the close (they hang to their read timeout); Bifrost ends such a stream with the finish reason it
    holds when the upstream goes silent (bifrost#7115). So here: the end is waited for just under the idle bound
    (data moves it on, comments do not), then the answer is whole."""
    servers["openai"].push(one_chunk_no_end("Sunny.", keepalive))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)  # idle bound 2 s
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."
    assert 1.0 < routed.record.total_ms / 1000 < 2.0  # waited, within the idle bound


# -- Azure OpenAI / AI Foundry: what a resource serves ----------------------------------------------------------------

AZURE_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#: a resource's deployments, each named by its owner, and the model each serves
DEPLOYED = {"gpt-4o-prod": "gpt-4o", "search-index": "text-embedding-3-large", "posters": "dall-e-3",
            "gpt-5-next": "gpt-5"}


@pytest.fixture
def azure_resource(monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureOpenAIServer]:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    server = AzureOpenAIServer(list(DEPLOYED), api_key=AZURE_KEY, models=DEPLOYED, pending=("gpt-5-next",)).start()
    yield server
    server.stop()


async def test_discovery_on_an_azure_resource_lists_its_deployments(azure_resource: AzureOpenAIServer) -> None:
    """``init --detect --endpoint`` given an Azure deployment's Target URI asked ``/openai/deployments/NAME/models``
    without the key: a 404 (a 401 on the v1 API's ``/models``), "nothing found". And that ``/models`` is Azure's whole
    catalog where it answers — 331 base models, none callable until deployed, the deployments' own names nowhere in it
    (model-hotel#506; learn.microsoft.com rest/api/azureopenai/models/list). Peers list the deployments instead
    (langflow#14509, model-hotel#506, genaiscript#1123): ``GET /openai/deployments?api-version=2023-03-15-preview``
    with the key as ``api-key`` (openai-python#447 quotes its answer). Each deployment is found by its name at the
    resource's v1 API, from the cloud; the embedding model's said to be one, the image model's and the one still
    being created left out; the key sent only as ``api-key``."""
    endpoint = f"{azure_resource.url}/openai/deployments/gpt-4o-prod?api-version=2024-10-21"
    found = await discover([endpoint], budget=10)
    azure = {f.model.model_id: f.model for f in found.found if f.backend == "openai"}
    assert sorted(azure) == ["gpt-4o-prod", "search-index"]
    chat, embedding = azure["gpt-4o-prod"], azure["search-index"]
    assert chat.endpoint == f"{azure_resource.url}/openai/v1" and chat.server == "Azure OpenAI"
    assert chat.remote and not chat.embedding_only and embedding.embedding_only
    assert found.asked[endpoint] == "Azure OpenAI: 2 model(s)"
    listing = [r for r in azure_resource.requests if r.path == "/openai/deployments"]
    assert listing and all(r.headers.get("api-key") == AZURE_KEY and "authorization" not in r.headers
                           for r in listing)
    _, notes = draft(found.found, {"models": {}, "agents": {}})
    assert any("left out gpt-4o-prod" in n and "from the cloud" in n for n in notes)


async def test_discovery_without_the_azure_key_says_which_variable(azure_resource: AzureOpenAIServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the key, Azure's 401 was read as "is not a model list" (malformed_response): nothing said a key was
    missing, nor where it is read from."""
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    endpoint = f"{azure_resource.url}/openai/deployments/gpt-4o-prod?api-version=2024-10-21"
    with pytest.raises(ProviderError) as refused:
        await OpenAIProvider.served_models(endpoint)
    assert refused.value.reason == "auth_error" and "set AZURE_OPENAI_API_KEY" in refused.value.message


# -- a refusal sent inside the stream with its status -----------------------------------------------------------------

#: vLLM's ErrorResponse for an image sent to a text-only model, inside its 200 stream (litellm#32237, which quotes it)
NOT_MULTIMODAL = {"error": {"object": "error", "message": "The model is not multimodal. Please remove image inputs.",
                            "type": "BadRequestError", "param": None, "code": 400}}


async def test_a_refusal_inside_the_stream_with_a_4xx_code_is_the_requests(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """vLLM and SGLang refuse some requests after the 200, as an error event carrying the status they would have
    answered (``"code": 400``) then ``[DONE]`` (litellm#32237; litellm#40578: LiteLLM itself dropped them). It was a
    stream_error: asked again of the same model, refused again for the same request, counted against a model that is
    well. Now read as that status would be: bad_request, the next model asked at once, this one not counted."""
    fault = in_band_error(NOT_MULTIMODAL)
    routed, cooling = await route_cooling("openai", servers, tmp_path, fault, fault)
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "not multimodal" in (routed.record.attempts[0].detail or "")
    assert _posts(servers["openai"]) == 1 and cooling == 0


# -- token counts only in llama.cpp's timings -------------------------------------------------------------------------

async def test_counts_only_in_llama_cpps_timings_are_the_answers_counts(servers: dict[str, Any],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """ik_llama.cpp sent no ``usage`` in a stream until its #695 (Aug 2025), and no ``[DONE]`` (its #467): the only
    counts are llama-server's ``timings`` on the finish chunk, ``prompt_n`` beside the cached ``cache_n`` (llama.cpp
    #15827) and ``predicted_n``; tabbyAPI mirrors that shape (its #478). Unread, the prompt was estimated from its
    characters and the answer as one token per streamed piece: 237 tokens in and 35 out were logged as a handful.
    Now the timings' counts are the answer's, where no usage came."""
    servers["openai"].push(timings_only("Sunny."))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert (routed.record.tokens_in, routed.record.tokens_out) == (1 + 236, 35)


@pytest.mark.parametrize("usage", [False, True], ids=["one_chunk", "finish_then_usage"])
async def test_a_text_completion_whose_end_never_comes_is_kept(usage: bool, servers: dict[str, Any],  # noqa: F811
                                                               tmp_path: Path) -> None:
    """The legacy ``/v1/completions`` stream never marked its answer whole: a finish reason and the usage chunk, then
    no ``[DONE]`` on a connection held open (bifrost#6784; Bifrost's fix covers its text-completion loop too,
    bifrost#6948), was lost to the idle bound — idle_timeout, the next model asked. Now read as a chat stream's end:
    after the usage chunk within the grace, after a finish reason on the text once nothing more comes."""
    servers["openai"].push(completion_no_end("upon a time", usage=usage))
    [routed] = await _routed("openai", servers, tmp_path, COMPLETION)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "upon a time"
    assert routed.record.total_ms / 1000 < 2.0  # within the idle bound (the usage chunk: its first grace, then learned)


# -- two chunks back to back in one event -----------------------------------------------------------------------------

async def test_two_chunks_back_to_back_in_one_event_are_both_read(servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """openai-python#663 quotes a stream whose one event held two chunks, ``{…"content": "'s"…}{…"content": "
    language"…}``, no newline between: not one JSON document, so the answer was malformed_response (the client's
    JSONDecodeError there). Each chunk's text is read, in order."""
    servers["openai"].push(glued_chunks("It", ("'s", " language"), "."))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "It's language."
