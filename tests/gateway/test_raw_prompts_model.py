"""A prompt reaches the real embedded model (llama-cpp-python's ``Llama.create_completion``) as it is, with no chat
template around it: through the official ``openai`` SDK's ``completions.create`` (OpenAI's "Create completion") and
Ollama's ``/api/generate`` with ``raw: true`` (docs.ollama.com/api/generate).

The prompt's token count tells: Qwen2.5's chat template wraps a user's message in ``<|im_start|>system`` … (its default
system prompt, "You are Qwen, created by Alibaba Cloud…") and ``<|im_start|>user`` markers — some 30 tokens before a
word of the prompt — while the prompt alone is a handful."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

FIM = "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>"


@pytest.mark.model
def test_the_embedded_model_continues_the_prompt_itself(tmp_path, default_model):
    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"coder": {"primary": "qwen", "max_tokens": 8}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw, openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0,
                                                    timeout=120) as client:
        done = client.completions.create(model="coder", prompt="The capital of France is", max_tokens=3,
                                         temperature=0)
        assert done.usage.prompt_tokens <= 8, done.usage  # 5 tokens; through the chat template, ~30
        assert "Paris" in done.choices[0].text and 0 < done.usage.completion_tokens <= 3

        batch = client.completions.create(model="coder", prompt=["1, 2, 3,", "a, b, c,"], max_tokens=2,
                                          temperature=0)
        assert [c.index for c in batch.choices] == [0, 1]
        assert "4" in batch.choices[0].text and "d" in batch.choices[1].text

        raw = httpx.post(gw.url + "/api/generate", json={"model": "coder", "prompt": FIM, "raw": True,
                                                         "stream": False, "options": {"num_predict": 6,
                                                                                      "temperature": 0}},
                         timeout=120).json()
        assert raw["done"] and raw["prompt_eval_count"] <= 20, raw  # the FIM tokens are one token each
        assert "a + b" in raw["response"] or "a+b" in raw["response"], raw
