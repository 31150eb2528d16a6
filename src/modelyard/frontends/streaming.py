"""Show a streamed answer in Telegram by editing messages, within Telegram's limits.

Telegram allows roughly one edit per second per chat and 4096 characters per message, so
the answer is shown as: a placeholder at once, then edits at most every ``interval``
seconds carrying the accumulated text, then a final edit (with the rating buttons). Text
beyond 4096 characters continues in further messages. A sendMessage whose answer is lost (the connection
dropped after the Bot API took it, a read timeout) is not sent again: the message may well be on screen, and
the Bot API has no idempotency key, so a second send showed it twice (python-telegram-bot#1045).
Edits run in their own task, so a slow Bot API never holds up reading the model's stream. What each
message shows comes from a formatter (Markdown rendered as text and entities, ``telegram_format``);
if the Bot API refuses a link's address (a rule of its own this renderer does not know), the rest of the answer goes
out without links but with its other formatting; if it refuses the entities otherwise, as plain text rather than not at
all.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Callable

import httpx
from telegram import Bot, InlineKeyboardMarkup, Message, MessageEntity
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from modelyard.frontends.telegram_format import Formatted, Kind, plain, split, with_note
from modelyard.frontends.telegram_request import ForeignAnswer, FrontError
from modelyard.frontends.telegram_sent import SentLog, find_lost

log = logging.getLogger(__name__)

#: Telegram's limit, counted in UTF-16 code units (an emoji outside the BMP counts twice)
MAX_MESSAGE = 4096
PLACEHOLDER = "…"
_FINAL_TRIES = 3
#: how long the final message is tried through an outage (no connection, timeouts, 502/503/504 from Telegram's front)
FINAL_OUTAGE = 120.0
_MAX_BACKOFF = 30.0
#: longest wait, once a turn is called off, for its placeholder's sendMessage already on its way to answer
PLACEHOLDER_SETTLE = 10.0
#: what a placeholder that landed after its answer was written elsewhere says, when the Bot API refuses to delete it
LATE_NOTE = "(answered in another message)"
#: the tasks retiring such placeholders (a task nobody holds may be collected before it ends)
_LATE_TASKS: set[asyncio.Task[None]] = set()


def retry_seconds(value: float | dt.timedelta) -> float:
    """A RetryAfter's wait in seconds: python-telegram-bot gives it as seconds or, in newer versions, a timedelta."""
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class StreamingReply:
    """One answer in one chat, possibly spread over several messages."""

    def __init__(self, bot: Bot, chat_id: int, *, interval: float, reply_to: int | None = None,
                 formatter: Callable[[str], Formatted] = plain, thread_id: int | None = None,
                 sent: SentLog | None = None, since: tuple[int, int] | None = None):
        self.bot = bot
        #: the bot's record of what it sent, and where the chat's lost sends stood when the question came (None: a
        #: question from before this process, whose chat may hold messages it never saw): a lost placeholder is
        #: looked for only with both
        self.sent, self.since = sent, since
        #: the placeholder's sendMessage lost its answer: a '…' may be on screen, its id unknown
        self._placeholder_lost = False
        #: the forum topic asked in: every message of the answer goes there (without it, the General topic)
        self.thread_id = thread_id
        self.formatter = formatter
        self.chat_id = chat_id
        self.interval = interval
        self.reply_to = reply_to
        #: the chat's messages of this answer, in order; None for one whose sendMessage got no answer (it may be on
        #: screen, its id unknown: it can be neither edited nor deleted)
        self._ids: list[int | None] = []
        #: monotonic time of the first edit that carried answer text (for benchmarks)
        self.first_edit_at: float | None = None
        self.edits = 0
        #: start() ran: the answer is on its way to the chat (with or without a placeholder)
        self.started = False
        #: finish() gave up on a final message that might still get through later (an outage, repeated errors);
        #: False once it got through, or was refused for good (blocked, removed from the chat)
        self.undelivered = True
        #: the last failure of the final message was the Bot API out of reach or flood control: a later try can get
        #: through without anything changing here (False: the API refused it, a restart may do better)
        self.transient = False
        #: monotonic time before which the Bot API said not to try again (flood control's retry_after)
        self.not_before = 0.0
        #: the chat refused the answer for good while it streamed (the person blocked the bot, the bot left the
        #: group): ``on_gone`` is called once, and the answer need not be written on
        self.gone = False
        #: ... the whole chat does (not only the forum topic asked in): its other messages will not get through either
        self.gone_chat = False
        self.on_gone: Callable[[], None] | None = None
        self._shown: list[Formatted] = []
        #: messages of this answer sent into a page in the Bot API's place (index → the buttons sent with it): on
        #: screen if a relay carried the call out, not if a captive portal stopped it — looked for before sent again
        self._doubtful: dict[int, InlineKeyboardMarkup | None] = {}
        #: the Bot API refused this answer's entities once: the rest goes out as plain text
        self._plain = False
        #: the Bot API refused a link's address once: the rest goes out without links, its other formatting kept
        self._unlinked = False
        self._latest = ""
        self._changed = asyncio.Event()
        self._finishing = asyncio.Event()
        self._paused_until = 0.0
        self._task: asyncio.Task[None] | None = None
        #: the answer has been handed over or finished: what it shows is settled, a '…' landing now is nobody's
        self._closed = False
        #: a placeholder's sendMessage still on its way after the turn was called off (:meth:`_settle_placeholder`)
        self._late: asyncio.Future[Message] | None = None
        #: :meth:`finish` is under way, and the id of a late '…' that landed meanwhile, not yet taken or retired
        self._in_finish = False
        self._parked: int | None = None

    @property
    def message_ids(self) -> list[int]:
        """The ids of this answer's messages known to be on screen."""
        return [i for i in self._ids if i is not None]

    @property
    def unsure(self) -> bool:
        """A message of this answer may be on screen without its id: its 👍/👎 cannot be tied to the request."""
        return None in self._ids

    def adopt(self, chat_id: int, message_ids: list[int]) -> None:
        """Messages an earlier run of this answer left on screen (the bot was killed mid-answer and restarted):
        :meth:`start` turns the first back into the placeholder and the answer is written there, the rest of
        what was shown deleted, so the chat shows one answer, not a cut-off one and a second."""
        self.chat_id = chat_id
        self._ids = list[int | None](message_ids)
        self._shown = [Formatted("\0")] * len(message_ids)  # unknown: the first render edits each one

    async def start(self, placeholder: str = PLACEHOLDER) -> None:
        """Send the placeholder the edits will replace, and start the editor task.

        A placeholder the Bot API refuses (429 flood control, a 502/504 from its front, a reset) does not
        stop the answer: the model runs all the same, and the first edit sends the text as a new message
        (after the flood-control wait). It used to fail the whole turn: no model asked, no routing-log
        row, nothing said to the person, a traceback in the log."""
        self.started = True
        if self._ids:  # adopted: back to the placeholder
            try:
                await self._render(placeholder)
            except TelegramError as exc:
                log.info("telegram: placeholder in chat %s failed (%s)", self.chat_id, type(exc).__name__)
            self._task = asyncio.create_task(self._editor(), name=f"telegram-edits-{self.chat_id}")
            return
        send = asyncio.ensure_future(self._send_placeholder(placeholder))
        try:
            try:
                message = await asyncio.shield(send)
            except asyncio.CancelledError:
                await self._settle_placeholder(send, placeholder)
                raise
        except RetryAfter as exc:  # the whole wait: a try before it ends (it was cut to _MAX_BACKOFF) is refused again
            self._paused_until = time.monotonic() + retry_seconds(exc.retry_after)
            log.info("telegram: placeholder in chat %s refused (flood control, %ss)", self.chat_id, exc.retry_after)
        except TelegramError as exc:
            if maybe_sent(exc):  # not sent again: the answer comes as a new message, and this '…' is looked for
                self._placeholder_lost = True  # once it is shown (:meth:`_clear_placeholder`)
                log.info("telegram: placeholder in chat %s: no answer from the Bot API (%s), it may be on screen; "
                         "not sent again", self.chat_id, _why(exc))
            elif maybe_on_screen(exc):  # a page in the Bot API's place: a portal's (nothing done) or a relay's
                self._placeholder_lost = True  # (done): which, the search once the answer shows tells
                log.info("telegram: placeholder in chat %s: %s; looked for once the answer is shown", self.chat_id,
                         exc)
            elif _gone(exc):  # blocked, removed from the group: the model need not be asked at all
                log.info("telegram: chat %s can no longer be written to (%s)", self.chat_id, exc)
                self._refused(exc)
                return
            else:
                log.info("telegram: placeholder in chat %s failed (%s)", self.chat_id, type(exc).__name__)
        else:
            self._ids.append(message.message_id)
            self._shown.append(Formatted(placeholder))
        self._task = asyncio.create_task(self._editor(), name=f"telegram-edits-{self.chat_id}")

    async def _send_placeholder(self, placeholder: str) -> Message:
        try:
            return await self.bot.send_message(self.chat_id, placeholder, reply_to_message_id=self.reply_to,
                                               message_thread_id=self.thread_id)
        except ChatMigrated as exc:
            self._migrated(exc.new_chat_id)
            return await self.bot.send_message(self.chat_id, placeholder)

    async def _settle_placeholder(self, send: asyncio.Future[Message], placeholder: str) -> None:
        """The turn was called off while its placeholder's sendMessage was on its way (a comment whose forwards took its
        turn over, /stop, the bot stopping). Cancelled with it, the call's answer — the '…''s id — was dropped, but
        Telegram had taken the call: the '…' showed, known to nobody, and stayed above the answer for good. The send
        goes on (shielded) for up to :data:`PLACEHOLDER_SETTLE`; its id is kept, so whoever ends this answer
        (:meth:`hand_over`, :meth:`finish`) edits it. One whose answer is still lost then is looked for as a lost
        placeholder is.

        A send still unanswered then is not cancelled: cancelling drops only the answer, and a call Telegram holds
        (under load, over a chat's quota: python-telegram-bot#1045, "still delivers them") is carried out all the same:
        the '…' showed after the search for it, and stayed. It is let run (:meth:`_landed`): a '…' that lands before
        this answer is settled is its first message, one that lands after is deleted (or, refused that, says so)."""
        done, _ = await asyncio.wait({send}, timeout=PLACEHOLDER_SETTLE)
        if send not in done:
            self._late = send
            send.add_done_callback(self._landed)
        error = send.exception() if send in done and not send.cancelled() else None
        if send in done and error is None:
            self._ids.append(send.result().message_id)
            self._shown.append(Formatted(placeholder))
        elif error is None or (isinstance(error, TelegramError) and (maybe_sent(error) or maybe_on_screen(error))):
            self._placeholder_lost = True
        log.info("telegram: chat %s: the answer was called off while its placeholder was being sent; %s", self.chat_id,
                 "its id kept" if self._ids else "still no answer: the send goes on, and what it shows is settled "
                 "when it lands" if self._late is not None else "it may be on screen, looked for once the answer shows"
                 if self._placeholder_lost else "it was not sent")

    def _landed(self, send: asyncio.Future[Message]) -> None:
        """The placeholder's sendMessage, let run past :data:`PLACEHOLDER_SETTLE`, has its answer."""
        self._late = None
        if send.cancelled() or send.exception() is not None:
            return  # not sent, or lost again: the search for a lost placeholder stands
        message_id = send.result().message_id
        if message_id in self._ids:  # found by that search meanwhile
            return
        if self._in_finish:  # the final text's next try takes it where nothing of the answer is on screen (finish)
            self._parked = message_id
            self._placeholder_lost = False
            return
        if not self._closed:  # in time to be this answer's first message: whoever ends it edits it
            self._ids.insert(0, message_id)
            self._shown.insert(0, Formatted(PLACEHOLDER))
            self._placeholder_lost = False
            return
        self._retire_later(message_id)

    def _retire_later(self, message_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._retire_late(message_id),
                                                     name=f"telegram-late-placeholder-{self.chat_id}")
        _LATE_TASKS.add(task)
        task.add_done_callback(_LATE_TASKS.discard)

    def _take_parked(self) -> None:
        """A late '…' that landed while :meth:`finish` ran, before a try of the final text: it becomes the answer's
        message where none is on screen (the try edits it). It was deleted, and the answer sent as a new message below
        where the '…' had been. Not where a message of the answer is, or may be (an id lost): the '…' may have landed
        below it, and two messages would show one answer."""
        if self._parked is not None and not self._ids:
            self._ids.append(self._parked)
            self._shown.append(Formatted(PLACEHOLDER))
            self._parked = None

    async def _retire_late(self, message_id: int) -> None:
        """A '…' that landed after its answer was settled elsewhere: deleted, or, where the Bot API refuses that (a
        group's message older than 48 hours, no right to delete), edited to say where the answer went."""
        try:
            await self.bot.delete_message(self.chat_id, message_id)
        except TelegramError as exc:
            log.info("telegram: chat %s: a placeholder that landed late (message %s) could not be deleted (%s)",
                     self.chat_id, message_id, type(exc).__name__)
        else:
            log.info("telegram: chat %s: a placeholder that landed after its answer was written elsewhere (message "
                     "%s) deleted", self.chat_id, message_id)
            return
        try:
            await self.bot.edit_message_text(LATE_NOTE, chat_id=self.chat_id, message_id=message_id)
        except TelegramError as exc:
            log.warning("telegram: chat %s: a placeholder that landed late (message %s) stays as '…' (%s)",
                        self.chat_id, message_id, type(exc).__name__)

    async def hand_over(self) -> list[int]:
        """Stop showing this answer (its turn was called off) and leave its messages as they are for another turn to
        :meth:`adopt`: their ids."""
        self._finishing.set()
        self._changed.set()
        if self._task is not None:  # shielded: a /stop meanwhile cut an edit under way, which Telegram carried out
            with contextlib.suppress(Exception):  # after the answer's last word, putting back a text before it
                await asyncio.shield(self._task)
        if self._placeholder_lost and self._late is None:
            await self._find_placeholder()
        self._closed = True
        return list(self.message_ids)

    async def _find_placeholder(self) -> None:
        """The placeholder whose sendMessage lost its answer, looked for now (:func:`telegram_sent.find_lost`) so the
        turn that takes this answer over writes there. Left to this answer's :meth:`finish`, the search never came:
        the answer was finished elsewhere, and the '…' stayed above it for good."""
        self._placeholder_lost = False
        if self.reply_to is None or self.sent is None or self.since is None:
            return
        try:
            found = await find_lost(self.bot, self.sent, self.chat_id, self.since, PLACEHOLDER, after=self.reply_to,
                                    before=min(self.message_ids) if self.message_ids else None)
        except TelegramError as exc:  # flood control, an outage: not worth holding the turn that takes it over
            log.info("telegram: chat %s: stopped looking for a placeholder whose answer was lost (%s)", self.chat_id,
                     type(exc).__name__)
            return
        if found is not None:  # the answer's first message: the one written in, the rest deleted (:meth:`adopt`)
            self._ids.insert(0, found)
            self._shown.insert(0, Formatted(PLACEHOLDER))
            log.info("telegram: chat %s: the placeholder whose answer was lost (message %s) found; handed over",
                     self.chat_id, found)

    @property
    def latest(self) -> str:
        """The newest text handed to :meth:`update` (what the person has seen, or is about to)."""
        return self._latest

    async def update(self, text: str) -> None:
        """``on_text`` callback: remember the accumulated text; the editor task shows it."""
        self._latest = text
        self._changed.set()

    async def finish(self, text: str, markup: InlineKeyboardMarkup | None = None, *, note: str = "",
                     outage: float | None = None, tries: int = _FINAL_TRIES) -> list[int]:
        """Stop streaming and show ``text`` for good (``markup`` goes under the last part).

        ``note`` (who answered) is set apart in italics after the formatted text, so an answer cut off
        inside a code block cannot swallow it. An outage is tried through for ``outage`` seconds (FINAL_OUTAGE); a
        flood-control wait past :data:`_MAX_BACKOFF` is not slept here (a try before it ends is refused again, and
        counts down the same wait): :attr:`not_before` says when, and the caller tries again then (``TelegramBot``).
        A late '…' (:meth:`_settle_placeholder`) that lands meanwhile is written in where that is safe
        (:meth:`_take_parked`), else deleted."""
        self._finishing.set()
        self._changed.set()
        self._in_finish = True  # a '…' landing from now on is parked (_landed): taken by the next try, else retired
        try:
            return await self._finish(text, markup, note, outage, tries)
        finally:
            self._in_finish, self._closed = False, True  # one landing later is retired (_landed)
            if self.undelivered:  # the final text is tried again later (flood control, an outage): there
                self._take_parked()
            if self._parked is not None:  # landed while a try was under way, or the answer shows elsewhere
                self._retire_later(self._parked)
                self._parked = None

    async def _finish(self, text: str, markup: InlineKeyboardMarkup | None, note: str, outage: float | None,
                      tries: int) -> list[int]:
        if self._task is not None:
            try:
                await self._task
            except Exception as exc:  # never lose the final answer to a failed intermediate edit
                log.warning("telegram: edit task in chat %s failed (%s)", self.chat_id, type(exc).__name__)
        outage = FINAL_OUTAGE if outage is None else outage
        attempt, outage_until, pause = 0, time.monotonic() + outage, 0.5
        self.transient = False
        if (held := self._paused_until - time.monotonic()) > 0:
            # flood control answered an edit of this answer: a try before its retry_after is over is refused again
            # (the wait counting down: agno-agi/agno#7360) and counts against the chat, so it is waited out first
            if held > _MAX_BACKOFF:
                self.transient, self.not_before, attempt = True, self._paused_until, tries
                log.info("telegram: final answer in chat %s held by flood control for %gs", self.chat_id, held)
            else:
                await asyncio.sleep(held)
        while attempt < tries:
            self._take_parked()
            try:
                await self._render(text or PLACEHOLDER, markup, note)
                self.undelivered = self.transient = False
                break
            except RetryAfter as exc:
                attempt += 1
                wait = retry_seconds(exc.retry_after)
                self.transient, self.not_before = True, time.monotonic() + wait
                if wait > _MAX_BACKOFF or attempt >= tries:
                    log.info("telegram: final answer in chat %s held by flood control for %gs", self.chat_id, wait)
                    break
                await asyncio.sleep(wait)
            except TelegramError as exc:
                if _gone(exc):
                    # blocked by the person, removed from the group, a topic closed: no try will get through
                    log.info("telegram: final answer in chat %s refused (%s)", self.chat_id, exc)
                    self.undelivered = self.transient = False
                    self.gone, self.gone_chat = True, _chat_wide(exc)
                    break
                self.transient = _unreachable(exc)
                if self.transient and time.monotonic() < outage_until:
                    # the network or Telegram's front is down (a reset, a timeout, a 502): three tries in 1.5 s lost
                    # the final answer to any outage longer than that — it is tried until ``outage`` runs out
                    if pause == 0.5:
                        log.warning("telegram: final answer in chat %s: Telegram unreachable (%s); trying again for "
                                    "up to %.0f s", self.chat_id, _outage(exc), outage)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 10.0)
                    continue
                attempt += 1
                log.log(logging.INFO if self.transient else logging.WARNING,
                        "telegram: final edit in chat %s failed (%s), attempt %d",
                        self.chat_id, type(exc).__name__, attempt)
                if attempt < tries:
                    await asyncio.sleep(0.5 * attempt)
        if self.undelivered:
            log.warning("telegram: final answer in chat %s could not be delivered", self.chat_id)
        elif self._placeholder_lost and self._late is None:
            await self._clear_placeholder()
        return list(self.message_ids)

    async def _clear_placeholder(self) -> None:
        """Find and delete the placeholder whose sendMessage lost its answer: it stayed above the answer as a bare
        '…', its id never known (:func:`telegram_sent.find_lost`)."""
        self._placeholder_lost = False
        if self.reply_to is None or not self.message_ids or self.sent is None or self.since is None:
            return
        try:
            found = await find_lost(self.bot, self.sent, self.chat_id, self.since, PLACEHOLDER, after=self.reply_to,
                                    before=min(self.message_ids))
        except TelegramError as exc:  # flood control, an outage: not worth fighting for
            log.info("telegram: chat %s: stopped looking for a message whose answer was lost (%s)", self.chat_id,
                     type(exc).__name__)
            return
        if found is None:
            return
        try:
            await self.bot.delete_message(self.chat_id, found)
        except TelegramError as refused:
            log.info("telegram: chat %s: the lost placeholder (message %s) could not be deleted (%s)",
                     self.chat_id, found, type(refused).__name__)
            return
        log.info("telegram: chat %s: the placeholder whose answer was lost (message %s) deleted", self.chat_id, found)

    async def _find_part(self, index: int) -> int | None:
        """The id of this answer's message at ``index``, whose sendMessage lost its answer (:func:`find_lost`): found,
        the final text is edited into it. It stayed with its earlier text, and the final text followed it as a new
        message, the part shown twice. Only where it is the answer's one message so lost. A try the Bot API did not
        answer is raised (the final message is tried again later): sent anew, a part it did take showed twice."""
        if self._placeholder_lost or self._ids.count(None) != 1 or self.sent is None or self.since is None:
            return None
        earlier = [m for m in self._ids[:index] if m is not None]
        after = max(earlier) if earlier else self.reply_to
        if after is None:
            return None
        shown = self._shown[index]
        return await find_lost(self.bot, self.sent, self.chat_id, self.since, shown.text, after=after,
                               entities=_entities(shown), markup=self._doubtful.get(index))

    async def _editor(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._finishing.is_set():
                return
            wait = self._paused_until - time.monotonic()
            if wait <= 0:
                try:
                    await self._render(self._latest)
                except RetryAfter as exc:
                    self._paused_until = time.monotonic() + retry_seconds(exc.retry_after)
                    self._changed.set()  # the text still has to be shown later
                except TelegramError as exc:  # a lost edit is fine: the next one carries the whole text
                    if _gone(exc):  # but not this one: blocked, removed from the group — no edit will get through
                        log.info("telegram: chat %s can no longer be written to (%s)", self.chat_id, exc)
                        self._refused(exc)
                        return
                    log.info("telegram: edit in chat %s failed (%s)", self.chat_id, type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finishing.wait(), max(self.interval, wait))

    def _refused(self, exc: TelegramError) -> None:
        """The chat (or the topic) refuses this answer for good while it is written: said once (``on_gone``)."""
        self.gone, self.gone_chat = True, _chat_wide(exc)
        if self.on_gone is not None:
            self.on_gone()

    def _formatted(self, text: str, note: str) -> Formatted:
        body = plain(text) if self._plain else self.formatter(text)
        if self._unlinked:
            body = body.unlinked()
        if not body.text.strip():
            # nothing to see yet: while it streams ('```python' before its code) the placeholder stays; a final
            # answer that renders as nothing (an empty code block) is shown as the model wrote it
            body = plain((text.strip() if self._finishing.is_set() else "") or PLACEHOLDER)
        return with_note(body, note) if note else body

    def _migrated(self, chat_id: int) -> None:
        """The group became a supergroup (Bot API 400 with ``migrate_to_chat_id``): the answer goes on in the new
        chat, as new messages (the old chat's messages can no longer be edited, nor replied to)."""
        log.info("telegram: chat %s moved to %s (upgraded to a supergroup); the answer goes on there",
                 self.chat_id, chat_id)
        self.chat_id = chat_id
        self.reply_to = self.thread_id = None
        self._forget_from(0)

    async def _render(self, text: str, markup: InlineKeyboardMarkup | None = None, note: str = "") -> None:
        try:
            await self._render_in_chat(text, markup, note)
        except ChatMigrated as exc:
            self._migrated(exc.new_chat_id)
            await self._render_in_chat(text, markup, note)

    async def _render_in_chat(self, text: str, markup: InlineKeyboardMarkup | None, note: str) -> None:
        parts = split(self._formatted(text, note), MAX_MESSAGE) if text else [Formatted(PLACEHOLDER)]
        last = len(parts) - 1
        for i, part in enumerate(parts):
            buttons = markup if i == last else None
            if i < len(self._ids) and self._ids[i] is None:  # sent, its answer lost: it cannot be edited
                if self._shown[i] == part and i not in self._doubtful:
                    continue  # it shows this part already, as far as anyone can tell
                if not self._finishing.is_set():
                    return  # while streaming, no further message: the final text goes out once, below it
                found = await self._find_part(i)
                if found is None:
                    await self._retire(i)  # the final part, and the rest after it, go out anew below the stale one
                else:
                    self._ids[i] = found
                    self._doubtful.pop(i, None)
            if i < len(self._ids):
                if self._shown[i] != part or buttons is not None:
                    await self._edit(i, part, buttons)
            else:
                message_id, part = await self._send(i, part, buttons)
                self._ids.append(message_id)
                self._shown.append(part)
        for message_id in self._ids[len(parts):]:  # the final text is shorter than what streamed
            if message_id is not None:
                with contextlib.suppress(TelegramError):
                    await self.bot.delete_message(self.chat_id, message_id)
        self._forget_from(len(parts))

    async def _retire(self, index: int) -> None:
        """Leave the message at ``index`` (its id unknown, its text out of date) where it is; the later ones go too
        (deleted as they are rewritten below it), so the answer reads on in order."""
        log.warning("telegram: chat %s: a message of this answer may show an earlier text (its sendMessage got no "
                    "answer); the final text follows it as a new message", self.chat_id)
        for message_id in self._ids[index + 1:]:
            if message_id is not None:
                with contextlib.suppress(TelegramError):
                    await self.bot.delete_message(self.chat_id, message_id)
        self._forget_from(index)

    def _forget_from(self, index: int) -> None:
        """No message of this answer from ``index`` on is kept track of any more."""
        del self._ids[index:], self._shown[index:]
        for doubtful in [i for i in self._doubtful if i >= index]:
            del self._doubtful[doubtful]

    async def _send(self, index: int, part: Formatted, markup: InlineKeyboardMarkup | None
                    ) -> tuple[int | None, Formatted]:
        """Send ``part`` as message ``index`` of the answer: its id, or None when the Bot API may have taken it with
        its answer lost (not sent again — a second send would show it twice).

        A page in the Bot API's place (``ForeignAnswer``: a captive portal's, which reached nothing, or a relay's that
        carried the call out and answered with its own page or an empty 200) is raised, as an outage: the final
        message is tried again. The part is noted as perhaps on screen (:attr:`_doubtful`): the next try looks for it
        first (:meth:`_find_part`) and sends it anew only where it is not — sent again at once, a relay's part showed
        twice."""
        try:
            while True:  # each refusal of the entities sends fewer of them: links, then all
                try:
                    message = await self.bot.send_message(self.chat_id, part.text, reply_markup=markup,
                                                          entities=_entities(part), message_thread_id=self.thread_id)
                    break
                except BadRequest as exc:
                    if not (part.entities and _refused_entities(exc)):
                        raise
                    part = self._give_up_formatting(part, exc)
        except NetworkError as exc:
            if maybe_on_screen(exc) and not maybe_sent(exc):
                if index == len(self._ids):
                    self._ids.append(None)
                    self._shown.append(part)
                else:
                    self._ids[index], self._shown[index] = None, part
                self._doubtful[index] = markup
                log.info("telegram: chat %s: a message of the answer met %s; looked for before it is sent again",
                         self.chat_id, exc)
                raise
            if not maybe_sent(exc):
                raise
            log.warning("telegram: chat %s: a message of the answer got no answer from the Bot API (%s): it may be "
                        "on screen, so it is not sent again%s", self.chat_id, _why(exc),
                        "; its 👍/👎 cannot be tied to the request" if markup is not None else "")
            return None, part
        return message.message_id, part

    async def _edit(self, index: int, part: Formatted, markup: InlineKeyboardMarkup | None) -> None:
        try:
            message_id = self._ids[index]
            assert message_id is not None
            await self.bot.edit_message_text(part.text, chat_id=self.chat_id, message_id=message_id,
                                             reply_markup=markup, entities=_entities(part))
        except BadRequest as exc:
            said = str(exc).lower()
            if part.entities and _refused_entities(exc):
                part = self._give_up_formatting(part, exc)
                await self._edit(index, part, markup)
                return
            if "not found" in said or "can't be edited" in said or "message_id_invalid" in said:
                # the person deleted the message being edited ("message to edit not found", or MESSAGE_ID_INVALID:
                # python-telegram-bot#2733), or it is past the 48 hours a bot may edit its message
                # (an answer held through a long outage, shown after a restart): the text goes out anew. The second
                # was raised: the answer was kept for a next start, which met the same refusal
                self._ids[index], part = await self._send(index, part, markup)
            elif "not modified" not in said:
                raise
        self._shown[index] = part
        self.edits += 1
        if self.first_edit_at is None and part.text != PLACEHOLDER:
            self.first_edit_at = time.monotonic()

    def _give_up_formatting(self, part: Formatted, exc: BadRequest) -> Formatted:
        """What to send after the Bot API refused ``part``'s entities: without its links when it refused a link's
        address (once), else as plain text."""
        if _refused_link(exc) and any(e.kind is Kind.TEXT_LINK for e in part.entities):
            if not self._unlinked:
                log.warning("telegram: chat %s: the Bot API refused a link of this answer (%s); the rest of it goes "
                            "out without links", self.chat_id, _unquoted(exc))
            self._unlinked = True
            return part.unlinked()
        if not self._plain:
            log.warning("telegram: chat %s: the Bot API refused this answer's formatting (%s); "
                        "the rest of it goes out as plain text", self.chat_id, exc)
        self._plain = True
        return part.plain()


def _entities(part: Formatted) -> list[MessageEntity] | None:
    return [MessageEntity(e.kind.value, e.offset, e.length, url=e.url, language=e.language)
            for e in part.entities] or None


#: 400s that say the chat cannot be written to (the bot removed, a topic closed, posting restricted; a group
#: deleted or left behind by its upgrade — "Group chat was deactivated"; a user whose account is gone —
#: "PEER_ID_INVALID": aiogram 2's GroupDeactivated and InvalidPeerID, aiogram/aiogram#598): as a 403
_UNWRITABLE = ("chat not found", "topic_closed", "topic_deleted", "thread not found", "not enough rights",
               "have no rights", "chat_write_forbidden", "chat_restricted", "group chat was deactivated",
               "peer_id_invalid")


def _unwritable(exc: BadRequest) -> bool:
    said = str(exc).lower()
    return any(reason in said for reason in _UNWRITABLE)


#: the refusals of one forum topic, not of the chat: its other topics still take messages
_TOPIC_REFUSALS = ("topic_closed", "topic_deleted", "thread not found")


def _chat_wide(exc: TelegramError) -> bool:
    """The refusal is the whole chat's (blocked, removed, the group gone), not a forum topic's."""
    return not any(reason in str(exc).lower() for reason in _TOPIC_REFUSALS)


def _gone(exc: TelegramError) -> bool:
    """The chat refuses the bot for good: blocked by the person, removed from the group, a topic closed."""
    return isinstance(exc, Forbidden) or (isinstance(exc, BadRequest) and _unwritable(exc))


def _unreachable(exc: TelegramError) -> bool:
    """No answer from the Bot API itself: the connection failed or timed out, or its front said 502/503/504
    (python-telegram-bot's NetworkError; BadRequest is one too, but that is the API refusing)."""
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


#: failures before the request could reach the Bot API: sending it again cannot show it twice
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError, httpx.UnsupportedProtocol)


def maybe_sent(exc: TelegramError) -> bool:
    """The request may have reached the Bot API and been carried out, its answer lost: the connection dropped or
    timed out after the request went (python-telegram-bot raises NetworkError/TimedOut from the httpx error; its wiki,
    'Handling network errors': a TimedOut request may still have been processed — #1045, #3937), or Telegram's front
    passed it on and gave up waiting (504 Gateway Time-out: telegram_request). Not a connect failure or pool timeout
    (never sent), nor an answer the API or its front gave (a 502 or 503: not handed on; a 400)."""
    if isinstance(exc, FrontError):
        return exc.handed_on
    cause = exc.__cause__
    return (isinstance(exc, NetworkError) and isinstance(cause, httpx.TransportError)
            and not isinstance(cause, _NOT_SENT))


def maybe_on_screen(exc: TelegramError) -> bool:
    """:func:`maybe_sent`, or a 2xx page in the Bot API's place with no trace of its answer (``ForeignAnswer``): a
    captive portal's, which reached nothing, or a relay's that carried the call out and answered with its own page
    or an empty body — the two cannot be told apart from the page. Sent again (a portal's call must be), and looked
    for afterwards like a lost message: an edit to its text is 'not modified' only where it is on screen; where a
    portal stopped it no id answers so."""
    return maybe_sent(exc) or (isinstance(exc, ForeignAnswer) and not exc.relayed)


def _outage(exc: TelegramError) -> str:
    """What kept the Bot API out of reach, for the log: the front's or a proxy's own words (a proxy's says to check
    it), else the error's kind."""
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, FrontError) else type(exc).__name__


def _why(exc: TelegramError) -> str:
    """Why an answer was lost: the transport error's kind, or the front's or relay's own words."""
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else _outage(exc)


def _refused_entities(exc: BadRequest) -> bool:
    """"Can't parse entities: …", "ENTITY_BOUNDS_INVALID", "entity … is too long" and the like."""
    return "entit" in str(exc).lower()


def _unquoted(exc: BadRequest) -> str:
    """The Bot API's words without the URL they quote: an answer's address may carry a token."""
    return re.sub(r"'.*'", "'…'", str(exc))


def _refused_link(exc: BadRequest) -> bool:
    """A text link's address refused: "entity URL '…' is invalid: URL host is empty" (littlebearapps/untether#157;
    tdlib's ``get_message_entities``), "Wrong message entity: … URL …" (older tdlib's words)."""
    said = str(exc).lower()
    return "entit" in said and "url" in said
