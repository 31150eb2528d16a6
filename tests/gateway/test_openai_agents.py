"""openai-agents with its default model settings (the Responses API) through the gateway (issue 14.10).

Its default model class calls ``POST /v1/responses``; before that endpoint existed the agent got a
bare 404. Here an agent with a function tool runs to its final answer, plain and streamed: the
fake model calls the tool, the agent runs it, sends back the output, and the model answers.
"""

from __future__ import annotations

import asyncio

import pytest
from agents.models.openai_provider import OpenAIProvider
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled  # openai-agents (dev dependency)

CITIES: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    CITIES.append(city)
    return f"9C and rain in {city}"


def run(gateway, stream: bool) -> str:
    async def main() -> str:
        set_tracing_disabled(True)  # no traces to api.openai.com from a test
        client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused-on-loopback", max_retries=0)
        # the default provider and model class, only pointed at the gateway (a model name, no model object)
        config = RunConfig(model_provider=OpenAIProvider(openai_client=client))
        agent = Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model="coder")
        try:
            if stream:
                result = Runner.run_streamed(agent, "weather in Paris?", run_config=config)
                async for _ in result.stream_events():
                    pass
            else:
                result = await Runner.run(agent, "weather in Paris?", run_config=config)
            return str(result.final_output)
        finally:
            await client.close()

    return asyncio.run(main())


@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_streamed"])
def test_agent_with_a_tool_runs_to_its_answer(gateway, fakes, stream):
    CITIES.clear()
    assert run(gateway, stream) == "Hello from fast."
    assert CITIES == ["Paris"]  # the tool call came back as a real function_call item
    paths = [r.path for r in fakes[0].requests]
    assert paths == ["/v1/chat/completions", "/v1/chat/completions"]
    last = fakes[0].last_request.json["messages"]
    assert last[-1]["role"] == "tool" and "9C and rain in Paris" in last[-1]["content"]


def test_default_model_class_is_the_responses_api():
    """Guards the premise: if openai-agents' default stops being the Responses API, this test says so."""
    assert isinstance(OpenAIProvider(api_key="x").get_model("coder"), OpenAIResponsesModel)
