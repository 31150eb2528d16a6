"""Request shapes real clients send (the inbound hunt, round 3), taken from their source: each is accepted (and what
it asks for honoured), or refused with a 400 in the API's own error shape naming the field — never a silent loss,
never a 500. The official ``openai`` and ``anthropic`` SDKs send them, as the clients do."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

CHAT = {"model": "coder", "messages": [{"role": "user", "content": "hi"}]}


def _ask(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def claude(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused-on-loopback", max_retries=0, timeout=15)


# -- OpenAI chat completions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 5])
def test_n_above_one_is_a_400_naming_n_and_what_is_given(client, fakes, n):
    """``n`` (choices per request; openai-python's ``n`` parameter, Open WebUI and LangChain's ``n=`` pass it on) got
    pydantic's "n: Input should be less than or equal to 1" — neither what n is for nor what to do. Now the OpenAI
    error object names ``n``, says one choice is given and how to get more; nothing is sent to a model."""
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="coder", messages=_ask(), n=n)
    body = err.value.body
    assert body["param"] == "n" and body["type"] == "invalid_request_error" and body["code"] == "invalid_request"
    assert body["message"] == (f"n: only one choice per request is supported (n: 1, or leave n out), got {n}; "
                               "for more choices, send the request again")
    assert not any(f.requests for f in fakes)
    assert client.chat.completions.create(model="coder", messages=_ask(), n=1).choices[0].message.content


@pytest.mark.parametrize(("extra", "param"), [
    # openai-python's audio output (ChatCompletionAudioParam, modalities: ["text", "audio"]); the AI SDK's
    # packages/openai/src/chat/__fixtures__/openai-audio-gpt-audio-1.5.json is such an answer (message.audio)
    ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "modalities"),
    ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
    # openai-python's web_search_options (the search-preview models' hosted search)
    ({"web_search_options": {"search_context_size": "low"}}, "web_search_options"),
])
def test_an_answer_asked_in_audio_or_from_the_web_is_refused_by_name(client, fakes, extra, param):
    """Ignored, they got a 200 with text only: ``message.audio`` null to a client that plays it, nothing searched."""
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="coder", messages=_ask(), **extra)
    assert err.value.body["param"] == param and err.value.body["message"].startswith(f"{param}: ")
    assert not any(f.requests for f in fakes)


def test_text_only_modalities_is_an_ordinary_request(client):
    """``modalities: ["text"]`` asks for what is given (openai-python's default when set)."""
    done = client.chat.completions.create(model="coder", messages=_ask(), modalities=["text"])
    assert done.choices[0].message.content == "Hello from fast."


def test_the_ai_sdks_streamed_request_is_answered_and_its_limits_honoured(gateway, fakes):
    """The request body of the Vercel AI SDK's OpenAI provider (vercel/ai packages/openai/src/chat/
    openai-chat-language-model.ts, getArgs + doStream): every provider option it may set, a json_schema
    response_format with ``strict``/``description``, ``stream_options.include_usage``. The knobs a router cannot
    apply per model are accepted; the token limit, the schema and the usage chunk are honoured."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}, "max_completion_tokens": 77,
            "temperature": 0.2, "top_p": 0.9, "seed": 7, "user": "u-1", "parallel_tool_calls": False,
            "store": False, "metadata": {"session": "s-1"}, "prediction": {"type": "content", "content": "x"},
            "reasoning_effort": "low", "service_tier": "auto", "prompt_cache_key": "k", "safety_identifier": "s",
            "verbosity": "low", "logit_bias": {"50256": -100},
            "response_format": {"type": "json_schema", "json_schema": {
                "schema": schema, "strict": True, "name": "response", "description": "a city"}}}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=15) as r:
        assert r.status_code == 200, r.read()
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    assert '"usage"' in lines[-1] and '"prompt_tokens"' in lines[-1]
    sent = fakes[0].last_request.json
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 77
    assert sent["response_format"]["json_schema"]["schema"] == schema


# -- Anthropic messages -----------------------------------------------------------------------------------------------

def _tool_turn(result: dict) -> list[dict]:
    return [{"role": "user", "content": "list the empty dir"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {}}]},
            {"role": "user", "content": [result]}]


@pytest.mark.parametrize("result", [
    {"type": "tool_result", "tool_use_id": "toolu_1", "content": []},
    {"type": "tool_result", "tool_use_id": "toolu_1"},
])
def test_a_tool_result_with_no_content_is_an_empty_result(claude, fakes, result):
    """anthropic-sdk-python src/anthropic/types/tool_result_block_param.py: ``content`` is not ``Required`` and is
    ``Union[str, Iterable[Content]]`` — an empty list is a valid (empty) result, what a tool that printed nothing
    gives. ``content: []`` was a 400 "expected a string or a non-empty list of content blocks"."""
    tools = [{"name": "ls", "description": "list a dir", "input_schema": {"type": "object", "properties": {}}}]
    done = claude.messages.create(model="coder", max_tokens=50, tools=tools, messages=_tool_turn(result))
    assert done.content[0].text == "Hello from fast."
    sent = fakes[0].last_request.json["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == "toolu_1" and not sent[-1]["content"]


def test_a_tool_result_whose_content_is_no_list_is_still_a_400(gateway):
    r = httpx.post(gateway.url + "/v1/messages", timeout=15, json={"model": "coder", "max_tokens": 20, "messages":
                   _tool_turn({"type": "tool_result", "tool_use_id": "toolu_1", "content": 42})})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[2].content[0].content", r.text


def test_the_mcp_connector_is_refused_by_name(claude, fakes):
    """anthropic-sdk-python's ``beta.messages.create(mcp_servers=[…], betas=["mcp-client-2025-04-04"])`` (the API's MCP
    connector: remote tool servers Anthropic's API calls itself) was ignored — the model answered without the tools
    the client asked for. Now a 400 naming ``mcp_servers``, in Anthropic's error shape."""
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.beta.messages.create(model="coder", max_tokens=50, messages=_ask(), betas=["mcp-client-2025-04-04"],
                                    mcp_servers=[{"type": "url", "url": "https://mcp.example.com/sse", "name": "ex"}])
    error = err.value.body["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "mcp_servers", error
    assert error["message"].startswith("mcp_servers: the MCP connector")
    assert not any(f.requests for f in fakes)


# -- OpenAI Responses -------------------------------------------------------------------------------------------------

def test_a_stored_prompt_template_is_refused_by_name(client, fakes):
    """openai-python's ``responses.create(prompt={"id": "pmpt_…", "variables": …})`` (openai-agents' ``Agent(prompt=…)``
    sends it): the instructions live on OpenAI's platform. Ignored, the answer came without them."""
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="coder", input="hi", prompt={"id": "pmpt_123", "variables": {"city": "Oslo"}})
    assert err.value.body["param"] == "prompt" and "'instructions'" in err.value.body["message"]
    assert not any(f.requests for f in fakes)


@pytest.mark.parametrize(("extra", "param"), [
    ({"top_logprobs": 5, "include": ["message.output_text.logprobs"]}, "top_logprobs"),
    ({"include": ["message.output_text.logprobs"]}, "include"),
])
def test_log_probabilities_asked_of_the_responses_api_are_refused_as_on_chat(client, fakes, extra, param):
    """openai-python's ``top_logprobs`` / ``include=["message.output_text.logprobs"]``: chat completions refuses
    ``logprobs`` (test_inbound_round2.py); here they were ignored — an answer without them and no word why."""
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="coder", input="hi", **extra)
    assert err.value.body["param"] == param and "log probabilities are not available" in err.value.body["message"]
    assert not any(f.requests for f in fakes)


def test_what_openai_agents_sends_besides_is_accepted(client):
    """openai-agents' OpenAIResponsesModel (src/agents/models/openai_responses.py) passes ``include``, ``store``,
    ``parallel_tool_calls``, ``truncation``, ``reasoning.summary``, ``text.verbosity`` and ``prompt_cache_key``:
    knobs a router cannot apply per model, accepted (``include`` without logprobs too)."""
    done = client.responses.create(model="coder", input="hi", include=["reasoning.encrypted_content"], store=False,
                                   parallel_tool_calls=True, truncation="disabled", prompt_cache_key="k",
                                   reasoning={"effort": "low", "summary": "auto"}, text={"verbosity": "low"})
    assert done.output_text == "Hello from fast."


# -- Ollama -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "extra", "param"), [
    ("chat", {"logprobs": True}, "logprobs"),
    ("generate", {"logprobs": True, "top_logprobs": 3}, "logprobs"),
    ("chat", {"top_logprobs": 3}, "top_logprobs"),
])
def test_log_probabilities_asked_of_the_ollama_api_are_refused(gateway, fakes, call, extra, param):
    """The ollama Python library's ``chat``/``generate(logprobs=…, top_logprobs=…)`` (Ollama's own server checks
    top_logprobs, server/routes.go "top_logprobs must be between 0 and 20"): ignored, the answer came without them."""
    error = _ollama_refusal(gateway, call, **extra)
    assert error.status_code == 400 and error.error.startswith(f"{param}: log probabilities"), error.error
    assert not any(f.requests for f in fakes)


def _ollama_refusal(gateway, call: str, **extra):
    """The ``ollama.ResponseError`` the official client raises for a ``chat`` or ``generate`` with ``extra``."""
    import ollama

    client = ollama.Client(host=gateway.url, timeout=15)
    try:
        with pytest.raises(ollama.ResponseError) as err:
            if call == "chat":
                client.chat(model="coder", messages=_ask(), **extra)
            else:
                client.generate(model="coder", prompt="a sunset over mountains", **extra)
    finally:
        client._client.close()
    return err.value


def test_the_structured_output_betas_output_format_reaches_the_model(gateway, fakes):
    """Anthropic's structured outputs were a beta first: ``output_format: {"type": "json_schema", "schema": …}`` with
    ``anthropic-beta: structured-outputs-2025-11-13`` (platform.claude.com/docs/en/build-with-claude/structured-outputs;
    GA later as ``output_config.format``), and code written then sends it so. It was ignored: the answer came
    unconstrained to a client that parses it as JSON. Now it is the same schema passed on."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    r = httpx.post(gateway.url + "/v1/messages?beta=true", timeout=15,
                   headers={"anthropic-beta": "structured-outputs-2025-11-13", "anthropic-version": "2023-06-01"},
                   json={"model": "coder", "max_tokens": 64, "messages": _ask("a city"),
                         "output_format": {"type": "json_schema", "schema": schema}})
    assert r.status_code == 200, r.text
    sent = fakes[0].last_request.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema
    r = httpx.post(gateway.url + "/v1/messages", timeout=15, json={
        "model": "coder", "max_tokens": 64, "messages": _ask(), "output_format": {"type": "json_object"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "output_format", r.text


@pytest.mark.parametrize(("extra", "param"), [({"width": 512, "height": 512}, "width"), ({"steps": 4}, "steps")])
def test_an_image_asked_of_the_ollama_api_is_refused_by_name(gateway, fakes, extra, param):
    """ollama-python's ``generate(width=…, height=…, steps=…)`` asks one of Ollama's image models for a picture
    (Ollama's "Image Generation (Experimental)"; the AI SDK's Ollama image model sends ``steps``). It got a text
    answer instead, read as no image."""
    error = _ollama_refusal(gateway, "generate", **extra)
    assert error.status_code == 400 and error.error.startswith(f"{param}: image generation"), error.error
    assert not any(f.requests for f in fakes)


def test_a_plain_text_document_is_read_as_its_text(claude, fakes):
    """The AI SDK's Anthropic provider sends a text/plain file as a document block (vercel/ai packages/anthropic/src/
    convert-to-anthropic-messages-prompt.ts: ``source: {type: "text", media_type: "text/plain", data}``, ``title``:
    the file's name; Anthropic's "content" source holds text blocks). It was a 400 "'document' blocks are not
    supported here"; the model now reads the text, apart from the question around it."""
    claude.messages.create(model="coder", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise:"},
        {"type": "document", "title": "notes.txt", "cache_control": {"type": "ephemeral"},
         "source": {"type": "text", "media_type": "text/plain", "data": "line one\nline two"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "chunk A"}]}},
        {"type": "text", "text": "Briefly."}]}])
    sent = fakes[0].last_request.json["messages"][-1]
    assert sent["content"] == "Summarise:\n\nnotes.txt\n\nline one\nline two\n\nchunk A\n\nBriefly.", sent


def test_a_pdf_document_is_refused_naming_its_source(claude, fakes):
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model="coder", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "text", "text": "Summarise"}]}])
    error = err.value.body["error"]
    assert error["param"] == "messages[0].content[0].source" and "only plain-text documents" in error["message"]
    assert not any(f.requests for f in fakes)


@pytest.mark.parametrize("assistant", [
    # openai-python's ChatCompletionAssistantMessageParam: content is text or refusal parts
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
    # the SDK's ChatCompletionMessage of a refused answer, appended back as it came (content null, refusal set)
    {"role": "assistant", "content": None, "refusal": "I can't help with that."},
])
def test_an_assistants_refusal_replayed_is_part_of_the_conversation(client, fakes, assistant):
    """Was a 400 "only text content parts are supported (got 'refusal')" / "needs content or tool_calls": a
    conversation in which the model once refused could not go on."""
    done = client.chat.completions.create(model="coder", messages=[*_ask("do it"), assistant, *_ask("then this")])
    assert done.choices[0].message.content == "Hello from fast."
    sent = [m for m in fakes[0].last_request.json["messages"] if m["role"] == "assistant"]
    assert sent[-1]["content"] == "I can't help with that."


def test_a_refusal_part_in_a_users_message_is_still_refused(gateway):
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15, json={**CHAT, "messages": [
        {"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].content[0].type", r.text


def test_claude_codes_caching_and_metadata_fields_are_accepted(claude, fakes):
    """What Claude Code and anthropic-sdk-python put around a turn besides the conversation: ``cache_control`` on
    system, tool and message blocks (and the SDK's top-level automatic ``cache_control``), ``metadata.user_id``,
    ``output_config.effort``, ``context_management``, ``service_tier``. Knobs a router cannot apply per model: accepted,
    and the conversation reaches the model whole."""
    ephemeral = {"type": "ephemeral"}
    tools = [{"name": "Read", "description": "read a file", "cache_control": ephemeral,
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]
    with claude.messages.stream(
            model="coder", max_tokens=64, tools=tools, cache_control=ephemeral, metadata={"user_id": "user_abc"},
            system=[{"type": "text", "text": "You are Claude Code.", "cache_control": ephemeral}],
            messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": ephemeral}]}],
            output_config={"effort": "low"}, service_tier="auto",
            extra_body={"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}) as stream:
        done = stream.get_final_message()
    assert done.stop_reason == "tool_use" and done.content[-1].name == "Read"  # the fake calls the tool offered
    sent = fakes[0].last_request.json
    assert sent["messages"][0]["content"].startswith("You are Claude Code.") and sent["messages"][-1]["content"] == "hi"
    assert [t["function"]["name"] for t in sent["tools"]] == ["Read"]
