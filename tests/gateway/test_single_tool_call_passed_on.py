"""A client's "at most one tool call" reaches an Anthropic backend in the API's own words.

Anthropic's ``tool_choice`` ``{"type": "auto", "disable_parallel_tool_use": true}``: "If set to true, the model will
output at most one tool use" (anthropic-sdk-ruby lib/anthropic/models/tool_choice_auto.rb; platform.claude.com
docs/agents-and-tools/tool-use/parallel-tool-use). The gateway keeps only the first call whatever a backend answers
(test_single_tool_call.py); told, the model does not spend tokens on calls that would be dropped.
"""

from __future__ import annotations

CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": CITY}}


def _ask(client, **extra):
    return client.chat.completions.create(model="writer", messages=[{"role": "user", "content": "Weather in Paris?"}],
                                          tools=[WEATHER], **extra)


def test_parallel_tool_calls_false_is_sent_as_disable_parallel_tool_use(client, fakes):
    an = fakes[2]
    _ask(client, parallel_tool_calls=False)
    sent = an.last_request.json
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]


def test_without_the_flag_no_tool_choice_is_sent(client, fakes):
    an = fakes[2]
    _ask(client)
    assert "tool_choice" not in an.last_request.json  # the API's default: auto, parallel allowed
