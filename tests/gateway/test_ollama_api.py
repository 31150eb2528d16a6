"""Ollama's native API on the gateway, driven by the official ``ollama`` Python client: tools that speak
only Ollama's API get modelyard's chains, slots and log by changing the address.

The client is the judge of the wire format (its pydantic models parse every line and object)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import ollama
import pytest

from tests.fakes import Fault

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def local(gateway) -> Iterator[ollama.Client]:
    with ollama.Client(host=gateway.url, timeout=15) as client:  # it has no finalizer: its socket would be left open
        yield client


def test_chat_is_answered_through_the_agents_chain(local, fakes):
    answer = local.chat(model="coder", messages=[{"role": "system", "content": "Be brief."}, *HI])
    assert answer.message.content == "Hello from fast." and answer.message.role == "assistant"
    assert answer.done and answer.done_reason == "stop" and answer.model == "coder"
    assert answer.eval_count and answer.eval_count > 0 and answer.total_duration and answer.total_duration > 0
    sent = fakes[0].last_request.json["messages"]
    assert sent[0]["content"] == "Be brief." and sent[-1] == {"role": "user", "content": "hi"}


def test_a_streamed_chat_comes_as_ndjson_lines(local, gateway):
    parts = list(local.chat(model="coder:latest", messages=HI, stream=True))
    assert "".join(p.message.content for p in parts) == "Hello from fast."
    assert [p.done for p in parts][-1] and not any(p.done for p in parts[:-1]) and len(parts) > 2
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count > 0
    with httpx.stream("POST", gateway.url + "/api/chat", json={"model": "coder", "messages": HI}) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson") and r.headers["x-modelyard-route"]


def test_generate_with_and_without_streaming(local, fakes):
    whole = local.generate(model="coder", prompt="hi", system="Be brief.")
    assert whole.response == "Hello from fast." and whole.done_reason == "stop"
    assert [m["role"] for m in fakes[0].last_request.json["messages"]][-2:] == ["system", "user"]
    assert "".join(p.response for p in local.generate(model="coder", prompt="hi", stream=True)) == "Hello from fast."


def test_an_empty_request_is_a_load_and_runs_nothing(local, fakes):
    assert local.generate(model="coder").done_reason == "load"
    assert local.chat(model="coder").done_reason == "load"
    assert fakes[0].requests == []


def test_tool_calls_come_back_as_objects_and_results_go_back_by_name(local, fakes):
    first = local.chat(model="coder", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER])
    call = first.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Paris"}
    local.chat(model="coder", tools=[WEATHER], messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather",
                                                                          "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "9C and rain", "tool_name": "get_weather"}])
    sent = fakes[0].last_request.json["messages"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "9C and rain"
    assert sent[-1]["tool_call_id"] == sent[-2]["tool_calls"][0]["id"]


def test_json_format_and_options_reach_the_model(local, fakes):
    local.chat(model="coder", messages=HI, format="json", options={"temperature": 0.2, "num_predict": 7})
    sent = fakes[0].last_request.json
    assert sent["response_format"] == {"type": "json_object"} and sent["temperature"] == 0.2
    assert sent["max_tokens"] == 7


def test_fallback_is_in_the_route_header(gateway, fakes):
    fakes[0].push(Fault.status(500))
    r = httpx.post(gateway.url + "/api/chat", json={"model": "coder", "messages": HI, "stream": False})
    assert r.json()["message"]["content"] == "Hello from backup."
    assert r.headers["x-modelyard-route"] == "fast fallback server_error, backup ok"


def test_errors_are_ollamas_shape_with_the_same_statuses(local, fakes):
    with pytest.raises(ollama.ResponseError) as missing:
        local.chat(model="llama3.2", messages=HI)
    assert missing.value.status_code == 404 and "coder" in missing.value.error
    fakes[0].push(Fault.status(401))
    with pytest.raises(ollama.ResponseError) as exhausted:
        local.chat(model="solo", messages=HI)
    assert exhausted.value.status_code == 424
    with pytest.raises(ollama.ResponseError) as bad:
        local.chat(model="coder", messages=[{"role": "user", "content": "what is this?", "images": ["aGk="]}])
    assert bad.value.status_code == 400 and "images" in bad.value.error


def test_a_stream_broken_after_the_first_line_ends_with_an_error_line(local, fakes):
    fakes[0].push(Fault.error_midstream(after_chunks=2))
    with pytest.raises(ollama.ResponseError) as err:
        list(local.chat(model="solo", messages=HI, stream=True))
    assert "incomplete" in err.value.error


def test_list_and_show_name_the_agents_and_models(local):
    names = [m.model for m in local.list().models]
    assert {"coder", "writer", "solo", "fast", "backup", "cloud"} <= set(names)
    shown = local.show("coder")
    assert "completion" in shown.capabilities and "fast" in shown.modelfile
    assert local.show("coder:latest").details.family == "agent"
    with pytest.raises(ollama.ResponseError) as err:
        local.show("nothing")
    assert err.value.status_code == 404


def test_version_is_an_ollama_api_level(gateway):
    assert httpx.get(gateway.url + "/api/version").json()["version"].count(".") == 2


@pytest.mark.parametrize(("message", "field"), [
    ({"role": "assistant", "content": "", "tool_calls": 5}, "messages[0].tool_calls"),
    ({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"role": "robot", "content": "hi"}, "messages[0].role"),
])
def test_a_malformed_message_is_a_400_naming_the_field(gateway, message, field):
    r = httpx.post(gateway.url + "/api/chat", json={"model": "coder", "messages": [message]})
    assert r.status_code == 400 and r.json()["error"].startswith(field) and r.json()["param"] == field


def test_ps_lists_what_answers_now(local):
    """Before: a 404 (chat UIs ask /api/ps which models are loaded)."""
    running = local.ps().models
    assert {"coder", "fast"} <= {m.model for m in running} and all(m.expires_at for m in running)


def test_an_endpoint_not_served_is_a_404_in_ollamas_shape(local):
    """Before: OpenAI's ``{"error": {…}}``, which ollama-js prints as ``[object Object]``."""
    with pytest.raises(ollama.ResponseError) as err:
        local.pull("coder")
    assert err.value.status_code == 404 and err.value.error.startswith("no endpoint POST /api/pull")


def test_stop_options_cut_the_answer_whole_and_streamed(local):
    """Before: ignored — the text past the client's stop came back."""
    whole = local.chat(model="coder", messages=HI, options={"stop": ["m f"]})
    assert whole.message.content == "Hello fro" and whole.done_reason == "stop"
    parts = list(local.generate(model="coder", prompt="hi", stream=True, options={"stop": ["m f"]}))
    assert "".join(p.response for p in parts) == "Hello fro" and parts[-1].done_reason == "stop"
    with pytest.raises(ollama.ResponseError) as bad:
        local.chat(model="coder", messages=HI, options={"stop": [5]})
    assert bad.value.status_code == 400 and "options.stop" in bad.value.error


def test_a_negative_temperature_is_refused_at_once_not_sent_down_the_chain(local, fakes):
    """Ollama's options reached the models unchecked: ``temperature: -5`` went to every model of the chain, each an
    OpenAI-compatible server or Claude that refuses it (the other APIs here refuse it themselves: 0-2)."""
    with pytest.raises(ollama.ResponseError) as bad:
        local.chat(model="coder", messages=HI, options={"temperature": -5})
    assert bad.value.status_code == 400 and "options.temperature" in bad.value.error
    assert fakes[0].requests == []
    assert local.chat(model="coder", messages=HI, options={"temperature": 0}).message.content == "Hello from fast."


def test_fill_in_the_middle_reaches_the_model_with_what_comes_after(local, gateway, fakes):
    """Continue's Ollama provider sends ``prompt`` + ``suffix`` to ``/api/generate`` for autocomplete
    (continuedev/continue core/llm/llms/Ollama.ts, ``_getGenerateOptions(options, prefix, suffix)``). Before: a 400
    (earlier still ignored, and the model continued the prompt as if there were no code after it); then the chat
    model was asked for the gap in words; now the server's own fill-in-the-middle is (test_raw_prompts.py)."""
    answer = local.generate(model="coder", prompt="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))")
    assert answer.response == "Hello from fast." and answer.done
    sent = fakes[0].last_request
    assert sent.path == "/v1/completions"
    assert (sent.json["prompt"], sent.json["suffix"]) == ("def add(a, b):\n    ", "\n\nprint(add(1, 2))")
    r = httpx.post(gateway.url + "/api/chat", json={"model": "coder", "messages": HI, "suffix": "x"}, timeout=15)
    assert r.status_code == 400 and r.json()["error"].startswith("suffix")  # /api/chat has none: not dropped silently


def test_the_answer_echoes_the_name_as_asked_latest_tag_included(local):
    """Ollama answers with ``Model: req.Model`` — the name as the client sent it, a ``:latest`` tag included
    (ollama/ollama server/routes.go, ChatHandler and GenerateHandler; the README: "/api/chat echoes the name asked
    for"). The gateway resolved ``coder:latest`` to ``coder`` and echoed ``coder``, so a client that matches answers
    to the name it asked for (and its ``:latest`` default) saw another model."""
    assert local.chat(model="coder:latest", messages=HI, stream=False).model == "coder:latest"
    assert [p.model for p in local.chat(model="coder:latest", messages=HI, stream=True)][-1] == "coder:latest"
    assert local.generate(model="coder:latest", prompt="hi").model == "coder:latest"
    assert local.chat(model="coder", messages=HI).model == "coder"


def test_durations_are_what_was_measured_so_tokens_per_s_can_be_computed(local, fakes, gateway):
    """Open WebUI and ``ollama run --verbose`` show eval_count / eval_duration as the answer's tokens/s
    (docs.ollama.com/api/usage: eval_duration is "how long it took to generate the output tokens", in ns). A
    buffered answer (no stream, or tools) reached the writer all at once and said ``eval_duration: 0`` — tokens/s
    infinite, or a division by zero; now the router's own measure of the answering model, the log's tok/s."""
    fakes[0].chunk_interval = 0.05  # the fake's answer, piece by piece, 50 ms apart
    fakes[0].answer_tools = False  # offered tools, it answers in text: buffered (tools), then sent as lines
    try:
        whole = local.chat(model="coder", messages=HI)
        replayed = list(local.chat(model="coder", messages=[{"role": "user", "content": "weather?"}],
                                   tools=[WEATHER], stream=True))[-1]
        streamed = list(local.generate(model="coder", prompt="hi", stream=True))[-1]
    finally:
        fakes[0].chunk_interval, fakes[0].answer_tools = 0.0, True
    for done in (whole, replayed, streamed):
        assert done.done and done.eval_count and done.eval_count > 1
        # several pieces 50 ms apart: the generation took at least one interval, the prompt part is not all of it
        assert done.eval_duration >= 40e6, done
        assert done.prompt_eval_duration is not None and done.prompt_eval_duration >= 0
        assert done.prompt_eval_duration + done.eval_duration <= done.total_duration
    # the log's tok/s and the answer's agree: (count - 1) / generation time, count / generation time
    rows = gateway.wait_for(lambda: _logged_rates(gateway, 3))
    answered = whole.eval_count / (whole.eval_duration / 1e9)
    assert any(abs(r * whole.eval_count / (whole.eval_count - 1) - answered) / answered < 0.05 for r in rows), \
        (rows, answered)


def _logged_rates(gateway, n: int) -> list[float] | None:
    import sqlite3

    conn = sqlite3.connect(gateway.runtime.log.path)
    try:
        rates = [r[0] for r in conn.execute("SELECT tokens_per_s FROM requests WHERE tokens_per_s IS NOT NULL")]
    finally:
        conn.close()
    return rates if len(rates) >= n else None
