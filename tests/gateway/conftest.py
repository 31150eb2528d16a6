"""Fixtures: fake backends on loopback and the real gateway in front of them."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.gateway.harness import GatewayServer, fake_config

ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"


@pytest.fixture(scope="module")
def backends() -> Iterator[tuple[OpenAIServer, OllamaServer, AnthropicServer]]:
    with OpenAIServer(reply_text="Hello from fast.", tool_arguments={"city": "Paris"}) as oa, \
            OllamaServer(reply_text="Hello from backup.", tool_arguments={"city": "Oslo"}) as ol, \
            AnthropicServer(api_key=ANTHROPIC_KEY, reply_text="Hello from cloud.") as an:
        yield oa, ol, an


@pytest.fixture
def fakes(backends):
    for server in backends:
        server.reset()
    return backends


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    """The official SDK on the gateway, its automatic retries off (a test counts every request)."""
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused-on-loopback", max_retries=0, timeout=15)


@pytest.fixture
def gateway(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url)) as gw:
        yield gw
