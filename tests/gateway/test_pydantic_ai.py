"""pydantic-ai agents on the gateway through each of its wire APIs: its Anthropic model, its OpenAI
Responses model, its OpenAI chat model and its Ollama provider (Ollama's OpenAI-compatible ``/v1``, which
the gateway serves as its own chat completions). Text, streaming, a tool loop, structured output (as a
tool, its default, and natively: a JSON schema in the request), errors."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.agent import AgentRunResult
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ToolReturnPart
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.ollama import OllamaProvider
from pydantic_ai.providers.openai import OpenAIProvider

from tests.gateway.clients import TEXT, backends, logged  # noqa: F401  (backends: this module's fixture)

KINDS = ["anthropic", "responses", "chat", "ollama"]


class Weather(BaseModel):
    city: str


def model(kind: str, url: str, name: str = "coder") -> Model:
    if kind == "anthropic":
        return AnthropicModel(name, provider=AnthropicProvider(base_url=url, api_key="unused"))
    if kind == "ollama":
        return OpenAIChatModel(name, provider=OllamaProvider(base_url=url + "/v1"))
    provider = OpenAIProvider(base_url=url + "/v1", api_key="unused")
    if kind == "responses":
        return OpenAIResponsesModel(name, provider=provider)
    return OpenAIChatModel(name, provider=provider)


def run(agent: Agent, prompt: str) -> AgentRunResult:
    """One run inside ``async with agent``, which pydantic-ai documents as what closes the provider's HTTP client.
    ``run_sync`` (no ``async with``) left that client's sockets to the collector, on a loop of its own that it sets
    as the thread's and never closes: ResourceWarnings for the sockets, their transports and the loop."""

    async def go() -> AgentRunResult:
        async with agent:
            return await agent.run(prompt)

    return asyncio.run(go())


async def _streamed(agent: Agent) -> tuple[list[str], int]:
    async with agent, agent.run_stream("hi") as run:
        parts = [t async for t in run.stream_text(delta=True)]
        return parts, run.usage.output_tokens


@pytest.mark.parametrize("kind", KINDS)
def test_text_and_streaming(kind, gateway, tmp_path):
    agent = Agent(model(kind, gateway.url))
    ran = run(agent, "hi")
    assert ran.output == TEXT and ran.usage.output_tokens > 0
    parts, used = asyncio.run(_streamed(agent))
    assert "".join(parts) == TEXT and used > 0
    assert logged(tmp_path) == [("coder", "fast", "ok")] * 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_tool_loop(kind, gateway, fakes):
    agent = Agent(model(kind, gateway.url))

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"9C and rain in {city}"

    ran = run(agent, "weather in Paris?")
    returned = [p for m in ran.all_messages() for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    assert ran.output == TEXT and [r.content for r in returned] == ["9C and rain in Paris"]
    assert "9C and rain in Paris" in str(fakes[0].last_request.json["messages"][-1])


@pytest.mark.parametrize("kind", KINDS)
def test_structured_output_as_a_tool(kind, gateway):
    assert run(Agent(model(kind, gateway.url), output_type=Weather), "weather?").output == Weather(city="Paris")


@pytest.mark.parametrize("kind", ["responses", "chat", "ollama"])
def test_native_structured_output_passes_the_schema_on(kind, gateway, fakes):
    """Before: the gateway took the JSON schema as 'some JSON' and dropped it; the model answered free text."""
    agent = Agent(model(kind, gateway.url), output_type=NativeOutput(Weather))
    assert run(agent, "weather?").output == Weather(city="Paris")
    sent = fakes[0].last_request.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["required"] == ["city"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_model_is_a_404(kind, gateway):
    with pytest.raises(ModelHTTPError) as err:
        run(Agent(model(kind, gateway.url, "nope")), "hi")
    assert err.value.status_code == 404 and "coder" in str(err.value.body)
