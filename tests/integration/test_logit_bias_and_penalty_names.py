"""``logit_bias`` refused by a server, left out by a backend that has none, mapped for the embedded llama.cpp; and the
repetition penalty refused under one of its two names.

A refusal of ``logit_bias`` is learned as any sampling field's (providers/sampling.py): OpenAI's reasoning models
refuse it (the reasoning guide lists it among the parameters they do not take; their words, "Unsupported parameter:
'…' is not supported with this model.", are test_sampling_refused.py's ``o_series``). vLLM refuses the *value* when a
token id is past the model's vocabulary — "token_id(s) [151936] in logit_bias contain out-of-vocab token ids.
Vocabulary size: 151936" (vLLM's ``VLLMValidationError``, parameter ``logit_bias``) —, which is that request's only: a
chain's fallback has another tokenizer than the client's model.

The penalty goes as ``repeat_penalty`` and as ``repetition_penalty`` (each server reads its own name and ignores the
other's). A strict server that refuses one name — a pydantic ``extra="forbid"`` request model's 422 ``extra_forbidden``
(test_sampling_refused.py's ``extra_forbidden``) whose own field is ``repetition_penalty`` — took the penalty under the
other, and the routing log said "repeat_penalty left out": untrue. These tests failed on the old code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fakes import OpenAIServer
from tests.integration.test_sampling_refused import (
    REPLY,
    RefusingServer,
    _routed,
    _sent,
    extra_forbidden,
    o_series,
)

from modelyard.config.schema import ModelConfig
from modelyard.types import ChatRequest, Message

ASK = [Message("user", "Say hello")]


def vllm_out_of_vocab() -> tuple[str, int, Any]:
    """vLLM's 400 for a token id past the vocabulary (its ``ErrorResponse``: ``{"object": "error", "message", "type":
    "BadRequestError", "param", "code": 400}``)."""
    return "logit_bias", 400, lambda _: {"object": "error", "type": "BadRequestError", "param": "logit_bias",
                                         "code": 400, "message": "token_id(s) [151936] in logit_bias contain "
                                         "out-of-vocab token ids. Vocabulary size: 151936"}


async def test_a_server_that_refuses_logit_bias_is_asked_without_it_learned(tmp_path: Path) -> None:
    asked = ChatRequest(ASK, logit_bias={"50256": -100.0})
    with RefusingServer([o_series("logit_bias")]) as server, OpenAIServer(reply_text="backup") as backup:
        routed, cooling, rows = await _routed(server, backup, tmp_path, asked, asked)
        sent = _sent(server, ("logit_bias",))
    assert [r.response.text for r in routed] == [REPLY, REPLY] and cooling == 0
    assert sent == [["logit_bias"], [], []]
    assert rows == [("primary", "ok", None, "logit_bias left out: the model's server refuses it")] * 2


async def test_vllms_out_of_vocabulary_refusal_is_of_that_request_only(tmp_path: Path) -> None:
    asked = ChatRequest(ASK, logit_bias={"151936": 5.0})
    with RefusingServer([vllm_out_of_vocab()]) as server, OpenAIServer(reply_text="backup") as backup:
        routed, _, rows = await _routed(server, backup, tmp_path, asked, asked)
        sent = _sent(server, ("logit_bias",))
    assert [r.response.text for r in routed] == [REPLY, REPLY]
    assert sent == [["logit_bias"], [], ["logit_bias"], []]  # asked with it again: the next request may fit
    assert rows[0][3].startswith("logit_bias left out of this request: the model's server refused the value "
                                 "(HTTP 400 BadRequestError: token_id(s) [151936]")
    assert rows[1][3] == rows[0][3]


async def test_a_penalty_refused_under_one_name_is_said_sent_under_the_other(tmp_path: Path) -> None:
    asked = ChatRequest(ASK, repeat_penalty=1.1)
    with RefusingServer([extra_forbidden("repeat_penalty", wrapped=False)]) as server, \
            OpenAIServer(reply_text="backup") as backup:
        routed, _, rows = await _routed(server, backup, tmp_path, asked, asked)
        sent = _sent(server, ("repeat_penalty", "repetition_penalty"))
    assert [r.response.text for r in routed] == [REPLY, REPLY]
    assert sent == [["repeat_penalty", "repetition_penalty"], ["repetition_penalty"], ["repetition_penalty"]]
    note = "repeat_penalty sent as repetition_penalty only: the model's server refuses the name repeat_penalty"
    assert rows == [("primary", "ok", None, note)] * 2


async def test_a_penalty_value_refused_under_one_name_goes_under_neither(tmp_path: Path) -> None:
    """vLLM's words for a value out of its range ("repetition_penalty must be in (0, 2], got 3.0.", SamplingParams'
    check) refuse the penalty, not a name: asked again with it under the other name, the server that takes both
    (LM Studio's) refused it again, or one that ignores it answered without the penalty while the row said it went."""
    refusal = ("repetition_penalty", 400, lambda v: {"object": "error", "type": "BadRequestError", "code": 400,
                                                      "message": f"repetition_penalty must be in (0, 2], got {v}."})
    asked = ChatRequest(ASK, repeat_penalty=3.0)
    with RefusingServer([refusal]) as server, OpenAIServer(reply_text="backup") as backup:
        routed, _, rows = await _routed(server, backup, tmp_path, asked)
        sent = _sent(server, ("repeat_penalty", "repetition_penalty"))
    assert [r.response.text for r in routed] == [REPLY]
    assert sent == [["repeat_penalty", "repetition_penalty"], []]
    assert rows[0][3].startswith("repeat_penalty, repetition_penalty left out of this request")


@pytest.mark.parametrize(("provider", "api"), [("ollama", "Ollama's API"), ("anthropic", "Anthropic's API")])
def test_a_backend_with_no_logit_bias_says_it_went_unsent(provider: str, api: str) -> None:
    from modelyard.providers import build_provider

    model = build_provider("m", ModelConfig.model_validate({"provider": provider, "model": "x"}))
    assert model.left_out(ChatRequest(ASK, logit_bias={"1": 2.0})) == f"logit_bias left out: {api} takes none"
    assert model.left_out(ChatRequest(ASK)) == ""  # guard (right before too): nothing given, nothing said


@pytest.mark.model
def test_the_embedded_models_answer_follows_the_bias(tmp_path: Path, default_model: Path) -> None:
    """llama-cpp-python's ``create_chat_completion(logit_bias: Dict[int, float])``: the keys as token ids, a key that
    is none of the model's (text, an id past its vocabulary — its logit processor would index past the scores and
    fail the answer) left out, and the route says so. Was: ignored, the model said what it would have said anyway."""
    import llama_cpp
    import openai
    from tests.gateway.harness import GatewayServer
    from tests.helpers import make_config

    vocab = llama_cpp.Llama(str(default_model), vocab_only=True, verbose=False)
    banana = vocab.tokenize(b" banana", add_bos=False)
    assert len(banana) == 1
    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"chat": {"primary": "qwen"}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=120)
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "Say hello."}], max_tokens=1, temperature=0,
            logit_bias={str(banana[0]): 100, "hello": 5, "99999999": 5})
    assert raw.parse().choices[0].message.content == " banana"
    assert "logit_bias: 2 of its 3 keys left out, no token ids of the model" in raw.headers["x-modelyard-route"]
