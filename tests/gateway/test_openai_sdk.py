"""The official ``openai`` SDK against the gateway: plain, streamed, tools, errors, routing headers."""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes import Fault

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def ask(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": text}]


def test_plain_completion_names_the_answering_model(client, fakes):
    raw = client.chat.completions.with_raw_response.create(model="coder", messages=ask())
    done = raw.parse()
    assert done.choices[0].message.content == "Hello from fast."
    assert done.choices[0].finish_reason == "stop"
    assert done.model == "fast"
    assert raw.headers["x-modelyard-model"] == "fast"
    assert raw.headers["x-modelyard-route"] == "fast ok"
    assert done.id == "chatcmpl-" + raw.headers["x-modelyard-request-id"]
    assert done.usage.completion_tokens > 0 and done.usage.total_tokens == \
        done.usage.prompt_tokens + done.usage.completion_tokens
    sent = fakes[0].last_request.json
    assert sent["model"] == "fast-model"
    assert sent["messages"][0]["role"] == "system"  # the agent's prompt was applied by the router


def test_fallback_is_reported_with_its_reason(client, fakes):
    fakes[0].push(Fault.status(500))
    raw = client.chat.completions.with_raw_response.create(model="coder", messages=ask())
    assert raw.parse().choices[0].message.content == "Hello from backup."
    assert raw.parse().model == "backup"
    assert raw.headers["x-modelyard-model"] == "backup"
    assert raw.headers["x-modelyard-route"] == "fast fallback server_error, backup ok"


def test_streaming_with_usage_in_final_chunk(client):
    chunks = list(client.chat.completions.create(model="coder", messages=ask(), stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fast."
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.model for c in chunks} == {"fast"}


def test_streaming_without_usage_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(model="coder", messages=ask(), stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_streaming_headers_name_the_model_after_a_fallback(client, gateway, fakes):
    fakes[0].push(Fault.status(503))
    with client.chat.completions.with_streaming_response.create(model="coder", messages=ask(), stream=True) as r:
        assert r.headers["x-modelyard-model"] == "backup"
        assert r.headers["x-modelyard-route"].startswith("fast fallback overloaded, backup ok")
        text = "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
    assert text == "Hello from backup."


def test_tool_call_round_trip(client, fakes):
    first = client.chat.completions.create(model="coder", messages=ask("weather in Paris?"), tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = fakes[0].last_request.json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    # send the result back: the assistant turn's call and the tool's answer reach the model in OpenAI shape
    messages = [*ask("weather in Paris?"), choice.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = client.chat.completions.create(model="coder", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Hello from fast."
    wire = fakes[0].last_request.json["messages"]
    assert wire[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(wire[-2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert wire[-1] == {"role": "tool", "content": "sunny, 21C", "tool_call_id": call.id}


def test_streamed_tool_call(client):
    stream = client.chat.completions.create(model="model:backup", messages=ask(), tools=[WEATHER], stream=True)
    calls, finish = [], None
    for chunk in stream:
        delta = chunk.choices[0].delta
        calls.extend(delta.tool_calls or [])
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}


def test_models_are_addressable_directly(client, fakes):
    assert client.chat.completions.create(model="backup", messages=ask()).model == "backup"
    assert client.chat.completions.create(model="model:fast", messages=ask()).model == "fast"
    # a direct model call is a pass-through: no agent system prompt is added
    assert [m["role"] for m in fakes[0].last_request.json["messages"]] == ["user"]


def test_models_endpoint_lists_agents_and_models(client):
    listed = {m.id: m for m in client.models.list()}
    assert {"coder", "writer", "solo", "fast", "backup", "cloud"} <= set(listed)
    assert listed["coder"].model_extra["modelyard"] == {"kind": "agent", "chain": ["fast", "backup"]}
    assert client.models.retrieve("backup").id == "backup"


def test_unknown_model_is_404_in_openai_shape(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-agent", messages=ask())
    body = err.value.body
    assert err.value.status_code == 404 and body["code"] == "model_not_found" and body["param"] == "model"
    assert "coder" in body["message"]


def test_a_mistyped_model_is_told_the_nearest_name(client):
    """'wirter' was told every agent and model and left to spot 'writer' among them."""
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="wirter", messages=ask())
    assert "does not exist (did you mean 'writer'?): agents:" in err.value.body["message"]
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("bakup")
    assert err.value.body["message"] == "The model 'bakup' does not exist (did you mean 'backup'?)"


@pytest.mark.parametrize(("payload", "param"), [
    ({"model": "coder"}, "messages"),
    ({"model": "coder", "messages": []}, "messages"),
    ({"model": "coder", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"model": "coder", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "coder", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     "messages[0].content[0].type"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
    ({"model": "coder", "messages": [{"role": "user"}]}, "messages[0].content"),
    ({"model": "coder", "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": None}]},
     "messages[1].content"),
])
def test_bad_body_is_400_naming_the_field(gateway, payload, param):
    import httpx

    r = httpx.post(gateway.url + "/v1/chat/completions", json=payload)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"].startswith(param)


def test_user_message_without_content_is_refused_by_the_sdk_and_never_routed(client, gateway, fakes):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="coder", messages=[{"role": "user"}])
    assert err.value.body["param"] == "messages[0].content"
    assert fakes[0].requests == [] and fakes[1].requests == []


def test_body_that_is_not_json_is_400(gateway):
    import httpx

    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_chain_exhausted_is_503_listing_attempts(client, fakes):
    fakes[0].push(Fault.status(500))
    fakes[1].push(Fault.status(500))
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="coder", messages=ask())
    assert err.value.status_code == 503
    assert err.value.response.headers["retry-after"] == "1" and err.value.response.headers["x-should-retry"] == "true"
    body = err.value.body
    assert body["code"] == "chain_exhausted"
    assert [(a["model"], a["outcome"], a["reason"]) for a in body["attempts"]] == [
        ("fast", "fallback", "server_error"), ("backup", "fallback", "server_error")]
    assert "fast: fallback (server_error" in body["message"]


def test_stream_broken_after_commit_ends_with_error_event(client, fakes):
    fakes[0].push(Fault.error_midstream(after_chunks=2))
    stream = client.chat.completions.create(model="solo", messages=ask(), stream=True)
    got = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got)  # part of the answer arrived before the break
    assert "broke off" in str(err.value.message)


def test_missing_cloud_key_skips_to_fallback(client, gateway, monkeypatch):
    monkeypatch.delenv("GATEWAY_TEST_ANTHROPIC_KEY")
    raw = client.chat.completions.with_raw_response.create(model="writer", messages=ask())
    assert raw.parse().model == "fast"
    assert raw.headers["x-modelyard-route"] == "cloud skipped missing_credentials, fast ok"


def test_cloud_model_through_the_gateway(client):
    done = client.chat.completions.create(model="writer", messages=ask())
    assert done.model == "cloud" and done.choices[0].message.content == "Hello from cloud."


def test_a_json_schema_response_format_reaches_the_model(client, fakes):
    """Before: taken as 'some JSON' (json_object) and the schema dropped: the model was never constrained."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    client.chat.completions.create(model="coder", messages=[{"role": "user", "content": "a city"}], response_format={
        "type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}})
    sent = fakes[0].last_request.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema


def test_stop_cuts_the_answer_whole_and_streamed(client, tmp_path):
    """Before: ignored — the text past the client's stop came back."""
    hi = [{"role": "user", "content": "hi"}]
    whole = client.chat.completions.create(model="coder", messages=hi, stop="m f").choices[0]
    assert whole.message.content == "Hello fro" and whole.finish_reason == "stop"
    chunks = list(client.chat.completions.create(model="coder", messages=hi, stop=["zzz", "m f"], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello fro"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert client.chat.completions.create(model="coder", messages=hi, stop=["zzz"]).choices[0].message.content \
        == "Hello from fast."


USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("path", "payload"), [
    ("/v1/chat/completions", {"messages": USER}),
    ("/v1/responses", {"input": "hi"}),
    ("/v1/completions", {"prompt": "hi"}),
    ("/v1/embeddings", {"input": "hi"}),
    ("/v1/messages", {"max_tokens": 16, "messages": USER}),
    ("/api/chat", {"messages": USER}),
    ("/api/generate", {"prompt": "hi"}),
])
def test_a_request_without_a_model_is_told_what_to_put_there(gateway, path, payload):
    """A client that sent no ``model`` (curl, a UI whose model box was left empty) got 400 "model: Field required"
    and nothing on what goes there; the unknown-model 404 lists the agents. Every API's parser says it the same
    way, from the one place its refusals are shaped (gateway/intake.py)."""
    import httpx

    r = httpx.post(gateway.url + path, json=payload)
    assert r.status_code == 400, r.text
    body = r.json()
    error = body["error"]
    message = error if isinstance(error, str) else error["message"]  # Ollama's {"error": "…"}
    assert message.startswith("model: Field required — put an agent's name there: agents: coder, writer, solo; "
                              "models: fast, backup, cloud"), message
    assert "auto" not in message  # this config has no orchestrator: 'auto' would be a 404 (see test_auto_routing)
