"""The context a server states refusing a prompt past it travels on the error as a field (``served_context``), set by
the provider from the error object, read by the router — not written into the message and parsed back out.

The refusal's shape is llama-server's (``exceed_context_size_error`` with ``n_prompt_tokens`` and ``n_ctx``:
tests/fakes/llama_server.py cites server-context.cpp, ggml-org/llama.cpp#15780 and
arbs-io/github-copilot-llm-gateway#73). Was: the provider appended "(the server's context: N tokens, …)" to the message
and the router read N back with a regular expression, so any error whose words held that phrase taught the router a
context — e.g. another modelyard upstream relaying its own member's refusal in its 400 ``rejected_by_models``
(gateway/exhausted.py), which says nothing of the upstream endpoint as a whole.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import orjson
from tests.helpers import make_config

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.base import Provider
from modelyard.providers.http import error_from_body
from modelyard.providers.openai import _extract_error
from modelyard.router import ChainExhausted, ModelPool, Router
from modelyard.types import ChatRequest, Chunk, Message, Usage

LLAMA_400 = {"error": {"code": 400, "message": "request (8708 tokens) exceeds the available context size "
                       "(8192 tokens), try increasing it", "type": "exceed_context_size_error",
                       "n_prompt_tokens": 8708, "n_ctx": 8192}}
#: another modelyard's 400 when every model of its chain refused: its member's words relayed, no llama fields
RELAYED_400 = {"error": {"message": "no model of agent 'chat' could answer: llama: bad_request (HTTP 400 "
                         "exceed_context_size_error: request (3000 tokens) exceeds the available context size (2048 "
                         "tokens), try increasing it (the server's context: 2048 tokens, the prompt's 3000))",
                         "type": "invalid_request_error", "code": "rejected_by_models"}}


def test_llama_servers_refusal_carries_its_context_as_a_field_and_keeps_its_words() -> None:
    exc = error_from_body(400, orjson.dumps(LLAMA_400), {}, _extract_error)
    assert exc.reason is Reason.BAD_REQUEST and exc.served_context == 8192
    assert "(the server's context: 8192 tokens, the prompt's 8708)" in exc.message  # the log and the client see it


def test_a_relayed_message_with_the_same_words_carries_no_context() -> None:
    exc = error_from_body(400, orjson.dumps(RELAYED_400), {}, _extract_error)
    assert exc.reason is Reason.BAD_REQUEST and exc.served_context is None


class _Refusing(Provider):
    """Refuses every chat with the given error, as a provider would raise it."""

    def __init__(self, name: str, config: ModelConfig, error: ProviderError):
        super().__init__(name, config)
        self.error = error

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        raise self.error
        yield Chunk("done")  # pragma: no cover


class _Answering(Provider):
    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        yield Chunk("text", text="from b")
        yield Chunk("usage", usage=Usage(3, 2))
        yield Chunk("done", stop_reason="stop")


def _router(error: ProviderError) -> tuple[Router, Provider]:
    config = make_config({"a": {"provider": "openai"}, "b": {"provider": "openai"}},
                         {"agent": {"primary": "a", "fallbacks": ["b"]}},
                         defaults={"retries": {"attempts": 0, "backoff": 0.01}})
    a = _Refusing("a", config.models["a"], error)
    b = _Answering("b", config.models["b"])
    return Router(config, pool=ModelPool(config, providers={"a": a, "b": b})), a


async def test_the_router_learns_the_field_not_the_words() -> None:
    plain = ProviderError(Reason.BAD_REQUEST, "HTTP 400 exceed_context_size_error: too long", served_context=4096)
    router, a = _router(plain)
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "word " * 300)]))
    assert routed.record.model == "b" and a.learned_context is not None and a.learned_context.n_ctx == 4096

    worded = error_from_body(400, orjson.dumps(RELAYED_400), {}, _extract_error)
    router, a = _router(worded)
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "word " * 300)]))
    assert routed.record.model == "b" and a.learned_context is None


async def test_the_field_survives_the_routers_redaction_of_a_key() -> None:
    """The router rebuilds an error whose words hold the model's key (redacted): the field goes with it."""
    config = make_config({"a": {"provider": "openai", "api_key_env": "GW24_KEY"}, "b": {"provider": "openai"}},
                         {"agent": {"primary": "a", "fallbacks": ["b"]}},
                         defaults={"retries": {"attempts": 0, "backoff": 0.01}})
    os.environ["GW24_KEY"] = "plainkey123456789"
    try:
        a = _Refusing("a", config.models["a"], ProviderError(Reason.BAD_REQUEST, "bad key plainkey123456789 echoed",
                                                              served_context=1024))
        b = _Answering("b", config.models["b"])
        router = Router(config, pool=ModelPool(config, providers={"a": a, "b": b}))
        try:
            routed = await router.complete("agent", ChatRequest(messages=[Message("user", "word " * 300)]))
        except ChainExhausted as exc:  # pragma: no cover - shown if it happens
            raise AssertionError(exc.record.attempts) from None
        assert routed.record.model == "b" and "plainkey" not in (routed.record.attempts[0].detail or "")
        assert a.learned_context is not None and a.learned_context.n_ctx == 1024
    finally:
        del os.environ["GW24_KEY"]
