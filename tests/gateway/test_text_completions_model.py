"""``POST /v1/completions`` on the real embedded model (llama.cpp in-process), through the official ``openai`` SDK's
``client.completions.create`` (OpenAI's "Create completion"; the SDK parses every answer into its ``Completion``
type). Short ``max_tokens``: what is checked is the wire, not the model's wit."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.harness import GatewayServer
from tests.helpers import make_config


@pytest.mark.model
def test_real_model_answers_text_completions_whole_streamed_and_fill_in_the_middle(tmp_path, default_model):
    config = make_config({"qwen": {"provider": "llamacpp", "path": str(default_model), "context": 1024}},
                         {"coder": {"primary": "qwen", "max_tokens": 8}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw, openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0,
                                                    timeout=120) as client:
        done = client.completions.create(model="coder", prompt="Say hi.", max_tokens=4, temperature=0)
        assert done.object == "text_completion" and done.model == "qwen"
        assert done.choices[0].text and done.choices[0].finish_reason in ("stop", "length")
        assert 0 < done.usage.completion_tokens <= 4 and done.usage.prompt_tokens > 0

        chunks = list(client.completions.create(model="coder", prompt="Say hello.", temperature=0, stream=True,
                                                stream_options={"include_usage": True}))
        assert "".join(c.choices[0].text for c in chunks if c.choices).strip()
        assert chunks[-1].choices == [] and 0 < chunks[-1].usage.completion_tokens <= 8  # the agent's max_tokens

        # a fill-in-the-middle request (Continue's shape: prompt + suffix), answered through the chat template
        fim = client.completions.create(model="coder", prompt="def add(a, b):\n    return ", suffix="\n",
                                        max_tokens=6, temperature=0, stop=["\n\n"])
        assert fim.choices[0].finish_reason in ("stop", "length") and 0 < fim.usage.completion_tokens <= 6
