"""An agent framework pointed at the gateway: LangChain's ChatOpenAI (what LangGraph agents use)."""

from __future__ import annotations

import pytest

langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is not installed")


@pytest.fixture
def llm(gateway):
    def make(model: str = "coder"):
        return langchain_openai.ChatOpenAI(base_url=gateway.url + "/v1", api_key="unused", model=model,
                                           max_retries=0, timeout=10)
    return make


def test_invoke_and_stream(llm):
    reply = llm().invoke("hello")
    assert reply.content == "Hello from fast."
    assert reply.response_metadata["model_name"] == "fast"
    assert reply.usage_metadata["output_tokens"] > 0
    pieces = [c.content for c in llm("backup").stream("hello")]
    assert "".join(pieces) == "Hello from backup."


def test_tool_calling(llm, fakes):
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    reply = llm().bind_tools([get_weather]).invoke("weather in Paris?")
    assert reply.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"}, "id": reply.tool_calls[0]["id"],
                                 "type": "tool_call"}]
    assert fakes[0].last_request.json["tools"][0]["function"]["name"] == "get_weather"


def test_responses_api(gateway, fakes):
    """ChatOpenAI with use_responses_api=True (LangChain's switch to the Responses API), plain, streamed, tools."""
    llm = langchain_openai.ChatOpenAI(base_url=gateway.url + "/v1", api_key="unused", model="coder", max_retries=0,
                                      timeout=10, use_responses_api=True)
    assert llm.invoke("hello").text == "Hello from fast."
    assert "".join(c.text for c in llm.stream("hello")) == "Hello from fast."

    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    reply = llm.bind_tools([get_weather]).invoke("weather in Paris?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_weather", {"city": "Paris"})]
