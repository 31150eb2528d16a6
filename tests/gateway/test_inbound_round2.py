"""Request shapes clients send that the gateway mishandled (the inbound hunt, round 2): each now gets an answer or a
400 in the API's own error shape that names the field and says what is wrong with it."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.harness import GatewayServer, fake_config

CHAT = {"model": "coder", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "coder", "max_tokens": 20}


@pytest.mark.parametrize("kind", [["input_text"], {"type": "input_text"}])
def test_a_responses_part_whose_type_is_no_string_is_a_400_not_a_500(gateway, kind):
    """OpenAI's Responses API takes input content parts as ``{"type": "input_text", "text": …}`` (its API reference,
    "Input item content list"); a client that builds the part wrongly (a list or an object where the type's string
    goes) got a 500 'internal error (TypeError)' — an unhashable type looked up in a set — and uvicorn's traceback."""
    with httpx.Client(timeout=15) as client:
        r = client.post(gateway.url + "/v1/responses", json={"model": "coder", "input": [
            {"role": "user", "content": [{"type": kind, "text": "hi"}]}]})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "input[0].content[0].type" and "only text content parts" in error["message"]
        # the same connection still serves (after the 500 the server closed it: the client's next request was reset)
        assert client.post(gateway.url + "/v1/responses", json={"model": "coder", "input": "hi"}).status_code == 200


@pytest.mark.parametrize("part", [{"type": "text"}, {"type": "text", "text": None}])
def test_a_text_part_without_its_text_says_so(gateway, part):
    """``{"type": "text"}`` with no ``text`` (OpenAI's ChatCompletionContentPartTextParam requires it) was refused as
    "only text content parts are supported (got 'text')" — a text part, refused for not being one."""
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15,
                   json={**CHAT, "messages": [{"role": "user", "content": [part]}]})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "messages[0].content[0].text", error
    assert "needs its 'text'" in error["message"] and "only text content parts" not in error["message"]


@pytest.mark.parametrize(("messages", "where", "belongs"), [
    # Microsoft.Extensions.AI's IChatClient put tool output in the assistant's message (tghamm/Anthropic.SDK #128;
    # Anthropic answers "`tool_result` blocks can only be in `user` messages")
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "text", "text": "calling"}, {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]}],
     "messages[1].content[1].type", "'user'"),
    ([{"role": "user", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}],
     "messages[0].content[0].type", "'assistant'"),
])
def test_a_tool_block_in_the_wrong_turn_says_whose_turn_it_belongs_in(gateway, messages, where, belongs):
    """Was "'tool_result' blocks are not supported here (text, tool_use, tool_result)": refused, yet listed."""
    r = httpx.post(gateway.url + "/v1/messages", timeout=15, json={**MESSAGES, "messages": messages})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == where
    assert f"belongs in an {belongs} message" in body["error"]["message"]
    assert "not supported" not in body["error"]["message"]


@pytest.mark.parametrize(("path", "body", "says"), [
    ("/v1/chat/completions", CHAT, lambda j: j["error"]["message"]),
    ("/api/chat", CHAT, lambda j: j["error"]),
])
def test_a_401_tells_an_openai_client_where_x_api_key_is_read(tmp_path, fakes, path, body, says):
    """OpenAI's API takes the key as a bearer token, Anthropic's as ``x-api-key`` (their API references). The 401 of
    every endpoint said "send 'Authorization: Bearer <key>' (or 'x-api-key: <key>')", and on the OpenAI and Ollama
    endpoints refused the client that sent the right key as x-api-key, as told, with the same words."""
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), api_keys=("sk-gw-1",)) as gw:
        r = httpx.post(gw.url + path, json=body, timeout=15, headers={"x-api-key": "sk-gw-1"})
        assert r.status_code == 401, r.text
        message = says(r.json())
        assert "x-api-key is read only by Anthropic's API" in message and "(or 'x-api-key" not in message
        r = httpx.post(gw.url + "/v1/messages", json={**MESSAGES, **CHAT}, timeout=15)  # there it is read
        assert r.status_code == 401 and "'x-api-key: <key>' or 'Authorization: Bearer <key>'" in r.text
        r = httpx.post(gw.url + "/v1/messages", json={**MESSAGES, **CHAT}, timeout=15, headers={"x-api-key": "sk-gw-1"})
        assert r.status_code == 200, r.text


TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}} for name in ("f", "g")]


def _allowed(mode: str, *names: str) -> dict[str, object]:
    """The openai SDK's ChatCompletionAllowedToolChoiceParam (openai-python, types/chat/
    chat_completion_allowed_tool_choice_param.py): ``{"type": "allowed_tools", "allowed_tools": {mode, tools}}``."""
    return {"type": "allowed_tools", "allowed_tools": {
        "mode": mode, "tools": [{"type": "function", "function": {"name": n}} for n in names]}}


@pytest.mark.parametrize("mode", ["auto", "required"])
def test_allowed_tools_offers_only_those_tools(gateway, fakes, mode):
    """Was read as a demand for any tool: both tools offered (the model could call one the client had not allowed)."""
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15,
                   json={**CHAT, "tools": TOOLS, "tool_choice": _allowed(mode, "g")})
    assert r.status_code == 200, r.text
    assert [t["function"]["name"] for t in fakes[0].requests[-1].json["tools"]] == ["g"]


def test_allowed_tools_in_the_responses_api_shape_offers_only_those(gateway, fakes):
    """The Responses API's form puts mode and tools at the top (openai-python, types/responses/
    tool_choice_allowed_param.py)."""
    r = httpx.post(gateway.url + "/v1/responses", timeout=15, json={
        "model": "coder", "input": "hi", "tools": [{"type": "function", "name": n} for n in ("f", "g")],
        "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}})
    assert r.status_code == 200, r.text
    assert [t["function"]["name"] for t in fakes[0].requests[-1].json["tools"]] == ["f"]


@pytest.mark.parametrize(("tools", "choice", "says"), [
    ([], _allowed("auto"), None),  # nothing allowed, nothing demanded: an answer (was a 400 "a call is demanded")
    (TOOLS, _allowed("auto", "h"), "not among the tools given: h"),
    ([], _allowed("required"), "no tools are allowed"),
    (TOOLS, {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"function": {"name": ["f"]}}]}},
     "each allowed tool is"),
])
def test_allowed_tools_that_cannot_be_honoured_is_a_400(gateway, tools, choice, says):
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15,
                   json={**CHAT, **({"tools": tools} if tools else {}), "tool_choice": choice})
    if says is None:
        assert r.status_code == 200, r.text
        return
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "tool_choice" and says in r.json()["error"]["message"]


@pytest.mark.parametrize(("extra", "param"), [({"logprobs": True}, "logprobs"),
                                              ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
                                              ({"top_logprobs": 2}, "top_logprobs")])
def test_logprobs_asked_for_are_refused_not_answered_null(gateway, fakes, extra, param):
    """The answer said ``"logprobs": null``: what users of other servers reported as a bug ("Logprobs always NULL",
    InternLM/lmdeploy #2802; EricLBuehler/mistral.rs #1876; ggml-org/llama.cpp #11346) and what silently scores every
    choice of a loglikelihood evaluation the same (ggml-org/llama.cpp #27174, lm-eval). Refused as Groq does."""
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15, json={**CHAT, **extra})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and "not available" in r.json()["error"]["message"]
    assert not any(f.requests for f in fakes)
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15,  # not asked for: answered as before
                   json={**CHAT, "logprobs": False, "top_logprobs": None})
    assert r.status_code == 200, r.text
