"""The words of a server's error body, wherever they sit in it.

Servers put them under different keys: OpenAI's ``message``, FastAPI's ``detail`` (text, ``{"msg", "type"}`` —
KoboldCpp's 503 —, or a 422's list of ``{"loc", "msg"}``), ``msg`` at the top (Alibaba Cloud's Spring-style gateways,
Go services' ``{"code", "msg"}``), ``error`` as a string or an object. Read by one function for every provider (each
provider's own reader first, then this on the whole body): a 503 whose body was ``{"msg": "…"}`` said only "HTTP 503".
"""

from __future__ import annotations

import json
from typing import Any

#: the keys whose value is the error's words, in the order they are looked for
KEYS = ("message", "msg", "detail", "error")
#: how far into nested objects words are looked for (Mistral's message is ``{"detail": [...]}``)
_DEPTH = 3
#: characters of an object with no words kept as its JSON (http.said cuts what is longer later)
_MOST = 1000


def error_words(value: Any, depth: int = 0) -> str:
    """The words of an error value: text as it is; an object's first of :data:`KEYS` that holds any (looked for
    :data:`_DEPTH` levels in; a nested object with none is said as its JSON); a list's items' words joined (a FastAPI
    422's ``loc: msg`` each, at most five); nothing for null, or for a whole body that holds no words."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for item in value[:5]:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                where = item.get("loc")
                at = ".".join(str(p) for p in where) if isinstance(where, list) else ""
                parts.append(f"{at}: {item['msg']}" if at else item["msg"])
            else:
                parts.append(error_words(item, depth + 1))
        return "; ".join(p for p in parts if p)
    if not isinstance(value, dict):
        return str(value)
    if depth < _DEPTH:
        for key in KEYS:
            if words := error_words(value.get(key), depth + 1):
                return words
    return _json(value) if depth else ""


def _json(value: Any) -> str:
    try:
        return json.dumps(value, default=str)[:_MOST]
    except (ValueError, RecursionError):
        return "(an object)"
