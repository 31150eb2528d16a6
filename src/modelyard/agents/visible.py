"""Keep reasoning out of what users and other agents see.

Providers already split thinking into its own chunks, but some servers (a Qwen3 model behind
an OpenAI-compatible server without a reasoning parser) leave ``<think>…</think>`` inline in
the text. This removes such blocks, including one still open at the end of a partial stream.
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)
_OPEN = re.compile(r"<think>.*\Z", re.DOTALL)


def visible_text(text: str) -> str:
    if "<think>" not in text:
        return text
    return _OPEN.sub("", _BLOCK.sub("", text)).lstrip()
