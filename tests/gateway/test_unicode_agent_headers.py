"""An agent named outside ASCII (写作, écrivain) at the gateway: who answered was sent as ``x-modelyard-agent: ??`` —
lossy, and two such agents read alike. HTTP header values are ISO-8859-1 at most (RFC 9110 §5.5: recipients treat
other octets as opaque data) and uvicorn refuses what it cannot encode, so the value is percent-encoded UTF-8, the
escaping RFC 3986 §2.1 defines and ``urllib.parse.unquote`` / JavaScript's ``decodeURIComponent`` reverse."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import openai

from tests.fakes import OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config


def test_an_agent_named_outside_ascii_is_named_in_the_headers_so_a_client_reads_it_back(tmp_path: Path) -> None:
    with OpenAIServer(reply_text="done") as backend:
        cfg = make_config({"fast": {"provider": "openai", "model": "fast-model", "endpoint": backend.url}},
                          {"写作": {"primary": "fast"}, "写诗": {"primary": "fast"}, "écrivain": {"primary": "fast"},
                           "chat": {"primary": "fast"}},
                          log={"path": str(tmp_path / "log.sqlite3")})
        with GatewayServer(cfg) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
            said = {}
            for name in ("写作", "写诗", "écrivain", "chat"):
                raw = client.chat.completions.with_raw_response.create(
                    model=name, messages=[{"role": "user", "content": "hi"}])
                assert raw.parse().choices[0].message.content == "done"
                said[name] = raw.headers["x-modelyard-agent"]
            streamed = client.chat.completions.with_raw_response.create(
                model="写作", stream=True, messages=[{"role": "user", "content": "hi"}])
            streamed_agent = streamed.headers["x-modelyard-agent"]
            streamed.parse().close()
    assert said["写作"] == "%E5%86%99%E4%BD%9C" and said["écrivain"] == "%C3%A9crivain", said
    assert {name: unquote(value) for name, value in said.items()} == {n: n for n in said}, said
    assert said["chat"] == "chat"  # ASCII as it was
    assert unquote(streamed_agent) == "写作", streamed_agent
