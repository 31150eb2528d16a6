"""Loopback fakes of the wire protocols modelyard talks to, able to misbehave on demand.

    with OllamaServer(["llama3.2:1b"]) as ollama:          # context manager = start()/stop()
        ollama.push(Fault.status(503), Fault.hang_before_headers())   # one-shot, in order
        ollama.set_default(Fault.drip(0.1))                 # when the queue is empty
        ...call ollama.url...
        ollama.requests[-1].json, ollama.max_in_flight, ollama.max_in_flight_by_model

Every model request (chat/generate/messages/completions, preloads included) pops one
fault; validation failures (auth, missing fields, unknown model) do not.
"""

from tests.fakes.anthropic import AnthropicServer
from tests.fakes.chat import ChatServer, split_pieces
from tests.fakes.faults import Fault, FaultKind, FaultScript
from tests.fakes.ollama import OllamaServer
from tests.fakes.openai_compat import OpenAIServer
from tests.fakes.server import FakeServer, RecordedRequest
from tests.fakes.telegram import BotCall, TelegramServer

__all__ = [
    "AnthropicServer",
    "BotCall",
    "ChatServer",
    "FakeServer",
    "Fault",
    "FaultKind",
    "FaultScript",
    "OllamaServer",
    "OpenAIServer",
    "RecordedRequest",
    "TelegramServer",
    "split_pieces",
]
