"""Structured output from the clients tested elsewhere (their plain paths are in test_openai_sdk.py,
test_langchain.py, test_openai_agents.py): each sends a JSON schema, and gets JSON only if the gateway
passed it on to the model (before, it sent 'some JSON' and the schema was lost)."""

from __future__ import annotations

import asyncio

from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel

from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
from tests.gateway.clients import backends  # noqa: F401  (this module's fixture: JSON only for a schema)


class Weather(BaseModel):
    city: str


def test_the_openai_sdks_responses_parse(gateway):
    with OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=15) as client:
        assert client.responses.parse(model="coder", input="weather?", text_format=Weather).output_parsed == \
            Weather(city="Paris")


def test_langchain_chat_openai_with_structured_output(gateway):
    for responses in (False, True):  # json_schema is its default method, on both APIs
        llm = ChatOpenAI(model="coder", base_url=gateway.url + "/v1", api_key="unused", max_retries=0,
                         use_responses_api=responses)
        assert llm.with_structured_output(Weather).invoke("weather?") == Weather(city="Paris")


def test_openai_agents_output_type(gateway):
    set_tracing_disabled(True)

    async def main() -> object:
        # closed here: Runner.run_sync left the client's keep-alive socket to the collector (a ResourceWarning)
        async with AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused") as client:
            agent = Agent(name="forecaster", model=OpenAIResponsesModel("coder", client), output_type=Weather)
            return (await Runner.run(agent, "weather?")).final_output

    assert asyncio.run(main()) == Weather(city="Paris")
