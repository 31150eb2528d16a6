"""The eleventh fault hunt (faults24): shapes real servers and relays send that modelyard's fakes never did, each
rebuilt from the report where its users met it (cited per test and in ``tests/fakes/relays.py``), replayed through
the router.

- Gemini's error object written bare mid-stream where its ``{`` does not open a line — glued to the chunk before it,
  or to a chunk cut short, compact or pretty-printed — or in Gemini's array form (``[{`` … ``]``): the server's 503
  (overloaded) or 429 (rate limited), not malformed_response;
- a tool call in OpenAI's legacy shape (``delta.function_call``, ``finish_reason: "function_call"``), streamed, glued
  ``{…}{…}`` or whole: the call, not an unusable answer or malformed_response;
- an omni model's audio delta glued to its last text chunk: the text read, the audio read past as in a chunk alone;
- a stream whose body ends cleanly inside a line, in all three wire formats: a dropped connection, or the answer kept
  when it was whole (it was malformed_response);
- an Anthropic stream ended by ``data: [DONE]`` in place of ``message_stop`` (GitHub Copilot's proxy), and a ``ping``
  whose data is ``""``: the answer, not malformed_response.

Each failed on the code before this hunt, but the two guards at the end (named so): the official ``openai`` and
``anthropic`` SDKs read the legacy-call and relayed-Anthropic fakes as the servers' own shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic as anthropic_sdk
import openai as openai_sdk
import pytest
from tests.fakes.relays import (
    GEMINI_EXHAUSTED,
    anthropic_relayed,
    cut_mid_line,
    error_after_chunk,
    glued_audio_chunks,
    legacy_call_stream,
)
from tests.integration.test_fault_shapes import KEY, _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes_round3 import PARIS, outcomes, route

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message, TextPrompt

# -- an error object written bare, its "{" not at the start of a line -------------------------------------------------


@pytest.mark.parametrize("placement", ["glued", "glued_compact", "cut", "cut_compact", "array"])
async def test_an_error_written_bare_after_a_chunk_is_the_servers_503(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path, placement: str) -> None:
    """Gemini aborts a stream by writing its error object into the 200 body outside SSE's framing, pretty-printed
    (OmniRoute#4177 quotes its 503; bifrost#5262: "Gemini (and Vertex AI) can abort a streaming response mid-flight by
    injecting a pretty-printed JSON error payload directly into the HTTP 200 stream body"). Read since the tenth hunt
    only when its ``{`` opened a line. Where the transport glued it to the chunk before (openai-python#663's glue of
    two writes), to a chunk cut short (zai-org/GLM-5#66's cut-off event glued to the next), or where it came in
    Gemini's array form (``[{``: bifrost#5262 reads a bare line opening with ``{`` or ``[``), its lines were fields no
    stream has, or the data was no JSON: malformed_response — never asked again, the model counted broken — where the
    server said it was overloaded. Now the error ends the data: overloaded, asked again, then the next model."""
    routed = await route("openai", servers, tmp_path, error_after_chunk(placement), error_after_chunk(placement))
    assert outcomes(routed) == [("primary", "retry", "overloaded"), ("primary", "fallback", "overloaded"),
                                ("backup", "ok", None)]
    assert "high demand" in (routed.record.attempts[0].detail or "")


async def test_geminis_429_glued_line_by_line_after_a_chunk_is_a_rate_limit(servers: dict[str, Any],  # noqa: F811
                                                                           tmp_path: Path) -> None:
    """python-genai#1162: Gemini's 429 arrives "in a fragmented, line-by-line format" (``{`` / ``  "error": {`` /
    ``    "code": 429,`` …, "Resource exhausted. Please try again later."). Glued to the chunk before it, it was
    malformed_response — the next model at once, the primary counted broken. It is the server's rate limit, which
    said no wait: asked again after the backoff, as any rate limit."""
    routed = await route("openai", servers, tmp_path, error_after_chunk("glued", GEMINI_EXHAUSTED))
    assert outcomes(routed) == [("primary", "retry", "rate_limited"), ("primary", "ok", None)]
    assert "Resource exhausted" in (routed.record.attempts[0].detail or "")


# -- a tool call in OpenAI's legacy shape -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["streamed", "glued", "whole"])
async def test_a_tool_call_in_the_legacy_function_call_shape_is_the_call(servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path, shape: str) -> None:
    """functionary's vLLM server answers ``tools`` with ``message.function_call`` and ``"tool_calls": null``,
    ``finish_reason: "function_call"`` (MeetKai/functionary#243); "some OpenAI-compatible providers, gateways, or
    proxies can still emit the legacy Chat Completions function-call shape", streamed as ``delta.function_call``
    chunks (QwenLM/qwen-code#6240). The call was dropped: the answer refused as unusable ("function_call" and no
    call), the next model asked for a call the primary had made — or, its chunks glued ``{…}{…}`` in one event
    (openai-python#663), malformed_response. Now it is the call, as a ``tool_calls`` piece is."""
    routed = await route("openai", servers, tmp_path,
                         legacy_call_stream("get_weather", ['{"ci', 'ty": "Par', 'is"}'], glued=shape == "glued",
                                            whole=shape == "whole"))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [("get_weather", PARIS)]


# -- an omni model's audio delta glued to its text ---------------------------------------------------------------------


async def test_an_audio_delta_glued_to_the_last_text_chunk_keeps_the_text(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """vllm-omni streams an omni model's text deltas, then one audio delta (vllm-omni#7627), ``delta.audio`` holding
    OpenAI's ``ChatCompletionAudio``. A chunk of audio alone is read past (modelyard passes text on); glued to the last
    text chunk in one event (openai-python#663's glue) the event was malformed_response and the answer lost. Now the
    text of both is read and the audio read past, as when they come apart."""
    routed = await route("openai", servers, tmp_path, glued_audio_chunks(["Sun", "ny in ", "Paris."]))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny in Paris."


# -- a body that ends cleanly inside a line --------------------------------------------------------------------------

DROPPED = [("primary", "retry", "connection_dropped"), ("primary", "fallback", "connection_dropped"),
           ("backup", "ok", None)]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "ollama"])
async def test_a_stream_that_ends_cleanly_inside_a_line_is_a_dropped_connection(servers: dict[str, Any],  # noqa: F811
                                                                               tmp_path: Path, kind: str) -> None:
    """A relay that ends its own 200 cleanly when its upstream is cut ("HTTP 200, the stream just stops",
    litellm#32159), or a body delimited by the close, leaves the answer's last line cut short: clients meet "a final
    truncated provider frame such as ``data: {"id":"x",``" at EOF (can1357/oh-my-pi#3362; baiye-banned/
    Agent_about_answer#134). The same cut with a reset was a dropped connection, asked again; ended cleanly, the
    half line was read as a broken event — malformed_response, never asked again, the model counted broken — in
    all three wire formats. SSE discards an event the body ends inside ("Once the end of the file is reached, any
    pending data must be discarded", WHATWG HTML, server-sent events): the stream ended before its answer did, a
    dropped connection."""
    routed = await route(kind, servers, tmp_path, cut_mid_line(kind), cut_mid_line(kind))
    assert outcomes(routed) == DROPPED
    assert "cut off in the middle of a line" in (routed.record.attempts[0].detail or "")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_whole_answer_whose_last_line_was_cut_is_kept(servers: dict[str, Any],  # noqa: F811
                                                              tmp_path: Path, kind: str) -> None:
    """The same clean cut after the answer's finish reason, inside the line after it (OpenAI's usage chunk,
    Anthropic's ``message_stop``): the answer was whole, and a reset at that byte kept it; ended cleanly, the half
    line failed it as malformed_response and the next model was asked for an answer the primary had given. Kept."""
    routed = await route(kind, servers, tmp_path, cut_mid_line(kind, whole=True))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny"


@pytest.mark.parametrize("whole", [False, True], ids=["cut_mid_answer", "cut_after_the_finish"])
async def test_a_text_completion_that_ends_cleanly_inside_a_line_is_read_as_a_chat_stream_is(
        servers: dict[str, Any], tmp_path: Path, whole: bool) -> None:  # noqa: F811
    """The same clean cut on OpenAI's legacy ``/v1/completions`` stream (fill-in-the-middle and raw prompts): the half
    line was malformed_response. Mid-answer it is a dropped connection; after the finish reason, inside the usage
    chunk, the text is the answer — as on the chat stream above."""
    prompt = ChatRequest(messages=[Message("user", "Once")], prompt=TextPrompt("Once"))
    for _ in range(2):
        servers["openai"].push(cut_mid_line("completions", whole=whole))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    try:
        routed = await router.complete("agent", prompt)
    finally:
        await router.aclose()
        writer.close()
    assert outcomes(routed) == ([("primary", "ok", None)] if whole else DROPPED)
    assert routed.response.text == ("upon a time" if whole else "backup answer")
    assert connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1


# -- an Anthropic stream as relays end it or keep it alive -------------------------------------------------------------


async def test_an_anthropic_stream_ended_by_done_is_the_answer(servers: dict[str, Any],  # noqa: F811
                                                               tmp_path: Path) -> None:
    """GitHub Copilot's Anthropic-compatible proxy "can terminate a stream with ``data: [DONE]`` instead of an
    Anthropic ``message_stop`` event" (huggingface/tau#692; earendil-works/pi#3708 quotes proxies that add it after
    ``message_stop``, LiteLLM among them). ``[DONE]`` was read as an event's broken JSON: malformed_response, the
    whole answer — its stop reason said — lost and asked of the next model. It ends the stream, as message_stop."""
    routed = await route("anthropic", servers, tmp_path, anthropic_relayed(done_for_stop=True))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny." and routed.response.stop_reason == "end_turn"


@pytest.mark.parametrize("ping_data", ['""', "null"])
async def test_a_ping_whose_data_is_no_object_is_read_past(servers: dict[str, Any],  # noqa: F811
                                                           tmp_path: Path, ping_data: str) -> None:
    """copilot-api's ``/v1/messages`` stream sent its ping events with ``data: ""`` (caozhiyuan/copilot-api#88: "When
    the server sends a ping event with data: \"\" …"); ``null`` says as little. A ping may come anywhere and says
    nothing (Anthropic's streaming docs), but its data, no object, failed the answer as malformed_response. Read
    past."""
    routed = await route("anthropic", servers, tmp_path, anthropic_relayed(ping_data=ping_data))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."


# -- the official SDKs read the fakes above as the servers' own (guards: they held already) ----------------------------


def test_guard_the_openai_sdk_reads_the_legacy_call_fake_as_a_function_call(servers: dict[str, Any]) -> None:  # noqa: F811
    """Guard (held already): the official ``openai`` SDK types the legacy stream of
    :func:`tests.fakes.relays.legacy_call_stream` as its own ``ChoiceDeltaFunctionCall`` pieces — the fake is the
    documented shape, not one made up for the reader above."""
    servers["openai"].push(legacy_call_stream("get_weather", ['{"ci', 'ty": "Par', 'is"}']))
    with openai_sdk.OpenAI(api_key="sk-test", base_url=f"{servers['openai'].url}/v1", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="local", messages=[{"role": "user", "content": "?"}],
                                                     stream=True))
    calls = [c.choices[0].delta.function_call for c in chunks if c.choices and c.choices[0].delta.function_call]
    assert calls[0].name == "get_weather" and "".join(c.arguments or "" for c in calls) == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "function_call"


def test_guard_the_anthropic_sdk_reads_the_relayed_stream_to_its_end(servers: dict[str, Any]) -> None:  # noqa: F811
    """Guard (held already): the official ``anthropic`` SDK reads :func:`tests.fakes.relays.anthropic_relayed` — a
    ``ping`` with ``data: ""``, ``[DONE]`` for ``message_stop`` — as the answer: its text and stop reason, no error."""
    servers["anthropic"].push(anthropic_relayed(done_for_stop=True, ping_data='""'))
    with anthropic_sdk.Anthropic(api_key=KEY, base_url=servers["anthropic"].url, max_retries=0) as client:
        events = list(client.messages.create(model="claude-haiku-4-5", max_tokens=64, stream=True,
                                             messages=[{"role": "user", "content": "?"}]))
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "Sunny." and [e.delta.stop_reason for e in events if e.type == "message_delta"] == ["end_turn"]
