"""The bot's record of its sends (frontends/telegram_sent.py): a lost message is looked for only where the record
can vouch for every other message of the bot after the question — else an edit could turn one of them into '…'."""

from __future__ import annotations

from modelyard.frontends import telegram_sent
from modelyard.frontends.telegram_sent import SentLog


def test_known_ids_are_not_tried_and_the_tries_are_bounded():
    sent = SentLog()
    for message_id in (11, 12, 14):
        sent.took(5, message_id)
    assert sent.unknown_after(5, 10, 20, limit=3) == [13, 15, 16]
    assert sent.unknown_after(6, 10, 20, limit=3) is None  # nothing known of that chat


def test_a_record_that_no_longer_reaches_back_to_the_question_vouches_for_nothing(monkeypatch):
    monkeypatch.setattr(telegram_sent, "IDS_KEPT", 3)
    sent = SentLog()
    for message_id in (11, 12, 13, 14):  # 11 dropped: a message of the bot's after 10 is no longer known
        sent.took(5, message_id)
    assert sent.unknown_after(5, 10, 20, limit=6) is None
    assert sent.unknown_after(5, 11, 20, limit=6) == [15, 16, 17, 18, 19]


def test_only_the_lost_sends_counted_since_the_mark_pass(monkeypatch):
    sent = SentLog()
    mark = sent.mark(5)
    sent.lost(5)
    assert len(sent.unfound_since(5, mark)) == 1
    sent.lost(5)  # another message of the bot there may be on screen without its id
    assert len(sent.unfound_since(5, mark)) != 1
    monkeypatch.setattr(telegram_sent, "CHATS_KEPT", 2)
    fresh = SentLog()
    mark = fresh.mark(5)
    fresh.took(5, 1)
    fresh.took(6, 1)
    fresh.took(7, 1)  # chat 5 forgotten, and the id it knew with it: its count starts again, the mark means nothing
    fresh.lost(5)
    assert len(fresh.unfound_since(5, mark)) != 1


def test_the_ids_above_the_lost_sends_floor_are_tried_first():
    """The lost message's id is above every id known when it was sent (one counter, in the order Telegram got the
    messages: tdlib/td#1378): those ids are tried first, then the rest after the question, the known ones never."""
    sent = SentLog()
    for message_id in (11, 13, 14):  # the question's next messages (the person's), then the bot's
        sent.took(5, message_id)
    sent.lost(5, floor=sent.highest(5))
    assert sent.highest(5) == 14
    assert sent.unknown_after(5, 10, 20, limit=3) == [15, 16, 17]
    assert sent.unknown_after(5, 10, 17, limit=4) == [15, 16, 12]  # not above it after all: below, last
    assert sent.unknown_after(5, 10, 15, limit=2) == [12]


def test_a_lost_send_found_on_screen_no_longer_keeps_the_next_one_from_being_looked_for():
    """A lost send found (its id known now) is no message an edit could change unawares: a later lost send in the chat
    is looked for again. One still unfound keeps it from being: the probe's edit would turn that one into its text."""
    sent = SentLog()
    mark = sent.mark(5)
    sent.lost(5)
    sent.found_as(5, 1, 21)
    sent.lost(5)
    assert len(sent.unfound_since(5, mark)) == 1
    assert sent.unknown_after(5, 20, 23, limit=3) == [22]  # the one found is known
    again = sent.mark(5)
    sent.lost(5)
    sent.lost(5)  # lost at the same moment: the first found leaves the second unfound
    sent.found_as(5, again[1] + 1, 30)
    assert len(sent.unfound_since(5, again)) == 1
    sent.lost(5)
    assert len(sent.unfound_since(5, again)) != 1
