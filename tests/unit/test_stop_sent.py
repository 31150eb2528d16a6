"""A client's stop sequences sent to each backend in its own form (ChatRequest.stop), so the model stops there
instead of writing on to max_tokens (gateway/stops.py). The forms, from each API's reference:

- OpenAI's chat completions ``stop``: "Up to 4 sequences where the API will stop generating further tokens" (the
  OpenAPI spec's CreateChatCompletionRequestStop); its reasoning models refuse the field with 400 "Unsupported
  parameter: 'stop' is not supported with this model." (crewAIInc/crewAI#2738, langgenius/dify#18971);
- Ollama's ``options.stop`` and llama-cpp-python's / llama-server's ``stop`` (a list of strings);
- Anthropic's ``stop_sequences``, which refuses a whitespace-only sequence ("stop_sequences: each stop sequence must
  contain non-whitespace", BerriAI/litellm#3286 — a client's ``stop: ["\\n"]``).
"""

from __future__ import annotations

import orjson
from tests.helpers import make_config

from modelyard.gateway.ollama_wire import OllamaBody
from modelyard.gateway.ollama_wire import to_chat_request as ollama_request
from modelyard.gateway.text_completions_wire import CompletionBody
from modelyard.gateway.text_completions_wire import to_chat_request as text_request
from modelyard.gateway.wire import parse_body, to_chat_request
from modelyard.providers import build_provider
from modelyard.providers.sampling import put_native, put_sampling, refused_fields, sampled
from modelyard.types import ChatRequest, Message

REACT = ["\nObservation:"]


def _chat(**fields: object) -> ChatRequest:
    return ChatRequest([Message("user", "hi")], **fields)  # type: ignore[arg-type]


def test_each_inbound_api_carries_the_clients_stop_sequences() -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    assert to_chat_request(parse_body(orjson.dumps({**body, "stop": "\n"}))).stop == ["\n"]
    assert to_chat_request(parse_body(orjson.dumps({**body, "stop": [*REACT, ""]}))).stop == REACT
    assert to_chat_request(parse_body(orjson.dumps(body))).stop is None
    assert text_request(CompletionBody.model_validate({"model": "m", "prompt": "def f(", "stop": ["\n\n"]})).stop \
        == ["\n\n"]
    ollama = OllamaBody.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                        "options": {"stop": ["</s>", "\n"]}})
    assert ollama_request(ollama).stop == ["</s>", "\n"]


def test_an_openai_compatible_body_gets_at_most_four() -> None:
    body: dict[str, object] = {}
    put_sampling(_chat(stop=["a", "b", "c", "d", "e"]), body, frozenset())
    assert body == {"stop": ["a", "b", "c", "d"]} and sampled(_chat(stop=REACT))


def test_openais_refusal_of_stop_is_learned_as_a_sampling_field() -> None:
    message = "Unsupported parameter: 'stop' is not supported with this model."
    assert refused_fields(message, {"model": "o3", "stop": REACT}) == {"stop"}
    body: dict[str, object] = {}
    put_sampling(_chat(stop=REACT), body, frozenset({"stop"}))
    assert "stop" not in body


def test_ollama_and_llama_cpp_get_stop_under_its_own_name() -> None:
    options: dict[str, object] = {}
    put_native(_chat(stop=REACT), options)
    assert options == {"stop": REACT}


def test_the_embedded_model_is_asked_to_stop() -> None:
    config = make_config({"m": {"provider": "llamacpp", "path": "/nonexistent.gguf"}}, {"chat": {"primary": "m"}})
    provider = build_provider("m", config.models["m"])
    assert provider._kwargs(_chat(stop=REACT))["stop"] == REACT  # type: ignore[attr-defined]


def test_claude_gets_stop_sequences_but_no_whitespace_only_one() -> None:
    config = make_config({"c": {"provider": "anthropic", "model": "claude-sonnet-4-5"}},
                         {"chat": {"primary": "c"}})
    provider = build_provider("c", config.models["c"])
    body = provider.body  # type: ignore[attr-defined]
    assert body(_chat(stop=["\n", "\nObservation:"]))["stop_sequences"] == ["\nObservation:"]
    assert "stop_sequences" not in body(_chat(stop=["\n"]))
