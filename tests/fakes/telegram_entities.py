"""The Bot API's rules for message entities, as its documentation states them ("Formatting options").

Written from the documentation, not from modelyard's renderer: offsets and lengths count UTF-16 code
units; "if two entities have common characters, then one of them is fully contained inside another";
"bold, italic, underline, strikethrough, and spoiler entities can contain and can be part of any other
entities, except pre and code"; "blockquote and expandable_blockquote entities can't be nested"; "all
other entities can't contain each other". The real server answers a violation with 400 "can't parse
entities"; this fake is as strict as the words, so whatever it accepts the real one documents as valid.
"""

from __future__ import annotations

from typing import Any

TYPES = frozenset({
    "mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bold", "italic",
    "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote", "code", "pre",
    "text_link", "text_mention", "custom_emoji", "date_time",
})
STYLES = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
CODE = frozenset({"pre", "code"})


class EntityError(ValueError):
    """Why the entities were refused (the text after "can't parse entities: ")."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Return the entities as stored on the message, or raise :class:`EntityError`."""
    if entities is None:
        return []
    if not isinstance(entities, list):
        raise EntityError("entities must be an array")
    size = utf16_len(text)
    spans: list[tuple[int, int, str]] = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise EntityError("entity must be an object")
        kind, offset, length = entity.get("type"), entity.get("offset"), entity.get("length")
        if kind not in TYPES:
            raise EntityError(f"unsupported entity type {kind!r}")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length <= 0:
            raise EntityError(f"wrong offset or length of a {kind} entity")
        if offset + length > size:
            raise EntityError(f"{kind} entity ends at {offset + length}, beyond the text's {size} UTF-16 units")
        if kind == "text_link" and not isinstance(entity.get("url"), str):
            raise EntityError("text_link entity without url")
        if "language" in entity and kind != "pre":
            raise EntityError(f"language given for a {kind} entity")
        spans.append((offset, offset + length, kind))
    for i, (a1, b1, k1) in enumerate(spans):
        for a2, b2, k2 in spans[i + 1:]:
            if b1 <= a2 or b2 <= a1:
                continue
            inner, outer = ((k1, k2) if a2 <= a1 and b1 <= b2 else (k2, k1) if a1 <= a2 and b2 <= b1 else (None, None))
            if inner is None:
                raise EntityError(f"{k1} and {k2} entities overlap without one containing the other")
            if inner in CODE or outer in CODE:
                raise EntityError(f"a {outer} entity can't contain a {inner} entity")
            if inner not in STYLES and outer not in STYLES:
                raise EntityError(f"a {outer} entity can't contain a {inner} entity")
    return [dict(e) for e in entities]
