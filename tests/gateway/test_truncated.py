"""A truncated answer (the model hit max_tokens) says so at the gateway (issue 14.4).

``finish_reason: "length"`` in JSON and in the stream's last chunk, and the route header says
``truncated``, so a client (or a person reading headers) never takes a cut-off answer for a whole one.
The fake Anthropic server cuts its reply after ``max_tokens`` pieces (words) with ``stop_reason: max_tokens``.
"""

from __future__ import annotations

from tests.gateway.test_openai_sdk import WEATHER, ask


def test_json_answer_cut_at_max_tokens_is_length_and_the_route_says_truncated(client):
    raw = client.chat.completions.with_raw_response.create(model="model:cloud", messages=ask(), max_tokens=2)
    done = raw.parse()
    assert done.choices[0].finish_reason == "length"
    assert done.choices[0].message.content == "Hello from"
    assert raw.headers["x-modelyard-route"] == "cloud ok (truncated: length)"


def test_whole_answer_is_not_called_truncated(client):
    raw = client.chat.completions.with_raw_response.create(model="model:cloud", messages=ask(), max_tokens=200)
    assert raw.parse().choices[0].finish_reason == "stop"
    assert raw.headers["x-modelyard-route"] == "cloud ok"


def test_streamed_answer_cut_at_max_tokens_ends_with_length(client):
    chunks = list(client.chat.completions.create(model="model:cloud", messages=ask(), max_tokens=2, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]


def test_buffered_stream_with_tools_says_truncated_in_header_and_chunk(client, fakes):
    fakes[2].answer_tools = False  # the model answers in text although tools were offered
    try:
        with client.chat.completions.with_streaming_response.create(
                model="model:cloud", messages=ask(), max_tokens=2, stream=True, tools=[WEATHER]) as r:
            assert r.headers["x-modelyard-route"] == "cloud ok (truncated: length)"
            finishes = [c.choices[0].finish_reason for c in r.parse() if c.choices and c.choices[0].finish_reason]
    finally:
        fakes[2].answer_tools = True
    assert finishes == ["length"]
