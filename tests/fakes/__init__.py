"""Loopback fakes of the wire protocols modelyard talks to, able to misbehave on demand."""

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
