"""Something between the bot and the Bot API answering by itself: a proxy's or firewall's HTML page, not Telegram.

Shapes: the Bot API always answers its JSON envelope ("The response contains a JSON object, which always has a Boolean
field 'ok'", core.telegram.org/bots/api#making-requests); a proxy or relay in front answers with its own page — nginx's
"403 Forbidden" for a ``deny`` (nginx.org/en/docs/http/ngx_http_access_module.html: "access is denied, the 403 error is
returned"), Squid's ERR_ACCESS_DENIED block page behind a TLS-inspecting corporate proxy, a 407 "Proxy Authentication
Required" (RFC 9110 §15.5.8) where the proxy wants its password. python-telegram-bot reads the status alone
(telegram/request/_baserequest.py: 403 → Forbidden, 401/404 → InvalidToken), so a proxy's 403 was "the person blocked
the bot" and the finished answer was dropped; a 401 page stopped the bot as if the token were revoked.
"""

from __future__ import annotations

import logging

import pytest

from modelyard.frontends import streaming
from tests.fakes import Fault, TelegramServer
from tests.frontends.conftest import ALICE, REPLY, bot_config, db, eventually, final_message, running_bot

HELD = "sent when the Bot API answers again"  # the bot's warning as it starts trying a held answer again


@pytest.mark.parametrize("status", [403, 407])
async def test_a_proxys_refusal_page_keeps_the_answer_and_says_to_check_the_proxy(tmp_path, llm, monkeypatch, caplog,
                                                                                   status):
    """The final edit met a proxy's HTML 403: taken for "bot blocked by the user", the answer was never shown and its
    message marked done. Now it is an outage: held, tried again, shown once the proxy lets it through."""
    monkeypatch.setattr(streaming, "FINAL_OUTAGE", 0.5)
    with TelegramServer(fault_methods=["editMessageText"]) as tg:
        tg.set_default(Fault.status(status, html=True))
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="hello there")
            await eventually(lambda: HELD in caplog.text, 30)
            with db(config) as conn:
                assert [r[0] for r in conn.execute("SELECT state FROM telegram_inbox")] == ["answered"]
            tg.faults.clear()
            final = await eventually(final_message(tg, ALICE), 30)
            await eventually(lambda: _states(config) == ["done"], 10)
    assert final["text"].startswith(REPLY) and final["reply_markup"]
    said = caplog.text
    assert "check the proxy" in said and "blocked" not in said.lower()
    assert "<html>" not in said
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_proxys_401_page_on_polling_does_not_stop_the_bot(tmp_path, llm, caplog):
    """getUpdates met a proxy's HTML 401 page: python-telegram-bot raised InvalidToken and the bot stopped for good
    as if the token were revoked. Now polling is said to fail (check the proxy) and goes on once it passes."""
    with TelegramServer(fault_methods=["getUpdates"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg) as bot:
            tg.set_default(Fault.status(401, html=True))
            await eventually(lambda: "check the proxy" in caplog.text, 30)
            tg.faults.clear()
            tg.push_message(ALICE, text="hello there")
            final = await eventually(final_message(tg, ALICE), 30)
            assert not bot.refused.is_set()
    assert final["text"].startswith(REPLY)
    assert "refuses the bot token" not in caplog.text


def _states(config) -> list[str]:
    with db(config) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM telegram_inbox ORDER BY update_id")]
