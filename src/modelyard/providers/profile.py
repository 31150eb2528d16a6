"""What a provider knows about one model beyond its wire protocol: its capability profile
(which thinking switch it takes, JSON mode, structured tool calls — like pydantic-ai's
``ModelProfile``) and the facts ``probe``/``plan`` ask for (context, memory).

A fact nobody knows is ``None`` — "unknown" — never a guess. A profile starts from what the
backend knows of the model, then the config's ``capabilities`` and the latest ``probe``
findings fill it in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from modelyard.providers.metadata import KvShape
from modelyard.providers.ollama_parallel import ServerParallel


class ThinkingSwitch(StrEnum):
    """How thinking is turned on or off for a model."""

    NONE = "none"  # no switch known: none is ever sent (the model may still think on its own)
    OLLAMA_THINK = "ollama_think"  # the ``think`` field of Ollama's /api/chat
    QWEN_SOFT = "qwen_soft"  # ``/think`` or ``/no_think`` appended to the last user turn
    ANTHROPIC_BUDGET = "anthropic_budget"  # extended thinking with ``budget_tokens``
    API_FIELD = "api_field"  # another field of the backend's own API (a plugin's), checked by its server

    @property
    def server_checked(self) -> bool:
        """An API field the server validates (it refuses a model that cannot think, by name),
        rather than words in the prompt that a model which does not know them reads as text."""
        return self is not ThinkingSwitch.NONE and self is not ThinkingSwitch.QWEN_SOFT


#: config ``capabilities`` / probe check name → profile field
_FIELDS = {"thinking": "thinking", "json": "json_mode", "tools": "tool_calls", "vision": "vision"}


@dataclass(frozen=True)
class ModelProfile:
    """``None`` = unknown. ``thinking``/``json_mode``/``tool_calls`` say whether the model does it
    when asked (structured tool calls, not calls written as text)."""

    thinking_switch: ThinkingSwitch = ThinkingSwitch.NONE
    thinking: bool | None = None
    #: the backend hands thinking text over apart from the answer (else thinking cannot be observed)
    shows_thinking: bool = True
    json_mode: bool | None = None
    tool_calls: bool | None = None
    vision: bool | None = None
    #: the most output tokens the model takes (a larger ``max_tokens`` is clamped to it); None = unknown
    max_output: int | None = None

    def learned(self, found: Mapping[str, bool]) -> ModelProfile:
        """This profile with capability findings (``{"thinking": True, "tools": False}``) folded in."""
        changes: dict[str, Any] = {_FIELDS[k]: bool(v) for k, v in found.items() if k in _FIELDS and v is not None}
        return dataclasses.replace(self, **changes)

    def declared(self, capabilities: Iterable[str]) -> ModelProfile:
        """The config's ``capabilities:`` list: each named one is supported."""
        return self.learned({c: True for c in capabilities})

    def thinking_to_send(self, wanted: bool | None) -> bool | None:
        """The switch to send for a request's ``thinking`` (None: send none).

        Nothing unless the caller set thinking (on or off). A prompt-text switch goes only to a
        model known to think (config or probe) — others would read ``/no_think`` as part of the
        question. A server-checked field also goes when support is unknown: the server knows."""
        if wanted is None or self.thinking_switch is ThinkingSwitch.NONE or self.thinking is False:
            return None
        if self.thinking or self.thinking_switch.server_checked:
            return wanted
        return None


@dataclass(frozen=True)
class ContextWindow:
    """``trained``: the context the model was trained for; ``served``: what the backend allocates
    per sequence (None: the server's own default, not known here); ``source``: where ``trained``
    came from, or why it is unknown."""

    trained: int | None
    served: int | None
    source: str


@dataclass(frozen=True)
class MemoryFacts:
    """What a local model occupies, as far as its backend can tell (``plan`` adds the policy)."""

    weights_bytes: int | None = None
    weights_source: str = "unknown"
    #: the weights figure already holds the KV cache (a loaded model's footprint): where it says so
    kv_included_in: str | None = None
    kv_shape: KvShape | None = None
    #: tokens per sequence the KV cache is allocated for (None: unknown)
    context: int | None = None
    #: sequences that each get a KV cache of ``context`` tokens (multiplies it)
    parallel: int = 1
    #: ``parallel`` is the server's own setting, taken to be the config's max_concurrent (Ollama's NUM_PARALLEL)
    parallel_assumed: bool = False
    #: what the server was found to run at once (ollama_parallel.py), where asked: ``parallel`` is its value when known
    server_parallel: ServerParallel | None = None
    #: the share of the loaded model its server runs on the CPU, where it split the model between GPU and CPU (Ollama's
    #: /api/ps ``size_vram`` below ``size``): None when it did not split it or cannot tell
    cpu_share: float | None = None
    #: the backend's working memory besides weights and KV cache (llama.cpp's compute buffer), where known:
    #: (floor, bytes per token of context) — it takes the larger of the floor and the per-token part × context
    compute: tuple[int, int] | None = None
