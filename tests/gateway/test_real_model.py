"""The real embedded model (llama.cpp in-process) served through the gateway to the openai SDK."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.harness import GatewayServer
from tests.helpers import make_config


@pytest.mark.model
def test_real_model_streams_through_the_gateway(tmp_path, default_model):
    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"chat": {"primary": "qwen", "max_tokens": 8}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=120)
        chunks = list(client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Say hello."}], temperature=0, stream=True,
            stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip() and {c.model for c in chunks} == {"qwen"}
        assert 0 < chunks[-1].usage.completion_tokens <= 8
        done = client.chat.completions.create(model="qwen", messages=[{"role": "user", "content": "Say hi."}],
                                              max_tokens=4, temperature=0)
        assert done.choices[0].message.content and done.choices[0].finish_reason in ("stop", "length")


@pytest.mark.model
def test_real_model_answers_the_anthropic_sdk(tmp_path, default_model):
    """Anthropic's SDK (as Claude Code would call it, ``ANTHROPIC_BASE_URL``) on the embedded model."""
    import anthropic

    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"chat": {"primary": "qwen", "max_tokens": 8}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw:
        claude = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, timeout=120)
        with claude.messages.stream(model="chat", max_tokens=8,
                                    messages=[{"role": "user", "content": "Say hello."}]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text.strip() and final.content[0].text == text and final.model == "qwen"
        assert final.stop_reason in ("end_turn", "max_tokens") and 0 < final.usage.output_tokens <= 8


@pytest.mark.model
def test_real_model_answers_the_ollama_client(tmp_path, default_model):
    """The ``ollama`` library (as a tool that speaks only Ollama's API would call it) on the embedded model."""
    import ollama

    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"chat": {"primary": "qwen", "max_tokens": 8}}, log={"path": str(tmp_path / "log.db")})
    # the client has no finalizer: unclosed, its socket was left open for the collector (a ResourceWarning)
    with GatewayServer(config) as gw, ollama.Client(host=gw.url, timeout=120) as local:
        parts = list(local.chat(model="chat", messages=[{"role": "user", "content": "Say hello."}], stream=True,
                                options={"temperature": 0}))
        text = "".join(p.message.content for p in parts)
        assert text.strip() and parts[-1].done and 0 < parts[-1].eval_count <= 8
        assert local.generate(model="qwen", prompt="Say hi.", options={"num_predict": 4}).response


@pytest.mark.model
def test_real_model_follows_a_json_schema_from_the_sdks_parse(tmp_path, default_model):
    """Structured output as libraries ask for it (a JSON schema in ``response_format``): the schema reaches
    llama.cpp as a grammar, so even the 0.5B model answers with exactly these fields. Before, the gateway sent
    'some JSON' and the model chose its own keys."""
    from pydantic import BaseModel

    class Capital(BaseModel):
        country: str
        capital_city: str

    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"chat": {"primary": "qwen", "max_tokens": 40}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=120)
        done = client.chat.completions.parse(model="chat", temperature=0, response_format=Capital, messages=[
            {"role": "user", "content": "What is the capital of France? Answer in JSON."}])
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, Capital) and parsed.capital_city


@pytest.mark.model
def test_real_model_stops_at_the_clients_stop_sequence(tmp_path, default_model):
    """``stop=["\\n"]`` (a one-line answer, as an autocomplete's) on a request for a long list: the model itself
    stops at the first newline (llama-cpp-python's ``stop``), not at max_tokens with the text cut at the gateway.
    Before, the model wrote the whole list (the budget's tokens counted in usage) and the client got one line."""
    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"chat": {"primary": "qwen", "max_tokens": 160}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=300)
        done = client.chat.completions.create(
            model="chat", max_tokens=160, temperature=0, stop=["\n"],
            messages=[{"role": "user", "content": "Write a numbered list of 30 fruits, one fruit per line."}])
        choice = done.choices[0]
        assert choice.finish_reason == "stop" and "\n" not in (choice.message.content or "")
        # the first line is a few tokens; a model that wrote on to the list's end (or the budget) counts ~160
        assert 0 < done.usage.completion_tokens < 40, done.usage


@pytest.mark.model
def test_real_model_stream_is_closed_at_a_stop_sequence_it_was_not_sent(tmp_path, default_model):
    """The Messages API's ``stop_sequences`` are sent to no backend (the answer names the one met, which llama.cpp
    does not say): the gateway cuts the text, and the router closes the model's stream there (router/stop_watch.py),
    streamed and whole — the embedded model's worker stops. Before, the model wrote the whole list (~160 tokens, the
    slot held all along) and the client got one line."""
    import anthropic

    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"chat": {"primary": "qwen", "max_tokens": 160}}, log={"path": str(tmp_path / "log.db")})
    ask = [{"role": "user", "content": "Write a numbered list of 30 fruits, one fruit per line."}]
    with GatewayServer(config) as gw:
        claude = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, timeout=300)
        with claude.messages.stream(model="chat", max_tokens=160, stop_sequences=["\n"], messages=ask,
                                    extra_body={"temperature": 0}) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        whole = claude.messages.create(model="chat", max_tokens=160, stop_sequences=["\n"], messages=ask,
                                       extra_body={"temperature": 0})
    for answer in (final, whole):
        assert (answer.stop_reason, answer.stop_sequence) == ("stop_sequence", "\n"), answer
        assert 0 < answer.usage.output_tokens < 40, answer.usage  # the first line, not the list
    assert text.strip() and "\n" not in text
