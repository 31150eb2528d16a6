"""Bytes that relays and hosted APIs put on the wire, as their users quoted them (round 14).

Each builder returns a :class:`Fault` for the fake servers (``push``), rebuilt from the report it cites; the fake
server renders nothing of its own for them.

- :func:`null_event`: AgentRouter's relay of Claude, a ``data: null`` event between the reasoning and the answer
  (Kilo-Org/kilocode#3083);
- :func:`network_error_finish`: OpenCode Zen's stream that ends cleanly with ``finish_reason: "network_error"``, the
  upstream's network broken (hermes-agent#92161, gajae-code#4918);
- :func:`native_network_error`: OpenRouter's ``finish_reason: "stop"`` over an empty answer, the upstream's
  ``network_error`` only in ``native_finish_reason``, no usage chunk (earendil-works/pi#8511);
- :func:`glm_finish`: Z.ai's GLM ending on its own finish reasons, "sensitive" (its safety audit: dify#7559,
  any-llm#1204) or "network_error" (promptfoo#9905);
- :func:`minimax_refusal`: MiniMax's refusal under a 200, ``choices: null`` and a ``base_resp`` error code
  (Roo-Code#9105);
- :func:`deepseek_no_room`: DeepSeek's ``finish_reason: "insufficient_system_resource"`` mid-answer
  (oh-my-pi#8563);
- :func:`relay_reset_in_words`: a relay's plain-text "upstream error: read ECONNRESET" after the reasoning, then a
  clean close (tetsuo-ai/agenc-core#2492);
- :func:`finish_on_every_chunk`: LiteLLM relaying Gemini, a finish reason on every chunk (litellm#2195);
- :func:`subscription_429`: Anthropic's 429 for a spent five-hour window, ``anthropic-ratelimit-unified-*`` headers
  and no ``retry-after`` (opencodex#3809, CLIProxyAPI#3148, sub2api#3249).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.faults import Fault
from tests.fakes.relays import glm_chunk

SSE = {"content-type": "text/event-stream"}
DONE = "data: [DONE]\n\n"


def data(obj: Any) -> str:
    return "data: " + json.dumps(obj) + "\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, *, model: str = "claude-haiku-4-5-20251001",
          **choice: Any) -> dict[str, Any]:
    """One chat.completion.chunk as the relays above write them (``usage: null`` on each, as AgentRouter's)."""
    return {"id": "msg_01XA3sB1QMS7Kyhp5JqB54A4", "object": "chat.completion.chunk", "created": 1760645182,
            "model": model, "system_fingerprint": None,
            "choices": [{"delta": delta, "logprobs": None, "finish_reason": finish, "index": 0, **choice}],
            "usage": None}


def null_event(text: str) -> Fault:
    """AgentRouter (Kilo-Org/kilocode#3083): reasoning, then ``data: null`` on its own line, then the answer."""
    return Fault.raw(200, data(chunk({"reasoning_content": "\n"})), "data: null\n", data(chunk({})),
                     data(chunk({"content": text})), data(chunk({}, "stop")), DONE, headers=SSE)


def network_error_finish(text: str = "") -> Fault:
    """OpenCode Zen: the answer so far (none, as hermes-agent#92161 saw it, or some text), then a chunk whose finish
    reason is ``network_error``, then ``[DONE]``: a clean end."""
    said = [data(chunk({"content": text}))] if text else [data(chunk({"role": "assistant", "content": ""}))]
    return Fault.raw(200, *said, data(chunk({}, "network_error")), DONE, headers=SSE)


def native_network_error() -> Fault:
    """OpenRouter (earendil-works/pi#8511): ``finish_reason: "stop"``, empty content, the upstream's own reason
    ``network_error`` beside it, no usage chunk."""
    return Fault.raw(200, data(chunk({"role": "assistant", "content": ""}, "stop", model="stealth/ox-alpha",
                                     native_finish_reason="network_error")), DONE, headers=SSE)


def glm_finish(reason: str, text: str = "") -> Fault:
    """Z.ai's GLM stream ending on one of its own finish reasons (docs.z.ai chat-completion: "sensitive" when its
    safety audit stops the answer, dify#7559; "network_error", promptfoo#9905), after ``text`` or nothing."""
    said = glm_chunk({"role": "assistant", "content": text})
    return Fault.raw(200, data(said), data(glm_chunk({"role": "assistant", "content": ""}, reason)), DONE,
                     headers=SSE)


def minimax_refusal(code: int, message: str) -> Fault:
    """MiniMax's refusal under a 200: a chunk with ``choices: null`` and its ``base_resp`` error (Roo-Code#9105; the
    codes as dify's minimax provider reads them), then the stream ends."""
    return Fault.raw(200, data({"id": "0501a6b3e2a1c9d7f0a0", "choices": None, "created": 1762473600,
                                "model": "MiniMax-M2", "object": "chat.completion.chunk", "usage": None,
                                "input_sensitive": False, "output_sensitive": False,
                                "base_resp": {"status_code": code, "status_msg": message}}), headers=SSE)


def deepseek_no_room(text: str) -> Fault:
    """DeepSeek's API interrupting an answer when its inference system runs out of room: reasoning, some text, then
    ``finish_reason: "insufficient_system_resource"`` and a clean end (its create-chat-completion docs;
    oh-my-pi#8563)."""
    return Fault.raw(200, data(chunk({"role": "assistant", "content": None, "reasoning_content": "Let me see."},
                                     model="deepseek-v4-flash")),
                     data(chunk({"content": text}, model="deepseek-v4-flash")),
                     data(chunk({"content": ""}, "insufficient_system_resource", model="deepseek-v4-flash")), DONE,
                     headers=SSE)


def relay_reset_in_words() -> Fault:
    """A relay in front of DeepSeek whose upstream reset mid-reasoning: the reasoning so far, then its own plain-text
    line ``upstream error: read ECONNRESET`` and a clean close — no finish reason, no ``[DONE]``, no usage
    (tetsuo-ai/agenc-core#2492, the proxy's log: "502 POST /v1/chat/completions read ECONNRESET")."""
    return Fault.raw(200, data(chunk({"role": "assistant", "content": None, "reasoning_content": "First, the"},
                                     model="deepseek-v4-pro")),
                     data(chunk({"reasoning_content": " constraints."}, model="deepseek-v4-pro")),
                     "upstream error: read ECONNRESET\n", headers=SSE)


def finish_on_every_chunk() -> Fault:
    """LiteLLM relaying Gemini (litellm#2195): ``finish_reason: "stop"`` on every chunk, then ``[DONE]``."""
    return Fault.raw(200, data(chunk({"content": "It is "}, "stop")), data(chunk({"content": "sunny."}, "stop")), DONE,
                     headers=SSE)


def subscription_429(reset_in: float, weekly_in: float | None = None) -> Fault:
    """Anthropic's 429 for a spent window (CLIProxyAPI#3148's capture from api.anthropic.com/v1/messages): the
    unified status ``rejected``, the representative claim, each window's status and reset (epoch seconds); no
    ``retry-after`` (opencodex#3809: "Retry-After is not guaranteed on an Anthropic 429")."""
    now = int(time.time())
    headers = {"content-type": "application/json",
               "anthropic-ratelimit-unified-status": "rejected",
               "anthropic-ratelimit-unified-representative-claim": "five_hour",
               "anthropic-ratelimit-unified-reset": str(now + int(reset_in)),
               "anthropic-ratelimit-unified-5h-status": "rejected",
               "anthropic-ratelimit-unified-5h-reset": str(now + int(reset_in)),
               "anthropic-ratelimit-unified-5h-utilization": "1.02"}
    if weekly_in is not None:
        headers |= {"anthropic-ratelimit-unified-7d-status": "allowed",
                    "anthropic-ratelimit-unified-7d-reset": str(now + int(weekly_in)),
                    "anthropic-ratelimit-unified-7d-utilization": "0.41"}
    body = {"type": "error", "error": {"type": "rate_limit_error",
                                        "message": "This request would exceed your account's rate limit. Please try "
                                                   "again later."}, "request_id": "req_011CSompHfim5z5GkMVCzq8P"}
    return Fault.raw(429, json.dumps(body), headers=headers)
