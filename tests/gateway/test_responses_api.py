"""``POST /v1/responses`` with the official ``openai`` SDK's ``client.responses`` (issue 14.10).

openai-agents and more and more clients default to the Responses API; it used to get a bare 404.
Served on the same router path as chat completions: text and message-list input, instructions,
streaming with the documented events, function tools and their outputs, the same fallback and
"no model could answer" rules, and the routing headers.
"""

from __future__ import annotations

import concurrent.futures
import json

import httpx
import openai
import pytest

from tests.fakes import Fault

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_text_input_names_the_answering_model(client, fakes):
    raw = client.responses.with_raw_response.create(model="coder", input="hi")
    done = raw.parse()
    assert done.output_text == "Hello from fast." and done.status == "completed"
    assert done.model == "fast" and done.id == "resp_" + raw.headers["x-modelyard-request-id"]
    assert raw.headers["x-modelyard-route"] == "fast ok"
    assert done.usage.output_tokens > 0 and done.usage.total_tokens == done.usage.input_tokens + \
        done.usage.output_tokens
    sent = fakes[0].last_request.json
    assert sent["messages"][-1] == {"role": "user", "content": "hi"}


def test_instructions_and_message_list_input(client, fakes):
    done = client.responses.create(model="coder", instructions="Answer in French.", input=[
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"role": "user", "content": "second"}])
    assert done.output_text == "Hello from fast."
    sent = [(m["role"], m["content"]) for m in fakes[0].last_request.json["messages"]]
    assert sent == [("system", "Answer in French."), ("system", "be brief"), ("user", "first"), ("assistant", "ok"),
                    ("user", "second")]


def test_fallback_is_reported_with_its_reason(client, fakes):
    fakes[0].push(Fault.status(500))
    raw = client.responses.with_raw_response.create(model="coder", input="hi")
    assert raw.parse().output_text == "Hello from backup." and raw.parse().model == "backup"
    assert raw.headers["x-modelyard-route"] == "fast fallback server_error, backup ok"


def test_streaming_emits_the_documented_event_sequence(client):
    events = list(client.responses.create(model="coder", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"} and len(kinds) > 9
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from fast."
    final = events[-1].response
    assert final.status == "completed" and final.output_text == "Hello from fast." and final.model == "fast"
    assert final.usage.output_tokens > 0


def test_stream_helper_of_the_sdk_gets_the_final_response(client):
    with client.responses.stream(model="coder", input="hi") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "Hello from fast."


def test_function_tool_round_trip(client, fakes):
    first = client.responses.create(model="coder", input="weather in Paris?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    sent_tools = fakes[0].last_request.json["tools"]
    assert sent_tools[0]["function"]["name"] == "get_weather"
    second = client.responses.create(model="coder", tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "9C and rain"}])
    assert second.output_text == "Hello from fast."
    sent = fakes[0].last_request.json["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == calls[0].call_id
    assert sent[-1] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "9C and rain"}


def test_streamed_function_call_events(client):
    events = list(client.responses.create(model="coder", input="weather?", tools=[WEATHER], stream=True))
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Paris"}
    assert [i.type for i in events[-1].response.output] == ["function_call"]


def test_truncated_answer_is_incomplete(client):
    raw = client.responses.with_raw_response.create(model="model:cloud", input="hi", max_output_tokens=2)
    done = raw.parse()
    assert done.status == "incomplete" and done.incomplete_details.reason == "max_output_tokens"
    assert done.output_text == "Hello from" and raw.headers["x-modelyard-route"] == "cloud ok (truncated: length)"
    events = list(client.responses.create(model="model:cloud", input="hi", max_output_tokens=2, stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.status == "incomplete"


def test_stream_broken_after_commit_ends_with_response_failed(client, fakes):
    fakes[0].push(Fault.error_midstream(after_chunks=2))
    events = list(client.responses.create(model="solo", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "server_error" and "incomplete" in events[-1].response.error.message


def test_no_model_could_answer_has_the_same_statuses(client, fakes):
    fakes[0].push(Fault.status(401))
    with pytest.raises(openai.APIStatusError) as err:
        client.responses.create(model="solo", input="hi")
    assert err.value.status_code == 424 and err.value.body["code"] == "no_model_available"


@pytest.mark.parametrize(("payload", "param"), [
    ({"model": "coder"}, "input"),
    ({"model": "coder", "input": []}, "input"),
    ({"model": "coder", "input": [{"role": "user"}]}, "input[0].content"),
    ({"model": "coder", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
     "input[0].content[0].type"),
    ({"model": "coder", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"model": "coder", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "coder", "input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"model": "coder", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}]},
     "input[0].arguments"),  # not a string (text that is no JSON is taken back: test_tool_args_gateway)
])
def test_bad_body_is_400_naming_the_field(gateway, payload, param):
    r = httpx.post(gateway.url + "/v1/responses", json=payload)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["message"].startswith(param)


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope", input="hi")


def test_unknown_endpoint_names_the_supported_ones(gateway):
    # /v1/embeddings was the example until it was served (gateway/embeddings): OpenAI's image API is not
    r = httpx.post(gateway.url + "/v1/images/generations", json={"model": "coder", "prompt": "a cat"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    message = r.json()["error"]["message"]
    assert "POST /v1/images/generations" in message and "POST /v1/chat/completions" in message \
        and "POST /v1/responses" in message and "POST /v1/completions" in message \
        and "POST /v1/embeddings" in message


def test_shutdown_mid_stream_ends_with_response_failed(gateway, fakes):
    """serve's drain (SIGTERM/Ctrl-C) ends a live /v1/responses stream with response.failed, numbered in order."""
    fakes[0].push(Fault.hang_after_first_token())
    events = []
    with httpx.stream("POST", gateway.url + "/v1/responses", timeout=10,
                      json={"model": "solo", "input": "hi", "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                if events[-1]["type"] == "response.output_text.delta":
                    gateway.gateway.drain.start()
    assert events[-1]["type"] == "response.failed", events[-2:]
    assert "shutting down" in events[-1]["response"]["error"]["message"]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hello"  # the part that was sent
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_shutdown_during_a_buffered_response_is_503_with_retry_after(gateway, fakes):
    fakes[0].push(Fault.hang_before_headers())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, gateway.url + "/v1/responses", json={"model": "solo", "input": "hi"},
                              timeout=10)
        fakes[0].wait_for(lambda: fakes[0].in_flight == 1)
        gateway.gateway.drain.start()
        r = pending.result()
    assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down" and r.headers["retry-after"] == "5"


def test_a_text_format_that_is_not_an_object_is_a_400(gateway):
    """Before: a 500 with a traceback ('str' object has no attribute 'get')."""
    r = httpx.post(gateway.url + "/v1/responses", json={"model": "coder", "input": "hi", "text": {"format": "json"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "text.format"


def test_a_json_schema_text_format_reaches_the_model(client, fakes):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    client.responses.create(model="coder", input="a city", text={"format": {
        "type": "json_schema", "name": "city", "schema": schema, "strict": True}})
    sent = fakes[0].last_request.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema
