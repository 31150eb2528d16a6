"""A toy backend, written the way a third-party plugin would write one: this module only.

It "serves" one in-process model that answers by rule: a structured call of the first offered
tool (its first required argument taken from the prompt's "in <Place>"), a JSON object when
JSON is asked for, a line of thinking when thinking is switched on, else an echo, word by word.
It states its facts like a real backend (a model card's context and memory shape, a load on
warm-up), so every part of modelyard that asks a provider can be shown to work with it.

Registration is one line, either in the plugin's pyproject::

    [project.entry-points."modelyard.providers"]
    toy = "tests.plugins.toy_backend:ToyProvider"

or at run time: ``modelyard.providers.register_provider("toy", ToyProvider)``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from modelyard.config.schema import Timeouts
from modelyard.providers import ContextWindow, MemoryFacts, ModelProfile, Provider, ThinkingSwitch
from modelyard.providers.base import parse_duration
from modelyard.providers.metadata import KvShape
from modelyard.types import ChatRequest, Chunk, ToolCall, Usage

TRAINED_CONTEXT = 8192
WEIGHTS_BYTES = 2**30  # the model card says 1 GiB
SHAPE = KvShape(n_layer=4, n_head_kv=2, head_dim=64)
#: the decoding speed the toy states with its usage, as Ollama states eval_count / eval_duration: an answer made in one
#: burst has no span a client could time, so a backend that knows its speed says it (probe and the log read it)
DECODING_TOKENS_PER_S = 40.0
_loaded: set[str] = set()  # models this process has "loaded"


class ToyProvider(Provider):
    preloads = True

    def base_profile(self) -> ModelProfile:
        return ModelProfile(thinking_switch=ThinkingSwitch.API_FIELD, thinking=True, json_mode=True, tool_calls=True)

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        if self.profile.thinking_to_send(request.thinking):
            yield Chunk("thinking", text="The toy considers the question.")
        if request.tools:
            tool = request.tools[0]
            required = tool.parameters.get("required") or list(tool.parameters.get("properties") or {})
            place = re.search(r"\bin ([A-Z]\w+)", prompt)
            arguments = {required[0]: place.group(1) if place else prompt} if required else {}
            yield Chunk("tool_call", tool_call=ToolCall(tool.name, arguments, "toy-call-1"))
            words = 1
        else:
            text = json.dumps({"echo": prompt}) if request.json_output else f"toy says: {prompt}"
            words = 0
            for word in text.split(" "):
                await asyncio.sleep(0)  # a stream, not one block
                yield Chunk("text", text=word if not words else " " + word)
                words += 1
        _loaded.add(self.model_id)
        yield Chunk("usage", usage=Usage(len(prompt.split()), words, tokens_per_s=DECODING_TOKENS_PER_S))
        yield Chunk("done", stop_reason="stop")

    async def context_window(self) -> ContextWindow:
        return ContextWindow(TRAINED_CONTEXT, self.config.context or 2048, "toy model card")

    async def memory(self, *, ask_server: bool = True) -> MemoryFacts:
        return MemoryFacts(WEIGHTS_BYTES, "toy model card", None, SHAPE, context=self.config.context or 2048,
                           parallel=self.config.max_concurrent)

    async def loaded(self) -> bool | None:
        return self.model_id in _loaded

    def keep_alive_seconds(self) -> float | None:
        return parse_duration(self.config.keep_alive)

    async def warmup(self, keep_alive: str | None = None) -> None:
        _loaded.add(self.model_id)
