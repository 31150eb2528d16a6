"""Markdown answers as Telegram text + entities, checked against the Bot API's documented entity rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.frontends.telegram_format import Formatted, Kind, from_markdown, split, utf16_len, with_note
from tests.fakes import OpenAIServer, TelegramServer
from tests.fakes.telegram_entities import check_entities
from tests.frontends.conftest import ALICE, REPLY, bot_config, eventually, running_bot

ANSWER = """## Reverse a list

Use **slicing** — it returns a *new* list; `list.reverse()` works in place:

```python
items = [1, 2, 3]
print(items[::-1])  # [3, 2, 1]
```

1. Slicing: **`items[::-1]`** copies.
2. `reversed()` gives an iterator.

| way | copies |
|---|---|
| slicing | yes |

See [the tutorial](https://docs.python.org/3/tutorial/) or ~~nothing~~ > 3 < 4 & 5.
"""


def wire(message: Formatted) -> list[dict]:
    """The entities as the Bot API receives them (python-telegram-bot's JSON shape)."""
    out = []
    for e in message.entities:
        item = {"type": e.kind.value, "offset": e.offset, "length": e.length}
        if e.url:
            item["url"] = e.url
        if e.language:
            item["language"] = e.language
        out.append(item)
    return out


def shown(message: Formatted, kind: Kind) -> list[str]:
    units = message.text.encode("utf-16-le")
    return [units[2 * e.offset:2 * e.end].decode("utf-16-le") for e in message.entities if e.kind is kind]


def test_a_typical_answer_becomes_text_and_entities_the_bot_api_accepts():
    message = from_markdown(ANSWER)
    check_entities(message.text, wire(message))
    assert "```" not in message.text and "**" not in message.text and "## " not in message.text
    assert shown(message, Kind.BOLD)[0] == "Reverse a list"
    assert shown(message, Kind.PRE)[0] == 'items = [1, 2, 3]\nprint(items[::-1])  # [3, 2, 1]'
    assert next(e.language for e in message.entities if e.kind is Kind.PRE) == "python"
    assert "items[::-1]" in shown(message, Kind.CODE)  # inside bold: bold is cut around it, as the rules require
    assert [e.url for e in message.entities if e.kind is Kind.TEXT_LINK] == ["https://docs.python.org/3/tutorial/"]
    assert shown(message, Kind.STRIKETHROUGH) == ["nothing"]
    assert "1. Slicing: items[::-1] copies." in message.text and "2. reversed() gives" in message.text
    assert "way     | copies" in message.text  # the table as a monospaced block
    assert message.text.endswith("> 3 < 4 & 5.")  # no escaping needed: entities, not HTML


def test_an_unfinished_stream_renders_at_every_prefix():
    """Edits show the answer as it streams: an unclosed fence or ** must never make the API refuse it."""
    for end in range(1, len(ANSWER) + 1):
        message = from_markdown(ANSWER[:end])
        check_entities(message.text, wire(message))
        assert message.text == message.text.strip()


def test_a_note_after_an_answer_cut_inside_a_code_block_stays_outside_it():
    message = with_note(from_markdown("```python\nwhile True:\n    pass"), "— engineer · qwen")
    check_entities(message.text, wire(message))
    assert shown(message, Kind.PRE) == ["while True:\n    pass"]
    assert shown(message, Kind.ITALIC) == ["— engineer · qwen"]


def test_a_long_code_block_is_a_code_block_in_every_message():
    message = from_markdown("Here:\n\n```\n" + "value = compute(1)  # 😀\n" * 400 + "```\nDone.")
    parts = split(message, 4096)
    assert len(parts) == 3
    for part in parts:
        assert utf16_len(part.text) <= 4096
        check_entities(part.text, wire(part))
    assert all(any(e.kind is Kind.PRE for e in p.entities) for p in parts)
    assert parts[-1].text.endswith("Done.")


MARKDOWNISH = st.lists(st.sampled_from(
    [*list("*_`~#>-+|[]()!\n "), "a", "b", "1.", "http://x.y", "😀", "é", "你", "```", "```py\n", "**", "\n\n", "  "]),
    max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(MARKDOWNISH, st.integers(min_value=16, max_value=80))
def test_any_text_renders_within_the_rules_and_splits_within_the_limit(source, limit):
    message = from_markdown(source)
    check_entities(message.text, wire(message))
    for part in split(message, limit):
        assert utf16_len(part.text) <= limit
        check_entities(part.text, wire(part))


async def test_the_bot_shows_markdown_as_formatting_and_plain_keeps_it_raw(tmp_path, tg):
    reply = "Use `sorted()`:\n\n```python\nsorted(xs)\n```"
    with OpenAIServer(reply_text=reply, chunk_interval=0.005) as llm:
        async with running_bot(bot_config(tmp_path / "md", tg, llm), tg):
            tg.push_message(ALICE, text="how do I sort?")
            final = await eventually(lambda: _final(tg, 1))
        assert final["text"].startswith("Use sorted():\n\nsorted(xs)")
        kinds = {e["type"]: e for e in final["entities"]}
        assert kinds["pre"]["language"] == "python" and "code" in kinds
        assert final["text"].endswith("— chat · local") and kinds["italic"]["length"] == len("— chat · local")
        async with running_bot(bot_config(tmp_path / "plain", tg, llm, format="plain"), tg):
            tg.push_message(ALICE, text="again")
            final = await eventually(lambda: _final(tg, 2))
    assert final["text"].startswith(reply)  # fences and backticks as the model wrote them
    assert [e["type"] for e in final["entities"]] == ["italic"]  # only the note under it


async def test_entities_refused_by_the_api_still_deliver_the_answer_as_plain_text(tmp_path, llm, caplog):
    with TelegramServer(refuse_entities="Unsupported start tag \"x\" at byte offset 5") as tg:
        async with running_bot(bot_config(tmp_path, tg, llm), tg):
            tg.push_message(ALICE, text="hello there")
            final = await eventually(lambda: _final(tg, 1))
    assert final["text"].startswith(REPLY) and final["text"].endswith("— chat · local") and "entities" not in final
    assert [c for c in tg.calls_to("editMessageText") if not c.ok]  # it was refused, then sent plain
    assert "refused this answer's formatting" in caplog.text


def _final(tg: TelegramServer, count: int) -> dict | None:
    finals = [c for c in tg.sent if c.params.get("reply_markup") and c.ok]
    return tg.message(ALICE, finals[-1].result["message_id"]) if len(finals) >= count else None


async def test_an_answer_opening_a_code_block_never_shows_its_fence(tmp_path, tg):
    """An answer that starts with a fence rendered as nothing until the code came, so the raw '```python' was
    shown in its place for an edit or two (a real model's answer to 'show a for loop' read '```' first)."""
    reply = "```python\nprint(1)\n```\n\nDone."
    with OpenAIServer(reply_text=reply, chunk_interval=0.3) as llm:
        async with running_bot(bot_config(tmp_path, tg, llm), tg):
            tg.push_message(ALICE, text="show code")
            final = await eventually(lambda: _final(tg, 1))
    shown = [c.params.get("text") or "" for c in tg.sent if c.ok]
    assert len(shown) >= 3, shown  # the placeholder, edits while it streamed, the final answer
    assert not [t for t in shown if "```" in t], shown
    assert final["text"].startswith("print(1)\n\nDone.")


def test_every_part_of_a_long_code_block_keeps_its_indentation():
    """A long answer is cut at line breaks, and each part was trimmed of white space at both ends — the indentation
    of the code line that began the next part too, so every message after the first began with a de-indented line
    (NousResearch/hermes-agent#54579: 'The first code line of every continuation chunk therefore arrives
    de-indented'), Python that no longer runs when copied. Telegram trims spaces and line breaks only before a
    message's first entity (tdlib's fix_formatted_text: ltrim stops at entities[0].offset), so they stay when the part
    begins inside the code block. An answer that opens with an indented code line kept it nowhere either."""
    body = "\n".join(f"    value_{i} = compute(item_{i})  # step {i}" for i in range(300))
    message = from_markdown(f"Here:\n\n```python\ndef run():\n{body}\n```\n")
    parts = split(message, 4096)
    assert len(parts) > 2
    for part in parts[1:]:
        check_entities(part.text, wire(part))
        assert part.text.startswith("    value_"), repr(part.text[:30])
        assert shown(part, Kind.PRE)[0] == part.text
    assert "\n".join(shown(p, Kind.PRE)[0] for p in parts) == f"def run():\n{body}"
    opening = from_markdown("```\n    indented = True\n```")
    assert opening.text == "    indented = True" and shown(opening, Kind.PRE) == [opening.text]


#: a list answer of many short marks: 60 bold terms and 60 code spans in under 2,000 characters
MARKS = "\n".join(f"- **term{i}** is `f{i}()`" for i in range(60))


def test_a_part_carries_at_most_a_hundred_entities_and_the_text_whole():
    """Telegram keeps a message's first 100 entities and drops the rest without a word (rubenlagus/TelegramBots#854,
    tdlib/telegram-bot-api#820): parts are cut so each keeps all of its own, every character still in one of them."""
    message = from_markdown(MARKS)
    assert len(message.entities) == 120
    parts = split(message, 4096)
    assert len(parts) == 2 and all(len(p.entities) <= 100 for p in parts)
    for part in parts:
        check_entities(part.text, wire(part))
    assert "\n".join(p.text for p in parts) == message.text
    assert [t for p in parts for t in shown(p, Kind.BOLD)] == [f"term{i}" for i in range(60)]
    assert [t for p in parts for t in shown(p, Kind.CODE)] == [f"f{i}()" for i in range(60)]


async def test_an_answer_of_more_than_a_hundred_marks_keeps_them_all_on_screen(tmp_path, tg):
    """The answer went out as one message of 121 entities (with the note's); Telegram kept the first 100, and the
    last code spans showed as plain words. It comes in two messages now, each with all its formatting."""
    with OpenAIServer(reply_text=MARKS, chunk_interval=0.0) as llm:
        async with running_bot(bot_config(tmp_path, tg, llm), tg):
            tg.push_message(ALICE, text="list them")
            await eventually(lambda: _final(tg, 1), 30)
    ids = sorted({c.result["message_id"] for c in tg.sent if c.ok and c.chat_id == ALICE})
    entities = [e for i in ids for e in (tg.message(ALICE, i) or {}).get("entities", [])]
    assert [e["type"] for e in entities].count("bold") == 60
    assert [e["type"] for e in entities].count("code") == 60
