"""An outside-in pass over the OpenAI-compatible provider (faults40): shapes servers send that the fakes never did,
each rebuilt from the report where its users met it, replayed verbatim (``Fault.raw``) through the router, the routing
log read back.

- LocalAI's usage of zeros — on every chunk (LocalAI#1744, its own capture) and, with tools, on the last usage chunk
  (LocalAI#9927): read as a count, the row said 0 tokens in and out; now the estimate is kept, as for no usage;
- vLLM's hermes parser over Granite 4, whose arguments come encoded twice (vllm#54964): the call was passed on with its
  arguments as a JSON string (the client's one ``json.loads`` got a string, the agent loop told the model its call was
  broken); now the object the model meant;
- Groq's refusal of its model's own tool call once its ``code`` is gone — relayed by LiteLLM's proxy (a 400 whose
  message quotes Groq's body, code "400") or sent without it in a stream: a ``bad_request`` (the client told its
  request was wrong) or a ``stream_error`` asked again of the same model; now ``unusable_reply``, the next model asked,
  as with the code.

Guards (they held already, named so): a real count after the zeros is kept; a JSON string that holds no object is
still passed on as written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, SSE, data
from tests.integration.test_wire_shapes_round3 import outcomes
from tests.integration.test_wire_shapes_round9 import _routed

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message, ToolDefinition

PLAIN = ChatRequest(messages=[Message("user", "hello")])
TOOLS = ChatRequest(messages=[Message("user", "What is max_connections set to?")],
                    tools=[ToolDefinition("get_db_config")])
OK = [("primary", "ok", None)]
ZERO = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _localai(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    """A chunk as LocalAI 2.8.2 wrote it (LocalAI#1744): ``created``, ``object``, ``id``, ``model``, a choice without
    ``finish_reason`` until the last, and ``usage`` of zeros on each."""
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish is not None:
        choice["finish_reason"] = finish
    return data({"created": 1708097828, "object": "chat.completion.chunk", "id": "5cc56821-fbe8-43a4-873f-cd8d4dc07093",
                 "model": "gpt", "choices": [choice], "usage": usage if usage is not None else ZERO})


def _row(tmp_path: Path) -> tuple[int, int]:
    row = connect(tmp_path / "log.db").execute("SELECT tokens_in, tokens_out FROM requests").fetchone()
    return int(row[0]), int(row[1])


async def test_localai_zeros_on_every_chunk_are_no_count(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """LocalAI#1744: every chunk carries ``"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}``.
    Read as the server's count, the routing log said the answer took 0 tokens in and 0 out (a billed model's cost
    $0); no chat prompt is 0 tokens, so it is no count: the prompt and the answer are estimated, as without usage."""
    servers["openai"].push(Fault.raw(200, _localai({"role": "assistant", "content": ""}), _localai({"content": "\n"}),
                                     _localai({"content": "Hello"}), _localai({"content": " there!"}),
                                     _localai({}, "stop"), DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == OK and routed.response.text == "\nHello there!"
    assert routed.record.tokens_in > 0 and routed.record.tokens_out == 3  # one a streamed piece
    assert _row(tmp_path) == (routed.record.tokens_in, 3)


async def test_localai_zeros_in_the_last_usage_chunk_with_tools(servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """LocalAI#9927 (v4.2.6, ``stream_options.include_usage`` with tools): "the final streamed usage chunk returns all
    token counts as zero". The call is made; the row's tokens are estimated, not 0 and 0."""
    args = json.dumps({"param": "max_connections"})
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_db_config", "arguments": args}}
    servers["openai"].push(Fault.raw(
        200, _localai({"role": "assistant", "tool_calls": [call]}, usage={}), _localai({}, "tool_calls", usage={}),
        data({"created": 1708097828, "object": "chat.completion.chunk", "id": "x", "model": "gpt", "choices": [],
              "usage": ZERO}), DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    assert outcomes(routed) == OK
    made = [(c.name, c.arguments) for c in routed.response.tool_calls]
    assert made == [("get_db_config", {"param": "max_connections"})]
    assert routed.record.tokens_in > 0
    assert _row(tmp_path)[0] == routed.record.tokens_in


async def test_guard_a_real_count_after_the_zeros_is_kept(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Zeros on the chunks, the count on the last: the count is the row's."""
    servers["openai"].push(Fault.raw(200, _localai({"content": "Hi."}), _localai(
        {}, "stop", usage={"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}), DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == OK and _row(tmp_path) == (11, 2)


#: Granite 4's call as vLLM's hermes parser passes it on (vllm#54964): the model wrote ``"arguments"`` already
#: serialized, ``"{\n  \"param\": \"max_connections\"\n}"``, and the parser serialized that string again
TWICE = json.dumps(json.dumps({"param": "max_connections"}, indent=2))


def _vllm(delta: dict[str, Any], finish: str | None = None) -> str:
    return data({"id": "chatcmpl-7b1", "object": "chat.completion.chunk", "created": 1756800000,
                 "model": "ibm-granite/granite-4.0-h-small",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})


async def test_vllm_arguments_encoded_twice_are_the_object(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Streamed: the head with the name, then the twice-encoded arguments in pieces (as vLLM streams a call's
    arguments). The call carried them as a JSON string, flagged invalid; it is the object the model meant."""
    head = {"index": 0, "id": "chatcmpl-tool-4e2", "type": "function",
            "function": {"name": "get_db_config", "arguments": ""}}
    pieces = [TWICE[i:i + 7] for i in range(0, len(TWICE), 7)]
    servers["openai"].push(Fault.raw(
        200, _vllm({"role": "assistant", "content": ""}), _vllm({"tool_calls": [head]}),
        *(_vllm({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces),
        _vllm({"content": ""}, "tool_calls"), DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    assert outcomes(routed) == OK
    [call] = routed.response.tool_calls
    assert (call.name, call.arguments, call.invalid, call.raw) == ("get_db_config", {"param": "max_connections"}, "",
                                                                   None)
    assert json.loads(call.arguments_text()) == {"param": "max_connections"}  # what the gateway passes on


async def test_vllm_arguments_encoded_twice_in_a_whole_answer(servers: dict[str, Any],  # noqa: F811
                                                              tmp_path: Path) -> None:
    """The same call in a whole ``chat.completion`` (a server or proxy that ignores ``stream``)."""
    whole = {"id": "chatcmpl-7b1", "object": "chat.completion", "model": "ibm-granite/granite-4.0-h-small",
             "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                 "role": "assistant", "content": None, "tool_calls": [{
                     "id": "chatcmpl-tool-4e2", "type": "function",
                     "function": {"name": "get_db_config", "arguments": TWICE}}]}}],
             "usage": {"prompt_tokens": 210, "completion_tokens": 19, "total_tokens": 229}}
    servers["openai"].push(Fault.raw(200, json.dumps(whole), headers={"content-type": "application/json"}))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    assert outcomes(routed) == OK
    assert [(c.name, c.arguments, c.invalid) for c in routed.response.tool_calls] == [
        ("get_db_config", {"param": "max_connections"}, "")]


async def test_guard_a_json_string_of_no_object_is_passed_on_as_written(servers: dict[str, Any],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """Arguments that are a JSON string of plain text are still the model's broken call: passed on as written, with the
    parser's word (http.tool_call's policy), not made an object."""
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "get_db_config", "arguments": '"max"'}}
    servers["openai"].push(Fault.raw(200, _vllm({"tool_calls": [call]}), _vllm({}, "tool_calls"), DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    [made] = routed.response.tool_calls
    assert (made.arguments, made.raw) == ({}, '"max"') and made.invalid and "a string" in made.invalid


#: LiteLLM's proxy relaying Groq's refusal of a tool call its model wrote (the proxy's error shape as julep#885 quotes
#: it: its message ``litellm.BadRequestError: GroqException - Error code: 400 - {…}`` in Python's repr, "Received Model
#: Group=…", ``'code': '400'``; Groq's body as smolagents#1119 and groq-typescript#103 quote it)
LITELLM_GROQ = {"error": {"message": "litellm.BadRequestError: GroqException - Error code: 400 - {'error': {'message': "
                          "\"Failed to call a function. Please adjust your prompt. See 'failed_generation' for more "
                          "details.\", 'type': 'invalid_request_error', 'code': 'tool_use_failed', "
                          "'failed_generation': '<function=get_db_config>{\"param\": \"max_conn'}}\n"
                          "Received Model Group=llama-3.3-70b\nAvailable Model Group Fallbacks=None",
                          "type": None, "param": None, "code": "400"}}


async def test_groq_tool_use_failed_through_litellm_is_the_models_answer(servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """A bad_request before: the chain's last model ending on it told the client its own request was wrong. The
    model's broken text (``failed_generation``) stays out of the row."""
    servers["openai"].push(Fault.raw(400, json.dumps(LITELLM_GROQ), headers={"content-type": "application/json"}))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    first = routed.record.attempts[0]
    assert (first.model, first.outcome, first.reason) == ("primary", "fallback", "unusable_reply"), first.detail
    assert "max_conn" not in first.detail and "Failed to call a function" in first.detail
    assert routed.record.outcome == "fallback"


async def test_groq_tool_use_failed_without_its_code_in_a_stream(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """Groq's error after the 200 as vercel/ai#5282 saw it, ``{message, type}`` and no ``code``: a stream_error before,
    asked again of the same model (which fails the same way); now the next model at once."""
    said = {"message": "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more "
                       "details.", "type": "invalid_request_error"}
    servers["openai"].push(Fault.raw(200, data({"error": said}), headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    assert outcomes(routed)[0] == ("primary", "fallback", "unusable_reply")
    assert [a.model for a in routed.record.attempts] == ["primary", "backup"]


async def test_guard_another_400_through_litellm_stays_the_requests(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """LiteLLM relaying Groq's refusal of the request itself (julep#885's words): still bad_request."""
    body = {"error": {"message": "litellm.BadRequestError: GroqException - Error code: 400 - {'error': {'message': "
                                 "\"'messages.1' : for 'role:user' the following must be satisfied[('messages.1' : "
                                 "property 'tool_calls' is unsupported, did you mean 'tool_call_id'?)]\", 'type': "
                                 "'invalid_request_error'}}", "type": None, "param": None, "code": "400"}}
    servers["openai"].push(Fault.raw(400, json.dumps(body), headers={"content-type": "application/json"}))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    assert outcomes(routed)[0] == ("primary", "fallback", "bad_request")
