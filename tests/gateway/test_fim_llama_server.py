"""Fill-in-the-middle through the gateway to llama.cpp's server, whose ``/v1/completions`` refuses ``suffix`` and whose
own ``/infill`` fills the gap (tests/fakes/llama_server.py cites the server's source for each shape).

The clients: Continue's ``openai`` provider (``/v1/fim/completions``, core/llm/llms/OpenAI.ts ``_streamFim``), the
``openai`` SDK's ``completions.create(prompt=…, suffix=…)`` (tabby, llm.nvim, minuet-ai's openai_fim_compatible), and
Ollama's ``/api/generate`` with ``suffix`` (Continue's Ollama provider).
Was: the 400 "Unsupported param: suffix" was a bad_request on every keystroke: the llama-server never filled a gap
(the next model in the chain did, if there was one), and a chain ending on it told the client its request was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from modelyard.ledger import connect
from tests.fakes import OllamaServer
from tests.fakes.llama_server import LlamaServer
from tests.gateway.harness import GatewayServer, make_config

FIM = {"model": "coder", "prompt": "def add(a, b):\n    return ", "suffix": "\nprint(add(1, 2))",
       "max_tokens": 64, "temperature": 0.01, "stop": ["\n\n"], "stream": True}
FILLED = "<def add(a, b):\n    return |\nprint(add(1, 2))>"


def _config(tmp_path, llama_url: str, ollama_url: str) -> Any:
    models = {"llama": {"provider": "openai", "endpoint": llama_url, "model": "qwen2.5-coder", "max_concurrent": 2},
              "backup": {"provider": "ollama", "endpoint": ollama_url, "model": "backup-model", "max_concurrent": 2}}
    agents = {"coder": {"primary": "llama", "fallbacks": ["backup"]}}
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 5, "idle": 5, "total": 20},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")})


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer(reply_text=lambda body: f"[ollama filled {body.get('suffix')!r}]") as server:
        yield server


def _rows(gw: GatewayServer) -> list[tuple[str, str]]:
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT model, outcome FROM requests ORDER BY ts")]
    finally:
        conn.close()


@pytest.mark.parametrize(("prefix", "path"), [("", "/v1"), ("", ""), ("/llm", "/llm/v1")],
                         ids=["endpoint-with-v1", "bare-endpoint", "api-prefix"])
def test_continues_fim_reaches_llama_servers_infill(tmp_path, ollama, prefix, path):
    with LlamaServer(api_prefix=prefix) as llama:
        endpoint = llama.url + path
        with GatewayServer(_config(tmp_path, endpoint, ollama.url)) as gw:
            with httpx.stream("POST", gw.url + "/v1/fim/completions", json=FIM, timeout=15) as r:
                assert r.status_code == 200, r.read()
                payloads = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
            assert payloads[-1] == "[DONE]"
            chunks = [json.loads(p) for p in payloads[:-1]]
            assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == FILLED
            assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
            # the usage is the server's own count from its last event, not an estimate (the fake: 4 characters a token)
            assert chunks[-1]["usage"]["completion_tokens"] == -(-len(FILLED) // 4)
            sent = llama.requests_to(prefix + "/infill")[-1].json
            assert (sent["input_prefix"], sent["input_suffix"]) == (FIM["prompt"], FIM["suffix"])
            assert sent["n_predict"] == 64 and sent["stream"] is True
            # learned: the next FIM request goes to /infill at once, /v1/completions not asked again
            asked = len(llama.requests_to(prefix + "/v1/completions"))
            whole = httpx.post(gw.url + "/v1/fim/completions", json={**FIM, "stream": False}, timeout=15)
            assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["content"] == FILLED
            assert len(llama.requests_to(prefix + "/v1/completions")) == asked == 1
            assert len(llama.requests_to(prefix + "/infill")) == 2
            # a prompt without a suffix still goes to /v1/completions (llama-server takes it there)
            plain = httpx.post(gw.url + "/v1/completions", json={"model": "coder", "prompt": "The sky is"},
                               timeout=15)
            assert plain.status_code == 200 and len(llama.requests_to(prefix + "/v1/completions")) == 2
            assert ollama.requests == []
            assert [outcome for _, outcome in _rows(gw)] == ["ok", "ok", "ok"]


def test_the_servers_token_counts_and_budget_are_kept(tmp_path, ollama):
    with LlamaServer() as llama, GatewayServer(_config(tmp_path, llama.url, ollama.url)) as gw, \
            openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=15) as sdk:
        done = sdk.completions.create(model="coder", prompt="x = ", suffix=" + 1", max_tokens=2)
        assert done.choices[0].text == "<x = | + 1>"[:8] and done.choices[0].finish_reason == "length"
        assert done.usage is not None and done.usage.completion_tokens == 2
        assert done.usage.prompt_tokens == llama.requests_to("/infill")[-1].json["input_prefix"].count(" ") + 5


def test_a_model_without_fim_tokens_hands_the_gap_to_the_next_model(tmp_path, ollama):
    """501 "Infill is not supported by this model": the request's, not the model's health — the chain moves on, and
    the model keeps serving chats."""
    with LlamaServer(fim_tokens=False) as llama, GatewayServer(_config(tmp_path, llama.url, ollama.url)) as gw:
        for _ in range(2):
            r = httpx.post(gw.url + "/v1/fim/completions", json={**FIM, "stream": False}, timeout=15)
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == f"[ollama filled {FIM['suffix']!r}]"
        assert len(llama.requests_to("/infill")) == 2  # asked each time: the server may be given a FIM model
        chat = httpx.post(gw.url + "/v1/chat/completions", timeout=15,
                          json={"model": "coder", "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 200 and chat.json()["model"] == "llama"
        conn = connect(gw.runtime.log_path, readonly=True)
        try:
            failed = [tuple(r) for r in conn.execute(
                "SELECT model, outcome, reason, detail FROM attempts WHERE outcome != 'ok' ORDER BY ts, seq")]
        finally:
            conn.close()
        assert [f[:3] for f in failed] == [("llama", "fallback", "bad_request")] * 2
        assert "no fill-in-the-middle tokens" in failed[0][3]


def test_a_server_refusing_suffix_without_infill_is_refused_as_the_requests(tmp_path, ollama):
    """vLLM: 400 "suffix is not currently supported" and no ``/infill`` (a 404): the next model fills the gap, and the
    404 does not read as a missing model (which would cool it for every request). A guard of the new path: the old
    code moved on at the 400 already."""
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    class VLLM(LlamaServer):
        def routes(self) -> list[Any]:
            async def refuse(request: Any) -> Any:
                if "suffix" not in await request.json():
                    return await self._text_completions(request)
                await self.record(request)
                return JSONResponse({"object": "error", "message": "suffix is not currently supported",
                                     "type": "BadRequestError", "param": None, "code": 400}, status_code=400)
            return [Route("/v1/completions", refuse, methods=["POST"])]

    with VLLM() as vllm, GatewayServer(_config(tmp_path, vllm.url + "/v1", ollama.url)) as gw:
        r = httpx.post(gw.url + "/v1/completions", json={**FIM, "stream": False}, timeout=15)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["text"] == f"[ollama filled {FIM['suffix']!r}]"
        assert [model for model, _ in _rows(gw)] == ["backup"]
        plain = httpx.post(gw.url + "/v1/completions", json={"model": "coder", "prompt": "The sky is"}, timeout=15)
        assert plain.status_code == 200 and plain.json()["model"] == "llama"
