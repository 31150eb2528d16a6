"""Translation between OpenAI's request shape and modelyard's provider-neutral request."""

from __future__ import annotations

import json

import pytest

from modelyard.gateway.wire import BadRequest, ChunkWriter, completion, parse_body, to_chat_request
from modelyard.types import ChatResponse, ToolCall, Usage


def body(**extra) -> bytes:
    return json.dumps({"model": "a", "messages": [{"role": "user", "content": "hi"}], **extra}).encode()


def test_request_fields_map_to_chat_request():
    raw = json.dumps({
        "model": "coder", "max_completion_tokens": 12, "temperature": 0.2, "reasoning_effort": "none",
        "response_format": {"type": "json_object"}, "top_p": 0.5, "user": "ignored",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    }).encode()
    req = to_chat_request(parse_body(raw))
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert req.messages[1].content == "ab"
    assert req.messages[2].tool_calls == [ToolCall("f", {"x": 1}, "c1")]
    assert req.messages[3].name == "f" and req.messages[3].tool_call_id == "c1"
    assert req.tools[0].name == "f"
    assert (req.max_tokens, req.temperature, req.thinking, req.json_output) == (12, 0.2, False, True)


def test_tool_choice_none_withholds_tools():
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert to_chat_request(parse_body(body(tools=tools, tool_choice="none"))).tools == []
    assert len(to_chat_request(parse_body(body(tools=tools, tool_choice="auto"))).tools) == 1


def test_tool_arguments_that_are_no_json_are_taken_back_as_written():
    """What the gateway passes on when a model writes them so (as vLLM does): a 400 on the client's next turn
    would leave its agent no way to send the error result that lets the model repair the call."""
    raw = json.dumps({"model": "a", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}},
        {"id": "d", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}).encode()
    oops, array = to_chat_request(parse_body(raw)).messages[0].tool_calls
    assert (oops.arguments, oops.raw, oops.arguments_object()) == ({}, "{oops", {"INVALID_JSON": "{oops"})
    assert oops.invalid.startswith("not valid JSON (") and array.invalid == "JSON but not an object"


@pytest.mark.parametrize("raw", [b"[]", b"not json", b"{"])
def test_non_object_bodies(raw):
    with pytest.raises(BadRequest, match="not a JSON object"):
        parse_body(raw)


def test_completion_and_chunks_are_valid_openai_json():
    response = ChatResponse(text="", tool_calls=[ToolCall("f", {"x": 1}, "")], usage=Usage(3, 4), stop_reason="stop")
    done = completion("abc", 1, "m", response)
    assert done["choices"][0]["finish_reason"] == "tool_calls" and done["choices"][0]["message"]["content"] is None
    assert done["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"x": 1}'
    assert done["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    w = ChunkWriter("abc", 1, "m")
    for event in (w.role(), w.text('quote " and \n'), w.tool_call(ToolCall("f", {}, "")), w.finish("stop"),
                  w.usage(Usage(1, 2))):
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        parsed = json.loads(event[6:])
        assert parsed["id"] == "chatcmpl-abc" and parsed["object"] == "chat.completion.chunk"
    assert json.loads(w.text('quote " and \n')[6:])["choices"][0]["delta"]["content"] == 'quote " and \n'


@pytest.mark.parametrize(("message", "param"), [
    ({"role": "user"}, "messages[0].content"),
    ({"role": "user", "content": None}, "messages[0].content"),
    ({"role": "user", "content": []}, "messages[0].content"),
    ({"role": "system"}, "messages[0].content"),
    ({"role": "assistant", "content": None}, "messages[0].content"),
])
def test_a_message_without_content_is_refused_naming_it(message, param):
    with pytest.raises(BadRequest) as err:
        to_chat_request(parse_body(json.dumps({"model": "a", "messages": [message]}).encode()))
    assert err.value.param == param and "content" in err.value.message


def test_empty_text_and_an_assistant_turn_with_only_tool_calls_are_accepted():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    req = to_chat_request(parse_body(json.dumps({"model": "a", "messages": [
        {"role": "user", "content": ""}, {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}).encode()))
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]


def test_response_json_is_orjson_and_falls_back_for_what_it_refuses() -> None:
    """Answers leave as orjson's compact UTF-8 (issue #15); a lone surrogate in a model's text or an integer
    beyond 64 bits (orjson refuses both) still leaves as the standard library wrote it, never a 500."""
    from modelyard.gateway.responses import dumps

    assert dumps({"text": "é", "n": 1}) == '{"text":"é","n":1}'.encode()
    assert json.loads(dumps({"text": "x\ud83d", "n": 2**70})) == {"text": "x\ud83d", "n": 2**70}


def test_why_a_body_is_not_json_is_said():
    with pytest.raises(BadRequest, match=r"not a JSON object \(expected value at line 1 column 11\)"):
        parse_body(b'{"model": }')


DEEP = "[" * 100_000 + "]" * 100_000  # past any parser's depth: json.loads raises RecursionError


def test_tool_arguments_nested_past_the_parsers_depth_are_a_400_not_a_500():
    from modelyard.gateway import responses_wire

    chat = json.dumps({"model": "a", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": DEEP}}]}]}).encode()
    with pytest.raises(BadRequest) as err:
        to_chat_request(parse_body(chat))
    assert err.value.param == "messages[0].tool_calls[0].function.arguments"
    responses = json.dumps({"model": "a", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                                                     "arguments": DEEP}]}).encode()
    with pytest.raises(BadRequest) as err:
        responses_wire.to_chat_request(responses_wire.parse_responses_body(responses))
    assert err.value.param == "input[0].arguments"


def test_tool_arguments_deeper_than_any_provider_can_be_sent_are_a_400():
    deep = '{"a":' * 900 + "1" + "}" * 900  # parses, but json.dumps cannot write it back inside a request
    chat = json.dumps({"model": "a", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": deep}}]}]}).encode()
    with pytest.raises(BadRequest, match="nests deeper than 64 levels"):
        to_chat_request(parse_body(chat))


def test_nesting_depth_counts_containers_and_stops_past_its_limit():
    from modelyard.types import nesting_depth

    assert [nesting_depth(v) for v in (1, {}, {"a": 1}, {"a": [1, {"b": 2}]}, [[]])] == [0, 1, 1, 3, 2]
    value: object = 1
    for _ in range(5000):
        value = [value]
    assert nesting_depth(value, limit=10) == 11


def test_a_model_answer_nested_past_the_parsers_depth_is_no_tool_call():
    from modelyard.agents.tool_text import find_text_calls

    assert find_text_calls("```json\n" + DEEP + "\n```") == []
    assert [c.error for c in find_text_calls('{"name": "f", "arguments": "' + DEEP + '"}')] == [
        "arguments are not valid JSON (maximum recursion depth exceeded while decoding a JSON array "
        "from a unicode string)"]


@pytest.mark.parametrize(("stop", "finish"), [("end_turn", "stop"), ("max_tokens", "length"),
                                              ("model_context_window_exceeded", "length"),
                                              ("refusal", "content_filter")])
def test_anthropic_stop_reasons_in_openai_words(stop, finish):
    from modelyard.gateway.wire import finish_reason

    assert finish_reason(ChatResponse(text="x", stop_reason=stop)) == finish
