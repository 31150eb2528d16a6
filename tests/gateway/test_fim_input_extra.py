"""Other files as context for a fill-in-the-middle reach llama-server's ``/infill`` as its ``input_extra``.

llama-server's ``/infill`` takes ``input_extra``, an array of ``{"filename": string, "text": string}`` (the filename
optional), and puts the files before the prefix in the model's repository-level FIM tokens (server.cpp
handle_infill's checks, quoted in tests/fakes/llama_server.py; the editor plugins that speak ``/infill`` send their
ring buffer of other files' chunks there). The gateway took a FIM request to ``/infill`` but dropped the field:
the model completed without the files. No OpenAI or Mistral client sends the field on ``/v1/completions`` or
``/v1/fim/completions``: it is taken there in llama-server's own shape (``extra_body`` in the ``openai`` SDK), so a
client that has the files can pass them through the gateway. Each test failed on the old code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import OllamaServer
from tests.fakes.llama_server import LlamaServer
from tests.gateway.harness import GatewayServer, make_config

EXTRA = [{"filename": "src/math_utils.py", "text": "def add(a, b):\n    return a + b\n"},
         {"text": "PI = 3.14159\n"}]


def _config(tmp_path, llama_url: str, ollama_url: str) -> Any:
    models = {"llama": {"provider": "openai", "endpoint": llama_url, "model": "qwen2.5-coder", "max_concurrent": 2},
              "backup": {"provider": "ollama", "endpoint": ollama_url, "model": "backup-model", "max_concurrent": 2}}
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 5, "idle": 5, "total": 20},
                "retries": {"attempts": 0}}
    return make_config(models, {"coder": {"primary": "llama", "fallbacks": ["backup"]}}, defaults=defaults,
                       log={"path": str(tmp_path / "log.db")})


@pytest.fixture
def servers() -> Iterator[tuple[LlamaServer, OllamaServer]]:
    with LlamaServer() as llama, OllamaServer(reply_text="[ollama]") as ollama:
        yield llama, ollama


def test_input_extra_reaches_infill(tmp_path, servers):
    llama, ollama = servers
    with GatewayServer(_config(tmp_path, llama.url, ollama.url)) as gw, \
            openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=15) as sdk:
        for _ in range(2):  # the first learns /infill (the suffix refused on /v1/completions), the second goes there
            done = sdk.completions.create(model="coder", prompt="x = add(", suffix=")", max_tokens=16,
                                          extra_body={"input_extra": EXTRA})
            assert done.choices[0].text.startswith("<x = add(|)>"[:8])
        sent = [r.json for r in llama.requests_to("/infill")]
        assert len(sent) == 2
        expected = [{"filename": "src/math_utils.py", "text": EXTRA[0]["text"]},
                    {"filename": "", "text": "PI = 3.14159\n"}]
        assert [s["input_extra"] for s in sent] == [expected, expected]
        fim = httpx.post(gw.url + "/v1/fim/completions", timeout=15,
                         json={"model": "coder", "prompt": "y = ", "suffix": "\n", "input_extra": EXTRA})
        assert fim.status_code == 200, fim.text
        assert llama.requests_to("/infill")[-1].json["input_extra"] == expected
        assert ollama.requests == []


@pytest.mark.parametrize(("extra", "field"), [("src/a.py", "input_extra: "),
                                              ([{"filename": "a.py"}], "input_extra[0].text"),
                                              ([{"text": 7}], "input_extra[0].text")])
def test_a_bad_input_extra_is_a_400_naming_it(tmp_path, servers, extra, field):
    """Refused at the gateway, in the client's error shape, before any model is asked (llama-server refuses the same
    shapes; a chain that falls back would send them on to the next model instead)."""
    llama, ollama = servers
    with GatewayServer(_config(tmp_path, llama.url, ollama.url)) as gw:
        r = httpx.post(gw.url + "/v1/fim/completions", timeout=15,
                       json={"model": "coder", "prompt": "y = ", "suffix": "\n", "input_extra": extra})
        assert r.status_code == 400, r.text
        assert field in r.text
        assert llama.requests == [] and ollama.requests == []
