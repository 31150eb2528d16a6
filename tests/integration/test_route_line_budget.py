"""The route line names the budget an answer was really cut at. A prompt that leaves less room in the context than
``max_tokens`` asks is refused in vLLM's words (the embedded model refuses it the same way: llamacpp.over_context),
the router asks once more within the room — and the route line said "TRUNCATED at max_tokens=2000" for an answer cut
at 40, the client's budget, not the one sent. An answer cut where the context ended says that, not a budget."""

from __future__ import annotations

from tests.fakes import Fault, OpenAIServer
from tests.helpers import make_config

from modelyard.cli.render import route_line
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

#: vLLM's refusal (vllm/entrypoints/openai/serving_engine.py, _validate_input): the room is 4096 - 4056 = 40
VLLM_ROOM = ('{"object":"error","message":"This model\'s maximum context length is 4096 tokens. However, you requested '
             '6056 tokens (4056 in the messages, 2000 in the completion). Please reduce the length of the messages or '
             'completion.","type":"BadRequestError","param":null,"code":400}')
LONG = " ".join(f"w{i}" for i in range(200))


async def test_a_clamped_budget_is_the_one_the_route_line_names() -> None:
    with OpenAIServer(models=["m"], reply_text=LONG, honour_max_tokens=True) as server:
        server.push(Fault.raw(400, VLLM_ROOM, headers={"content-type": "application/json"}))
        router = Router(make_config({"vllm": {"provider": "openai", "model": "m", "endpoint": server.url}},
                                    {"writer": {"primary": "vllm"}}))
        routed = await router.complete("writer", ChatRequest(messages=[Message("user", "Hi")], max_tokens=2000))
        await router.aclose()
        sent = [r.json["max_tokens"] for r in server.requests_to("/v1/chat/completions")]
    assert sent == [2000, 40]
    assert routed.record.truncated and routed.record.max_tokens == 40
    line = route_line(routed.record)
    assert "max_tokens 2000 clamped to 40" in line and "TRUNCATED at max_tokens=40" in line, line
    assert "max_tokens=2000" not in line, line

