"""Ollama's ``/api/chat`` as relays that emulate it answer it: in an event stream's framing, or with their upstream's
OpenAI-compatible chunks passed on as they came (CNSeniorious000/oai2ollama#6: its ``/api/chat`` streams the
upstream's ``/chat/completions`` bytes under ``text/event-stream``).

Ollama's own answer is JSON lines. Such an answer was refused line by line — ``data: {...}`` was no JSON, a
``chat.completion.chunk`` no Ollama line — as malformed_response: never asked again, the model counted broken, though
its text was all there. Here a line's SSE framing comes off (``data:``; comments and ``event:``/``id:``/``retry:``
fields are skipped, ``[DONE]`` ends the answer), and a chunk's text and finish reason read as an Ollama line's.
A chunk with tool-call pieces is not read here (they are joined across chunks, which one line cannot do): it stays
malformed_response, and the chain moves on.
"""

from __future__ import annotations

import re
from typing import Any

#: SSE fields other than data (html.spec.whatwg.org/multipage/server-sent-events.html): said nothing of the answer
_OTHER_FIELD = re.compile(r"(?:event|id|retry)(?::|$)")


def unframed(line: str) -> str | None:
    """``line`` without an event stream's framing, or None for a line that carries nothing (a comment, a field other
    than data). Called only for a line that does not open as JSON does."""
    if line[:1] == ":" or _OTHER_FIELD.match(line):
        return None
    if line[:5] == "data:":
        return line[5:].strip()
    return line


def from_chunk(data: dict[str, Any]) -> dict[str, Any] | None:
    """An OpenAI-compatible ``chat.completion.chunk`` (or whole ``chat.completion``) as the Ollama line that says the
    same: its first choice's text and reasoning, ``done`` with its finish reason, its usage as Ollama's counts. None
    for one this cannot say (no choices list, tool-call pieces)."""
    choices = data.get("choices")
    if type(choices) is not list:
        return None
    choice = choices[0] if choices and type(choices[0]) is dict else {}
    said = choice.get("delta") or choice.get("message") or {}
    if type(said) is not dict or said.get("tool_calls") or said.get("function_call"):
        return None
    line: dict[str, Any] = {"message": {"role": "assistant", "content": said.get("content") or "",
                                        "thinking": said.get("reasoning_content") or said.get("reasoning") or ""},
                            "done": bool(choice.get("finish_reason"))}
    if line["done"]:
        line["done_reason"] = choice["finish_reason"]
    if type(usage := data.get("usage")) is dict:
        line["prompt_eval_count"], line["eval_count"] = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return line
