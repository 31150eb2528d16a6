"""The Bot API's rules for message entities, as its documentation states them ("Formatting options").

Written from the documentation, not from modelyard's renderer: offsets and lengths count UTF-16 code
units; "if two entities have common characters, then one of them is fully contained inside another";
"bold, italic, underline, strikethrough, and spoiler entities can contain and can be part of any other
entities, except pre and code"; "blockquote and expandable_blockquote entities can't be nested"; "all
other entities can't contain each other". The real server answers a violation with 400 "can't parse
entities"; this fake is as strict as the words, so whatever it accepts the real one documents as valid.

A ``text_link``'s URL is checked as Telegram checks it (:func:`check_link`): a refused one fails the message with
400 "entity URL '<url>' is invalid: <why>" — words of their own, not "can't parse entities".
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

TYPES = frozenset({
    "mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bold", "italic",
    "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote", "code", "pre",
    "text_link", "text_mention", "custom_emoji", "date_time",
})
STYLES = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
CODE = frozenset({"pre", "code"})


class EntityError(ValueError):
    """Why the entities were refused (the text after "can't parse entities: ")."""


class LinkError(EntityError):
    """A text_link's URL refused; ``str()`` is the Bot API's description after "Bad Request: "."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"entity URL '{url}' is invalid: {why}")


#: a host's characters the Bot API takes besides non-ASCII ones (RFC 3986's unreserved and sub-delims, %XX)
_HOST = re.compile(r"(?:[a-z0-9.\-_!$,~*'();&+=]|%[0-9a-f]{2}|[^\x00-\x7f])+")


def check_link(url: str) -> None:
    """Raise :class:`LinkError` unless Telegram takes ``url`` as a text_link's address.

    What users report: a path (no host) is refused with "URL host is empty" (littlebearapps/untether#157,
    banteg/takopi#214); a host without a dot — ``localhost``, ``my-pc`` — is no link to Telegram
    (rubenlagus/TelegramBots#302 "BUTTON_URL_INVALID" for ``http://localhost:8080``; TelegramBots/Telegram.Bot#1010,
    tdesktop#7827: not linked, while ``127.0.0.1`` is); another scheme is "Unsupported URL protocol"
    (BEDOLAGA-DEV/remnawave-bedolaga-telegram-bot#1564). The reasons' words are tdlib's (LinkManager::check_link,
    tdutils HttpUrl.cpp parse_url), which also refuse a port outside 1..65535 and a tg:// host that is not
    letters, digits, '-' and '_' (tdlib test/link.cpp: ``tg:google.com``, ``tg:127.0.0.1``)."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower() if sep else ""
    if scheme == "tg":
        rest = rest[2:] if rest.startswith("//") else rest
        host = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if not host:
            raise LinkError(url, "URL host is empty")
        if rest.lower().startswith(("http://", "https://")) or not re.fullmatch(r"[A-Za-z0-9_-]+", host):
            raise LinkError(url, "Wrong tg URL" if re.search(r"[@:\[]", host) else "Unallowed characters in URL host")
        return
    if scheme not in ("http", "https") or not rest.startswith("//"):
        raise LinkError(url, "Unsupported URL protocol")
    try:
        hostport = urlsplit(url).netloc.rpartition("@")[2]
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise LinkError(url, "Wrong IPv6 address specified in the URL") from exc
    host, colon, port = hostport.rpartition(":")
    if not colon or "]" in port:  # no port; an IPv6 address's own colons
        host, port = hostport, ""
    elif not (re.fullmatch("[0-9]+", port) and 0 < int(port) < 65536):
        raise LinkError(url, "Wrong port number specified in the URL")
    if not host:
        raise LinkError(url, "URL host is empty")
    if host == ".":
        raise LinkError(url, "Host is invalid")
    if host.startswith("[") and host.endswith("]"):
        return
    if not _HOST.fullmatch(host.lower()):
        raise LinkError(url, "Wrong URL host")
    if "." not in host:
        raise LinkError(url, "Wrong HTTP URL")


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
        if kind == "text_link":
            check_link(entity["url"])
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
