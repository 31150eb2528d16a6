"""``POST /v1/messages`` with the official ``anthropic`` SDK: Anthropic's clients (its SDKs, Claude Code
through ``ANTHROPIC_BASE_URL``) on modelyard's chains, slots and log, unchanged.

The SDK is the judge of the wire format: it parses the message object, the documented stream events
(its ``messages.stream`` helper accumulates them into the final message) and the error shape.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.fakes import Fault
from tests.gateway.harness import GatewayServer, fake_config

WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def claude(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused-on-loopback", max_retries=0, timeout=15)


def test_a_message_is_answered_through_the_agents_chain(claude, fakes):
    raw = claude.messages.with_raw_response.create(model="coder", max_tokens=64, system="Be brief.",
                                                   messages=[{"role": "user", "content": "hi"}])
    message = raw.parse()
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Hello from fast."
    assert message.model == "fast" and message.stop_reason == "end_turn" and message.role == "assistant"
    assert message.id == "msg_" + raw.headers["x-modelyard-request-id"]
    assert message.usage.output_tokens > 0 and raw.headers["x-modelyard-route"] == "fast ok"
    sent = fakes[0].last_request.json["messages"]
    assert sent[0]["role"] == "system" and sent[0]["content"] == "Be brief." and sent[-1]["content"] == "hi"
    assert fakes[0].last_request.json["max_tokens"] == 64


def test_fallback_is_in_the_route_header(claude, fakes):
    fakes[0].push(Fault.status(500))
    raw = claude.messages.with_raw_response.create(model="coder", max_tokens=64,
                                                   messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().content[0].text == "Hello from backup." and raw.parse().model == "backup"
    assert raw.headers["x-modelyard-route"] == "fast fallback server_error, backup ok"


def test_the_sdks_stream_helper_gets_text_and_the_final_message(claude):
    with claude.messages.stream(model="coder", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Hello from fast." == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.model == "fast"


def test_stream_events_come_in_the_documented_order(claude):
    events = list(claude.messages.create(model="coder", max_tokens=64, stream=True,
                                         messages=[{"role": "user", "content": "hi"}]))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


def test_tool_use_round_trip(claude, fakes):
    first = claude.messages.create(model="coder", max_tokens=128, tools=[WEATHER],
                                   messages=[{"role": "user", "content": "weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"} and call.id.startswith("toolu_")
    assert fakes[0].last_request.json["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    second = claude.messages.create(model="coder", max_tokens=128, tools=[WEATHER], messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                          {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": [{"type": "text", "text": "9C and rain"}]},
                                     {"type": "text", "text": "and tomorrow?"}]}])
    assert second.content  # the fake calls the tool again while it is offered: what matters is what it was sent
    sent = fakes[0].last_request.json["messages"]
    assert sent[-3]["tool_calls"][0]["id"] == call.id and sent[-3]["content"] == "Let me look."
    assert sent[-2] == {"role": "tool", "tool_call_id": call.id, "content": "9C and rain"}
    assert sent[-1] == {"role": "user", "content": "and tomorrow?"}


def test_a_streamed_tool_call_is_accumulated_by_the_sdk(claude):
    with claude.messages.stream(model="coder", max_tokens=128, tools=[WEATHER],
                                messages=[{"role": "user", "content": "weather?"}]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.input) for b in final.content if b.type == "tool_use"] == [("tool_use", {"city": "Paris"})]


def test_an_answer_cut_at_max_tokens_says_so(claude):
    raw = claude.messages.with_raw_response.create(model="model:cloud", max_tokens=2,
                                                   messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().stop_reason == "max_tokens" and raw.headers["x-modelyard-route"].endswith("(truncated: length)")


def test_a_stream_broken_after_commit_ends_with_an_error_event(claude, fakes):
    fakes[0].push(Fault.error_midstream(after_chunks=2))
    with pytest.raises(anthropic.APIStatusError) as err, claude.messages.stream(
            model="solo", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        "".join(s.text_stream)
    assert "incomplete" in str(err.value)


def test_no_model_could_answer_is_an_anthropic_shaped_error_with_the_same_status(claude, fakes):
    fakes[0].push(Fault.status(401))
    with pytest.raises(anthropic.APIStatusError) as err:
        claude.messages.create(model="solo", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 424 and err.value.response.headers["x-should-retry"] == "false"
    body = err.value.body
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert body["error"]["code"] == "no_model_available" and body["error"]["attempts"][0]["model"] == "fast"


def test_unknown_model_is_not_found(claude):
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.create(model="claude-nonexistent-model", max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["error"]["type"] == "not_found_error" and "coder" in err.value.body["error"]["message"]


@pytest.mark.parametrize(("payload", "param"), [
    ({"model": "coder", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "coder", "max_tokens": 8, "messages": []}, "messages"),
    ({"model": "coder", "max_tokens": 8, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"model": "coder", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]}]},
     "messages[0].content[0].type"),
    ({"model": "coder", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
    ({"model": "coder", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "content": "x"}]}]}, "messages[0].content[0].tool_use_id"),
])
def test_bad_body_is_400_naming_the_field_in_anthropics_shape(gateway, payload, param):
    r = httpx.post(gateway.url + "/v1/messages", json=payload)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert r.json()["type"] == "error" and error["type"] == "invalid_request_error"
    assert error["param"] == param and error["message"].startswith(param)


def test_thinking_blocks_from_an_earlier_turn_are_not_passed_on(claude, fakes):
    claude.messages.create(model="coder", max_tokens=64, messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "secret plan", "signature": "sig"},
                                          {"type": "text", "text": "hello"}]},
        {"role": "user", "content": "again"}])
    sent = fakes[0].last_request.json["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == ["hi", "hello", "again"]


def test_a_json_schema_output_format_reaches_the_model(claude, fakes):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    claude.messages.create(model="coder", max_tokens=64, messages=[{"role": "user", "content": "a city"}],
                           output_config={"format": {"type": "json_schema", "schema": schema}})
    sent = fakes[0].last_request.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema


def test_count_tokens_gives_an_estimate(claude):
    small = claude.messages.count_tokens(model="coder", messages=[{"role": "user", "content": "hi"}])
    large = claude.messages.count_tokens(model="coder", messages=[{"role": "user", "content": "word " * 400}])
    assert 0 < small.input_tokens < large.input_tokens


def test_the_key_is_taken_from_x_api_key_or_a_bearer_token(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", "sk-ant-test-0123456789abcdef")
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), api_keys=("sk-gw-1",)) as gw:
        hi = [{"role": "user", "content": "hi"}]
        ok = anthropic.Anthropic(base_url=gw.url, api_key="sk-gw-1", max_retries=0)  # x-api-key
        assert ok.messages.create(model="coder", max_tokens=8, messages=hi).content[0].text
        bearer = anthropic.Anthropic(base_url=gw.url, auth_token="sk-gw-1", max_retries=0)  # Claude Code's AUTH_TOKEN
        assert bearer.messages.create(model="coder", max_tokens=8, messages=hi).content[0].text
        with pytest.raises(anthropic.AuthenticationError) as err:
            anthropic.Anthropic(base_url=gw.url, api_key="wrong", max_retries=0).messages.create(
                model="coder", max_tokens=8, messages=hi)
    assert err.value.body["error"]["type"] == "authentication_error"


def test_count_tokens_ignores_the_answer_budget(gateway):
    """Found by the fuzzer: a count with max_tokens 0 was a 500 (the count's body re-validated as a message's)."""
    r = httpx.post(gateway.url + "/v1/messages/count_tokens",
                   json={"model": "coder", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["input_tokens"] > 0


def test_an_endpoint_not_served_is_a_404_in_anthropics_shape(claude):
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.batches.list()
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "not_found_error"
    assert err.value.body["error"]["message"].startswith("no endpoint GET /v1/messages/batches")


def test_the_sdk_lists_models_with_its_key_in_anthropics_shape(tmp_path, fakes, monkeypatch):
    """Before: ``/v1/models`` took only a bearer token (a 401 for the SDK's x-api-key) and had no ``type``,
    ``display_name`` or ``created_at`` (Anthropic's required fields)."""
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", "sk-ant-test-0123456789abcdef")
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), api_keys=("sk-gw-1",)) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key="sk-gw-1", max_retries=0)
        page = client.models.list()
        coder = client.models.retrieve("coder")
    assert page.has_more is False and page.first_id == page.data[0].id
    assert {"coder", "fast"} <= {m.id for m in page.data} and all(m.type == "model" for m in page.data)
    assert coder.display_name == "coder" and coder.created_at.year >= 2026


def test_stop_sequences_cut_the_answer_whole_and_streamed(claude):
    """Before: a 400 (no model is sent them); now the text ends before the first one, as Anthropic's would."""
    hi = [{"role": "user", "content": "hi"}]
    whole = claude.messages.create(model="coder", max_tokens=64, messages=hi, stop_sequences=["m f", "zzz"])
    assert whole.content[0].text == "Hello fro" and whole.stop_reason == "stop_sequence"
    assert whole.stop_sequence == "m f"
    with claude.messages.stream(model="coder", max_tokens=64, messages=hi, stop_sequences=["m f"]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Hello fro" == final.content[0].text
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "m f"
    untouched = claude.messages.create(model="coder", max_tokens=64, messages=hi, stop_sequences=["zzz"])
    assert untouched.content[0].text == "Hello from fast." and untouched.stop_reason == "end_turn"
