"""Telegram front-end: long polling, allowlist, per-chat history, streamed answers, 👍/👎 ratings.

Every update first passes :meth:`TelegramBot._gate`: a user not on ``telegram.allowed_users``
is dropped before any handler runs, so no agent is started and nothing is spent (the drop is
logged without the message text). Allowed messages become one :meth:`Session.turn` each (the
turn pipeline every front-end shares, frontends/session.py). This module is Telegram's I/O:
commands, streamed message edits, rating buttons.

Order and load: a chat's messages are answered one after another, in the order sent (a per-chat
lock). A finished answer the Bot API holds back (an outage, flood control) lets the lock go: the
chat's next messages are answered meanwhile and shown after it, in order (:class:`_InOrder`);
/stop leaves finished answers be. Other chats, commands (``/status``, ``/stop``, ``/help``...)
and button presses are handled at once, beside any answer being written. How many answers are
written at once is bounded by the model slots there are (:class:`TurnGate`): a burst waits here,
in order, rather than in a model's queue, where a wait past ``timeouts.queue`` ended as "no model
could answer".

Nothing taken is lost: every update is committed to the inbox (frontends/telegram_inbox.py) before
python-telegram-bot can confirm it to Telegram, and what a killed process had not answered is
answered when the bot starts again.

Secrets: the bot token is part of every Bot API URL, and httpx logs request URLs at INFO, so
httpx is held at WARNING and :class:`TokenFilter` scrubs the token from any log handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)

from modelyard.agents.turn import prepare_routing
from modelyard.config import Config
from modelyard.config.names import not_an_agent
from modelyard.config.schema import clean_secret
from modelyard.errors import ModelyardError, redact
from modelyard.frontends.chat_locks import ChatLocks
from modelyard.frontends.history import ConversationStore
from modelyard.frontends.reask import Switch
from modelyard.frontends.session import FAILED, Session
from modelyard.frontends.streaming import (
    MAX_MESSAGE,
    PLACEHOLDER,
    StreamingReply,
    maybe_on_screen,
    maybe_sent,
    retry_seconds,
)
from modelyard.frontends.telegram_caption import CAPTION_COMMAND, caption_command
from modelyard.frontends.telegram_checklist import written
from modelyard.frontends.telegram_elsewhere import replied_elsewhere
from modelyard.frontends.telegram_format import FORMATTERS, plain, split
from modelyard.frontends.telegram_forward import forwarded
from modelyard.frontends.telegram_gather import FORWARD_HOLD, FORWARD_WAIT, STOOD_ALONE, Gatherer, may_continue
from modelyard.frontends.telegram_inbox import Inbox, Kept
from modelyard.frontends.telegram_kinds import HEARD, UNREAD, attachment, service_only
from modelyard.frontends.telegram_request import ForeignAnswer, FrontAwareRequest, api_base
from modelyard.frontends.telegram_sent import SentLog, Shown, find_lost
from modelyard.ledger.labels import LabelSource
from modelyard.paths import dotenv_unread, key_only_in_dotenv
from modelyard.router.state import Condition
from modelyard.runtime import Runtime

log = logging.getLogger(__name__)

FRONTEND = "telegram"
RATE_UP, RATE_DOWN = "rate:1", "rate:0"

#: how a message being answered ends when the bot stops (``serve`` shutting down, Ctrl-C); it stays in the inbox
STOPPED_NOTE = "[answer stopped — the bot is shutting down; it answers this message when it is back]"
#: how an answer ends when the person sent /stop
CANCELLED_NOTE = "[stopped]"
#: the placeholder, and the line under the answer, of a message a killed or stopped run had begun: the model was
#: asked again from the start (what the cut-off run had written is gone, and its tokens were spent)
RESTARTED_PLACEHOLDER = "… the bot restarted while writing this answer; asking again from the start"
RESTARTED_NOTE = "↻ the bot restarted while writing this; this answer was asked again from the start"
#: a 👍/👎 on a message linked to no request: Telegram took it but its answer (the message id) was lost on the way
#: back — the person was told "can't be rated by you" about their own answer
UNLINKED = "Sorry — this message is not linked to its request (Telegram's reply was lost), so it can't be rated."
#: how much of a message replied to is shown to the model with the reply (characters), and of the bot's own answer
REPLIED_CHARS = 1000
OWN_CHARS = 200
#: a group member's /stop while someone else's answer is being written
NOT_YOURS = "Only the person who asked, or a group admin, can stop that answer."
#: the reply to a message sent on behalf of a chat (an anonymous admin, a person posting as their channel)
ANONYMOUS = ("I can't tell who sent this: it was posted on behalf of a chat (as an anonymous admin or as a channel), "
             "so I don't answer it. Send it as yourself.")
#: the stand-ins the Bot API puts in ``from`` of a message sent on behalf of a chat (sender_chat): @GroupAnonymousBot
#: for anonymous admins, @Channel_Bot for a person posting as a channel, Telegram (777000) for a channel post forwarded
#: into its discussion group — one id for everyone behind it, never a person to allow
STAND_INS = frozenset({1087968824, 136817688, 777000})
#: least seconds between two streamed edits in a group: a bot may send and edit about 20 times a minute in one group,
#: sends and edits counted together (tdlib/td#2592; grammY's "Flood Limits", from tdlibchat) — edits every second hit
#: 429 twenty seconds into an answer, and its retry_after (the rest of the minute) held the final answer and every
#: reply in the group. One every 4 s leaves a quarter of the minute's budget to the "…", the final message, commands
GROUP_EDIT_INTERVAL = 4.0
#: first and longest pause between two tries of a final answer the Bot API could not take (outage, flood control)
REDELIVER_FIRST = 2.0
REDELIVER_MAX = 60.0
#: longest flood-control wait a short reply (a command's, a refusal) waits out before it is given up
SAY_WAIT = 30.0
#: updates handled at once (python-telegram-bot's bound): messages waiting for their chat's earlier answer, or for
#: a model slot, hold one each — far below this, so /status, /stop and other chats are never held up behind them
MAX_UPDATES = 4096
#: updates noted as followed by a forward kept at most (those never handled as a message are dropped with the rest)
FOLLOWED_KEPT = 4096
#: longest wait, when stopping, for the turns in flight to show where they stopped
STOP_WAIT = 10.0
#: how long an answer called off and left unadopted is tried through an outage to say it stopped
ORPHAN_OUTAGE = 10.0
#: how often "typing…" is sent again while forwards are held (Telegram shows it for 5 seconds at most)
TYPING_EVERY = 4.0
#: finished replies kept on the bot (benchmarks read the newest's first_edit_at): a bot runs for weeks
REPLIES_KEPT = 32
#: seconds between two log lines about the same failure of getUpdates
POLL_ERROR_EVERY = 60.0
#: how long a 409 Conflict on getUpdates (another poller on the token) stays in /healthz after the last one: two
#: pollers each win some calls, so the bot's own polls succeed in between
CONFLICT_SHOWN = 120.0
#: no getUpdates answered for this long past its own timeout: polling is stuck — a connection gone silent (each poll
#: times out, which python-telegram-bot retries without a word), or its polling loop stopped with no error
#: (python-telegram-bot#4069: after up to a week, the process running, no request made)
STALL_AFTER = 60.0
#: tries of each Bot API call the bot starts with (getMe, deleteWebhook), and the longest wait between two
START_TRIES = 4
START_WAIT = 10.0

HELP = ("Send me a task and I'll route it to the right agent.\n"
        "/agent NAME — talk to one agent directly; /agent — back to automatic routing\n"
        "/status — models and queues\n"
        "/stop — stop the answer being written (and the messages waiting behind it)\n"
        "/reset — forget this chat's history")


class TelegramSetupError(ModelyardError):
    """The bot cannot start (no token, ...)."""


class TokenFilter(logging.Filter):
    """Replace the bot token in any log record (message, arguments already merged)."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token and self.token in message:
            record.msg, record.args = message.replace(self.token, "***"), ()
        return True


def quiet_http_logs(token: str, handlers: Iterable[logging.Handler] = ()) -> None:
    """Keep the token out of logs: no URL logging by httpx, and a scrubbing filter on ``handlers``."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in handlers:  # one filter per token: a handler that outlives one bot must scrub the next one's too
        if not any(isinstance(f, TokenFilter) and f.token == token for f in handler.filters):
            handler.addFilter(TokenFilter(token))


#: a token as @BotFather gives it: the bot's id (public), a colon, the secret (35 characters today)
TOKEN_SHAPE = re.compile(r"(\d+):[A-Za-z0-9_-]{20,}")


def token_refused(token_env: str, token: str) -> str:
    """What Telegram refusing the token (getMe's 401, python-telegram-bot's InvalidToken) means, and what to do.
    The library's words ("The token `<the whole token>` was rejected by the server.", telegram/_bot.py) are never
    shown: the secret went to the terminal and to a service's journal. The bot's id (the part before the colon,
    public: it is the bot's user id) names which."""
    shape = TOKEN_SHAPE.fullmatch(token)
    if shape is None:
        return (f"Telegram refused the value of {token_env} (not shown): it does not look like a bot token, which "
                "is the bot's number, a colon and ~35 letters, digits, - and _ (123456789:AAH…) — copy the token "
                "@BotFather gave (/mybots → the bot → API Token), not the bot's name or link")
    return (f"Telegram refused the bot token in {token_env} (bot {shape.group(1)}; the token is not shown): "
            "revoked in @BotFather, or copied with a character missing — copy it again from @BotFather")


def bot_token(config: Config) -> str:
    """The token from the environment variable named by ``telegram.token_env``."""
    name = config.telegram.token_env
    token = clean_secret(os.environ.get(name)) or ""
    if re.match(r"bot\d+:", token, re.IGNORECASE):  # copied from a URL (…/bot<token>/getMe): the prefix is ours
        token = token[3:]
    if not token:
        # where a newcomer's token is: a .env this process does not read (paths.key_only_in_dotenv), or nowhere yet
        dotenv = key_only_in_dotenv(name)
        where = dotenv_unread(dotenv) if dotenv else "the token @BotFather gives for /newbot in a chat with it"
        raise TelegramSetupError(f"no Telegram bot token: set the environment variable {name} ({where}; or point "
                                 "telegram.token_env at the variable that holds it)")
    return token


def nobody_allowed(config: Config, start_again: str) -> str | None:
    """The warning for a bot that will answer nobody (``telegram.allowed_users`` empty), and how to learn the id to
    put there; None when someone is allowed. ``start_again``: the command that restarts the bot."""
    if config.telegram.allowed_users:
        return None
    return ("telegram.allowed_users is empty: the bot will answer nobody — send it a message: the line 'ignored "
            "message from user N' below names your user id; put N in telegram.allowed_users and " + start_again)


def rating_buttons() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data=RATE_UP),
                                  InlineKeyboardButton("👎", callback_data=RATE_DOWN)]])


def unreadable(attached: str | None) -> str:
    """The reply to a message with nothing to read: what the bot cannot take, and what to send instead."""
    if attached in HEARD:
        return f"I can't listen to {attached} — please type your request."
    if attached:
        return f"I can't see {attached} — please send your request as text (a caption on it works too)."
    return "I can only read text messages — please send your request as text."


async def _answer_press(query: CallbackQuery, text: str | None = None) -> None:
    """answerCallbackQuery; one Telegram no longer takes is said in a line, not as an error. A press answered late —
    handled after a restart from the inbox, or after the 10 s wait for its answer's link — is refused with 400 "query
    is too old and response timeout expired or query ID is invalid" (aiogram_dialog#145, nutgram#725; Telethon#4073:
    the window is seconds): what the press did (the rating) is kept; only its toast is gone. It was a WARNING with
    the library's words and no more, as if the rating had failed."""
    try:
        await query.answer(text)
    except BadRequest as exc:
        if "query is too old" not in str(exc).lower() and "query_id_invalid" not in str(exc).lower():
            raise
        log.info("telegram: a button press from user %s was answered too late for Telegram to show the answer (%s); "
                 "what it did stands", query.from_user.id, text or "no text")


class TurnGate:
    """How many answers are written at once: as many as there are model slots (every model not unavailable; one
    at least), first come first served across chats. Beyond that a turn waits here, its placeholder on screen:
    a burst in a model's own queue waited ``timeouts.queue`` (30 s) and then ended as 'no model could answer'
    for every message past the first few, though each would have been answered in its turn."""

    def __init__(self, capacity: Callable[[], int]):
        self._capacity = capacity
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if not self._waiters and self.running < max(self._capacity(), 1):
            self.running += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():  # granted as it was cancelled: hand the slot on
                self.release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
            raise

    def release(self) -> None:
        self.running -= 1
        capacity = max(self._capacity(), 1)
        while self._waiters and self.running < capacity:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self.running += 1


def _private(chat_id: object) -> bool:
    """A private chat's id: the person's user id, positive (groups' and channels' are negative)."""
    return isinstance(chat_id, int) and chat_id > 0


def _shown(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Shown:
    """What a sendMessage call shows: its text, entities and buttons, and the message it replies to."""
    text = kwargs["text"] if "text" in kwargs else args[1] if len(args) > 1 else ""
    markup = kwargs.get("reply_markup")
    reply = kwargs.get("reply_parameters")
    reply_to = reply.message_id if isinstance(reply, ReplyParameters) else kwargs.get("reply_to_message_id")
    return Shown(str(text), tuple(kwargs.get("entities") or ()),
                 markup if isinstance(markup, InlineKeyboardMarkup) else None,
                 reply_to if isinstance(reply_to, int) else None)


class _UnreadableBatch(logging.Filter):
    """Drops python-telegram-bot's CRITICAL line for a batch of updates it could not read: it holds the raw batch,
    every message's text with it, and :meth:`InboxBot._fetch` reads that batch one update at a time and says which
    one could not be."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Error while parsing updates")


class _UnconfirmedAtStop(logging.Filter):
    """python-telegram-bot's ERROR with a traceback when its last getUpdates at stop fails (Telegram slow, the
    poll's connection not yet let go): nothing is lost — an update Telegram sends again is recognised by the inbox
    and not answered twice —, so it is one warning line saying that."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Error while calling `get_updates` one more time"):
            error = record.exc_info[1] if record.exc_info else None
            record.msg, record.args, record.exc_info, record.exc_text = (
                "telegram: the updates taken last were not confirmed at stop (%s); Telegram sends them again at the "
                "next start and the inbox recognises them", (error or "no reason given",), None, None)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


#: seconds the library's last getUpdates at stop waits for the long poll's connection
POLL_POOL_WAIT = 5.0


def _quiet_library_lines() -> None:
    for name in ("telegram.Bot", "telegram.ext.ExtBot"):  # Bot's logger, and ExtBot's own
        library = logging.getLogger(name)
        if not any(isinstance(f, _UnreadableBatch) for f in library.filters):
            library.addFilter(_UnreadableBatch())
    updater = logging.getLogger("telegram.ext.Updater")
    if not any(isinstance(f, _UnconfirmedAtStop) for f in updater.filters):
        updater.addFilter(_UnconfirmedAtStop())


class InboxBot(ExtBot[None]):
    """The Bot API client whose getUpdates commits every update to the inbox before python-telegram-bot sees it.

    python-telegram-bot confirms what it took by the offset of its next getUpdates, made at once; an update it
    took and the process did not live to answer was gone. An update Telegram sends again (taken, committed, the
    process killed before that next call) is recognised here and not handled twice; the offset moves past it.

    The offset follows the last batch, not the highest id ever seen: "if there are no new updates for at least a week,
    then identifier of the next update will be chosen randomly" (core.telegram.org/bots/api#update), lower as likely
    as not. Kept at the old high, the offset was "in the future" to the Bot API, which then reads from its queue's
    head and confirms nothing (telegram-bot-api's do_get_updates): the first update after the week came back at every
    poll, at once, one at a time — the bot polled in a tight loop and heard no message after it."""

    __slots__ = ("_floor", "flat_chats", "followed", "inbox", "polled_at", "refused", "refused_at", "sent")

    async def close_connections(self) -> None:
        """Close both connection pools, initialized or not. A start refused at getMe (a revoked token: InvalidToken
        out of ``initialize``) leaves the bot uninitialized, and the library's ``shutdown`` then returns at once —
        the pools stayed open, a socket to the Bot API left for the garbage collector (ResourceWarning) in a `serve`
        that keeps running. Closing a closed pool does nothing."""
        await asyncio.gather(*(request.shutdown() for request in self._request))

    def __init__(self, token: str, base_url: str, inbox: Inbox):
        super().__init__(token, base_url=base_url, request=FrontAwareRequest(connection_pool_size=256),
                         # its one connection is the long poll's: at stop the library's last getUpdates (which
                         # confirms the updates taken) waits for it to be let go, and 1 s (the default) was not enough
                         # on a loaded machine — 'Pool timeout', logged as an error with a traceback
                         get_updates_request=FrontAwareRequest(connection_pool_size=1, pool_timeout=POLL_POOL_WAIT),
                         # a reply to a message that is gone (deleted by its sender, or by a group's clean-up bot at
                         # once) is refused by the Bot API unless allowed; in a group every reply quotes
                         defaults=Defaults(allow_sending_without_reply=True))
        _quiet_library_lines()
        with self._unfrozen():
            self.inbox = inbox
            self._floor = 0
            #: monotonic time of the last getUpdates the Bot API answered (for /healthz)
            self.polled_at: float | None = None
            #: when getUpdates was refused with 401 Unauthorized (the token revoked): polling has stopped for good
            self.refused_at: float | None = None
            self.refused = asyncio.Event()
            #: every message sent and taken, per chat: a lost placeholder is found among the ids it does not know
            self.sent = SentLog()
            #: private chats whose topics the Bot API refuses to send to: answered in the chat itself
            self.flat_chats: set[int | str] = set()
            #: updates followed in their batch by a message the same person forwarded (or following one)
            self.followed: set[int] = set()

    async def send_message(self, *args: Any, **kwargs: Any) -> Message:
        """sendMessage, its id (or the loss of its answer) noted in :attr:`sent`.

        A private chat's topic (Bot API 9.3: a person's threads with the bot) the Bot API no longer takes a message
        for — 400 "message thread not found" for every topic of such chats after its 10.0 rollout, while their
        messages still come with ``message_thread_id`` (tdlib/telegram-bot-api#847) — gets it in the chat itself, as
        that report found works, and so does the chat's next one. Taken for a closed forum topic, the answer ended
        at its '…', before the model was asked: no message in such a topic was ever answered."""
        chat_id = kwargs["chat_id"] if "chat_id" in kwargs else args[0]
        if chat_id in self.flat_chats:
            kwargs.pop("message_thread_id", None)
        try:
            return await self._send(chat_id, *args, **kwargs)
        except BadRequest as exc:
            if not (_private(chat_id) and kwargs.get("message_thread_id") is not None
                    and "thread not found" in str(exc).lower()):
                raise
        log.warning("telegram: chat %s: Telegram refuses its topics (400 message thread not found, though its messages "
                    "come from one); answered in the chat itself", chat_id)
        self.flat_chats.add(chat_id)
        kwargs.pop("message_thread_id")
        return await self._send(chat_id, *args, **kwargs)

    async def _send(self, chat_id: Any, /, *args: Any, **kwargs: Any) -> Message:
        floor = self.sent.highest(chat_id) if isinstance(chat_id, int) else 0  # every id known now is below its id
        try:
            message = await super().send_message(*args, **kwargs)
        except NetworkError as exc:
            if isinstance(chat_id, int) and maybe_on_screen(exc):
                self.sent.lost(chat_id, floor, _shown(args, kwargs))
            raise
        self.sent.took(message.chat_id, message.message_id)
        return message

    async def _post(self, endpoint: str, data: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        """A Bot API call's answer, a message it carries back that python-telegram-bot cannot read made readable.

        The message a send or an edit returns carries the one it replies to (``reply_to_message``,
        core.telegram.org/bots/api#message), whole: the question, with the field :func:`_salvaged` had to leave out of
        it. Every reply to such a question failed to be read — the '…' on screen, the turn failed, the question never
        answered. The message replied to is read without those fields, as the question was."""
        result = await super()._post(endpoint, data, *args, **kwargs)
        if endpoint == "sendMessage" and not isinstance(result, dict):  # carried out, the message's id not said
            raise ForeignAnswer(200, f"the Bot API answered sendMessage with {type(result).__name__}, not the message",
                                relayed=True)
        replied = result.get("reply_to_message") if isinstance(result, dict) else None
        if isinstance(replied, dict) and any(k not in _READABLE for k in replied):
            try:
                Message.de_json(replied, self)
            except Exception:
                result = {**result, "reply_to_message": {k: v for k, v in replied.items() if k in _READABLE}}
        return result

    async def get_updates(self, offset: int | None = None, limit: int | None = None, timeout: Any = None,
                          allowed_updates: Sequence[str] | None = None, **kwargs: Any) -> tuple[Update, ...]:
        while True:
            if offset is None or offset >= 0:
                offset = max(offset or 0, self._floor) or None
            try:
                updates, top = await self._fetch(offset, limit, timeout, allowed_updates, **kwargs)
            except InvalidToken:
                # the token revoked (@BotFather /revoke) or the bot deleted while it runs: python-telegram-bot ends its
                # polling loop for good ("Invalid token. Aborting retry loop"), and the bot took no message any more
                # while serve's /healthz said "running"
                if self.refused_at is None:
                    log.error("telegram: Telegram refuses the bot token now (401 Unauthorized: revoked in @BotFather, "
                              "or the bot deleted); the bot takes no more messages — put the new token in its "
                              "variable and restart")
                with self._unfrozen():
                    self.refused_at = time.monotonic()
                self.refused.set()
                raise
            with self._unfrozen():
                self.polled_at = time.monotonic()
            if not updates:
                if top is None:
                    return updates
                with self._unfrozen():
                    self._floor = top + 1
                offset = self._floor  # none of them readable: confirmed, poll on
                continue
            updates = _once(updates)
            fresh = self.inbox.take([(u.update_id, u.to_dict()) for u in updates])
            with self._unfrozen():  # the batch's, not the highest ever: ids may start again lower (the class doc)
                self._floor = max(max(u.update_id for u in updates), top or 0) + 1
            for update in updates:  # the person's messages: ids a lost message of the bot's is not (telegram_sent)
                if update.message is not None:
                    self.sent.took(update.message.chat_id, update.message.message_id)
            taken = tuple(u for u in updates if u.update_id in fresh)
            self._note_followed(taken)
            if taken:
                return taken
            offset = self._floor  # all taken before (the process died before confirming them): confirm, poll on


    async def _fetch(self, offset: int | None, limit: int | None, timeout: Any,
                     allowed_updates: Sequence[str] | None, **kwargs: Any) -> tuple[tuple[Update, ...], int | None]:
        """getUpdates: the updates this library can read, and the highest update id the batch held (None: empty).

        python-telegram-bot reads a batch whole: one update it cannot read (a shape a newer Bot API sends, a field
        Telegram left out — pyTelegramBotAPI#2137, #2175: a chat_boost without its ``source``, a boost without its
        dates) fails the batch; its Updater logs it at CRITICAL, the raw batch with every message's text in it, and
        asks again at the same offset — the same batch, for good: nothing after it was ever handled (bot4s/telegram#144:
        "the parser would fail and cause the bot to stop parsing new messages"). Such a batch is asked again at once
        (a short poll: it is still there, unconfirmed) and read one update at a time: a message that cannot be read is
        taken without the fields that could not be (:func:`_salvaged`: the person is answered, "I can only read text
        messages" at worst), any other update said in the log (its id and kind, not its text) and passed over."""
        try:
            updates = await super().get_updates(offset, limit, timeout, allowed_updates, **kwargs)
        except TelegramError:
            raise
        except Exception as exc:  # whatever de_json raised: one unreadable update
            log.info("telegram: a batch of updates could not be read whole (%s); reading it one update at a time",
                     type(exc).__name__)
        else:
            return updates, updates[-1].update_id if updates else None
        raw = await self._post("getUpdates", {"offset": offset, "limit": limit, "timeout": 0,
                                              "allowed_updates": allowed_updates})
        batch = [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []
        read: list[Update] = []
        for item in batch:
            try:
                update = Update.de_json(item, self)
            except Exception as exc:  # this one update: taken without what could not be read, or passed over
                salvaged = _salvaged(item, self)
                if salvaged is None:
                    kinds = ", ".join(sorted(str(k) for k in item if k != "update_id"))
                    log.warning("telegram: update %s (%s) cannot be read by python-telegram-bot (%s); passed over, the "
                                "rest of its batch handled", item.get("update_id"), kinds, type(exc).__name__)
                    continue
                update, dropped = salvaged
                log.warning("telegram: update %s: python-telegram-bot cannot read its message's %s (%s); the message "
                            "is taken without them", item.get("update_id"), ", ".join(dropped), type(exc).__name__)
            self.insert_callback_data(update)
            read.append(update)
        ids = [item["update_id"] for item in batch if isinstance(item.get("update_id"), int)]
        return tuple(read), max(ids) if ids else None

    def _note_followed(self, updates: tuple[Update, ...]) -> None:
        """Note the messages a forwarded one of the same person follows in this batch (or that follow one): the
        comment typed in the forward window comes first, as a message of its own, and waits for what it forwards."""
        if len(self.followed) > FOLLOWED_KEPT:
            self.followed.clear()
        for i, update in enumerate(updates):
            if (message := update.message) is not None and any(
                    _same_sender(message, later.message) and (message.forward_origin or later.message.forward_origin)
                    for later in updates[i + 1:] if later.message is not None):
                self.followed.add(update.update_id)


def _once(updates: tuple[Update, ...]) -> tuple[Update, ...]:
    """The batch with each update id once, in the order of the ids. The update id "allows you to ignore repeated
    updates or to restore the correct update sequence, should they get out of order"
    (core.telegram.org/bots/api#update). A Bot API server (a self-hosted one, a relay that retries its upstream call)
    that handed back the same update twice in one batch got two answers to one message, the second cut short at stop
    ("[answer stopped …]"); one that handed a chat's messages back out of order got them answered out of order."""
    first: dict[int, Update] = {}
    for update in updates:
        first.setdefault(update.update_id, update)
    return tuple(sorted(first.values(), key=lambda update: update.update_id))


def _followed_forwards(parts: list[Message]) -> bool:
    """Words of the person's own came after forwarded messages (by id: in the order sent)."""
    ordered = sorted(parts, key=lambda part: part.message_id)
    return any(part.forward_origin is None and any(earlier.forward_origin is not None for earlier in ordered[:i])
               for i, part in enumerate(ordered))


#: the fields of a message it is handled by (who, where, when, what was written): what :func:`_salvaged` keeps
_READABLE = frozenset({"message_id", "message_thread_id", "is_topic_message", "from", "sender_chat", "date", "chat",
                       "text", "entities", "caption", "caption_entities", "media_group_id", "is_automatic_forward"})


def _salvaged(item: dict[str, Any], bot: Bot) -> tuple[Update, list[str]] | None:
    """A message python-telegram-bot cannot read whole, read without the fields past :data:`_READABLE` — a shape the
    library does not expect (Bot API 6.8's forwarded story, ``"story": {}`` — "Currently, it holds no information",
    core.telegram.org/bots/api#august-18-2023 — where python-telegram-bot requires the chat and id 7.1 added), and
    what it carried: the names of the fields left out. None when that does not read either, or it is no message."""
    message = item.get("message")
    if not isinstance(message, dict):
        return None
    dropped = sorted(str(k) for k in message if k not in _READABLE)
    if not dropped:
        return None
    try:  # the names of those left out kept with it (telegram_kinds.UNREAD): a story is said, a service message not
        update = Update.de_json({"update_id": item.get("update_id"),
                                 "message": {**{k: v for k, v in message.items() if k in _READABLE},
                                             UNREAD: dropped}}, bot)
    except Exception:  # not even that: the update is passed over
        return None
    return update, dropped


def _same_sender(one: Message, other: Message) -> bool:
    return (one.chat_id == other.chat_id and one.from_user is not None and other.from_user is not None
            and one.from_user.id == other.from_user.id)


class _Processor(BaseUpdateProcessor):
    """Each update concurrently (up to :data:`MAX_UPDATES`), marked handled in the inbox once it was."""

    def __init__(self, handled: Callable[[object], None]):
        super().__init__(MAX_UPDATES)
        self._handled = handled

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        finally:
            self._handled(update)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class _InOrder:
    """One turn's place in its chat's order of answers shown.

    A turn runs under its chat's lock until its answer is complete; if the answer is then held (the Bot API out of
    reach, flood control) the lock is let go (:meth:`let_go`), so the chat's next messages are answered meanwhile —
    each shown only after the answers before it (:meth:`wait`). Holding the lock for the whole outage kept the
    person's next messages waiting unanswered behind it (and /reset with them)."""

    def __init__(self, bot: TelegramBot, chat_id: int, update_id: int, unlock: Callable[[], None]):
        self._bot, self._chat_id, self._update_id, self._unlock = bot, chat_id, update_id, unlock
        self._mine: asyncio.Future[None] | None = None

    def _prior(self) -> asyncio.Future[None] | None:
        prior = self._bot._showing.get(self._chat_id)
        return prior if prior is not None and prior is not self._mine and not prior.done() else None

    @property
    def behind(self) -> bool:
        """An earlier answer in this chat is still waiting to be shown."""
        return self._mine is None and self._prior() is not None

    def let_go(self) -> None:
        """This answer is complete and waits to be shown: the chat's lock is free for its next message."""
        if self._mine is None:
            self._mine = asyncio.get_running_loop().create_future()
            self._bot._showing[self._chat_id] = self._mine
            self._bot._held[self._update_id] = self._chat_id
            self._unlock()

    async def wait(self) -> bool:
        """Wait until the chat's earlier answers are shown (or given up); False when the bot stops first."""
        prior = self._prior()
        if prior is None:
            return True
        self.let_go()
        closing: asyncio.Future[Any] = asyncio.ensure_future(self._bot._closing.wait())
        waiting: list[asyncio.Future[Any]] = [prior, closing]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        return prior.done() and not self._bot._closing.is_set()

    def done(self) -> None:
        self._bot._held.pop(self._update_id, None)
        if self._mine is not None:
            if not self._mine.done():
                self._mine.set_result(None)
            if self._bot._showing.get(self._chat_id) is self._mine:
                del self._bot._showing[self._chat_id]


@dataclass(slots=True)
class _Alone:
    """A request a person sent, being answered: a message on its own, whose forwards can still join it, or forwarded
    messages, which the rest of their forward and the person's request typed after them can still join
    (:meth:`TelegramBot._join_alone`)."""

    update: Update
    task: asyncio.Task
    #: monotonic time it was taken
    at: float
    #: its answer's messages, once it has some (the placeholder): the answer it joins is written there
    reply: StreamingReply | None = None
    #: every update the request is made of (its first one, ``update``, included)
    updates: list[Update] = field(default_factory=list)
    #: it holds forwarded messages; it holds words of the person's own
    forwards: bool = False
    own: bool = True
    #: the newest ``date`` of its messages (Unix time, Telegram's clock): a forward sent with them has the same
    dated: float = 0.0


class TelegramBot:
    """The bot for one runtime. ``async with TelegramBot(runtime, token): ...`` polls until exit."""

    def __init__(self, runtime: Runtime, token: str, *, poll_timeout: float = 30.0,
                 store: ConversationStore | None = None):
        self.runtime = runtime
        self.config = runtime.config
        self.settings = runtime.config.telegram
        self.allowed = frozenset(self.settings.allowed_users)
        self.poll_timeout = poll_timeout
        self._token = token
        self.store = store or ConversationStore(runtime.log_path)
        self._own_store = store is None
        self._locks = ChatLocks()
        #: per chat, the tasks answering or waiting to answer a message there (what /stop ends)
        self._work: defaultdict[int, set[asyncio.Task]] = defaultdict(set)
        #: tasks ended by /stop (not by the bot stopping), or because their chat refuses the bot (in ``_gone`` too)
        self._cancelled: set[asyncio.Task] = set()
        self._gone: set[asyncio.Task] = set()
        self.gate = TurnGate(self._slots)
        self.inbox = Inbox(self.store.path, token.split(":", 1)[0])
        #: updates of an earlier process, handled again at start: what they had shown or answered
        self._kept: dict[int, Kept] = {}
        #: updates the stopping bot leaves in the inbox for the next start
        self._deferred: set[int] = set()
        #: per chat and person, the last answer that person gave a 👎: their following /agent NAME corrects its
        #: routing. Per chat only, one person's /agent in a group labelled the answer another had disputed
        self._disputed: dict[tuple[int, int], str] = {}
        #: StreamingReply of the last REPLIES_KEPT turns, newest last (benchmarks read first_edit_at); every turn's
        #: was kept, with its whole text, for as long as the bot ran
        self.replies: deque[StreamingReply] = deque(maxlen=REPLIES_KEPT)
        #: tasks answering a message now; stop() ends each with STOPPED_NOTE rather than mid-sentence
        self._turns: set[asyncio.Task] = set()
        #: chats whose answer is on screen but not yet linked to its request (a tap may come first)
        self._linking: dict[int, asyncio.Event] = {}
        self._stopping = False
        #: set when the bot stops: answers waiting for the Bot API to come back are left to the next start
        self._closing = asyncio.Event()
        #: who sent the message each task answers (in a group, /stop ends only the sender's, unless an admin sends it)
        self._askers: dict[asyncio.Task, int] = {}
        self._warm: asyncio.Task[None] | None = None
        #: the last getUpdates failure logged, and when (a lasting one is logged once a minute)
        self._poll_error = ""
        self._poll_error_at = 0.0
        #: the last getUpdates failure (logged or not) and when; the last 409 Conflict (for /healthz)
        self._poll_failed: tuple[float, str] | None = None
        self._conflict_at: float | None = None
        self._polling_since: float | None = None
        #: wall-clock time the bot started: a question sent before may have had answers of an earlier process
        self._started_at = time.time()
        #: per chat, the newest answer let go of the chat's lock before it was shown (held by an outage or flood
        #: control, or waiting behind one that is): the chat's next answers are shown after it, in order
        self._showing: dict[int, asyncio.Future[None]] = {}
        #: finished answers waiting to be shown (update id → chat id): /status and /healthz count them
        self._held: dict[int, int] = {}
        #: albums and cut texts being gathered, and the updates each first one answers for (update id → the rest's)
        self._gather = Gatherer()
        self._riders: dict[int, list[int]] = {}
        #: channels' direct messages chats met (each said once in the log)
        self._direct_chats: set[int] = set()
        #: albums whose caption was a command (chat id, media_group_id): their other items are not a request
        self._command_albums: deque[tuple[int, str]] = deque(maxlen=REPLIES_KEPT)
        #: per chat and person, the message they sent alone now being answered; the turns called off for the forwards
        #: that came after it, and per forward that took one over, what it took (its placeholder written there)
        self._alone: dict[tuple[object, ...], _Alone] = {}
        #: per chat and person, how many of their groups of forwards alone in a row no words of theirs followed (a
        #: request after forwards sets it back to 0): from STOOD_ALONE on, their forwards wait one second, not three
        self._stood_alone: dict[tuple[object, ...], int] = {}
        self._joined: set[asyncio.Task] = set()
        self._handover: dict[int, _Alone] = {}
        quiet_http_logs(token, logging.getLogger().handlers)
        self.app = (Application.builder().bot(InboxBot(token, api_base(self.settings.base_url), self.inbox))
                    .concurrent_updates(_Processor(self._handled)).build())
        self.app.add_handler(TypeHandler(Update, self._gate), group=-1)
        # new messages only: an edit is never answered again. allowed_updates keeps edits away, but not those made
        # before the bot's first getUpdates on the token (core.telegram.org/bots/api#getupdates), and a command
        # handler takes edited messages by default — an edited /help was answered a second time, an edited /stop
        # would stop the answer being written
        new = filters.UpdateType.MESSAGE
        #: the commands, by name: as a text's command (CommandHandler) or a caption's (_caption_command)
        self._commands = {"start": self._help, "help": self._help, "agent": self._agent, "status": self._status,
                          "reset": self._reset, "stop": self._stop}
        for name, command in self._commands.items():
            self.app.add_handler(CommandHandler(name, command, filters=new))
        self.app.add_handler(CallbackQueryHandler(self._rate, pattern=r"^rate:[01]$"))
        self.app.add_handler(CallbackQueryHandler(self._stale_button))
        self.app.add_handler(MessageHandler(filters.COMMAND & new, self._unknown_command))
        self.app.add_handler(MessageHandler(CAPTION_COMMAND & new, self._caption_command))
        # a service message (a pin, the auto-delete timer set, a member joining: no text, one field saying what
        # happened) is no request: it was answered 'I can only read text messages' (crystal-autobot/autobot#123)
        self.app.add_handler(MessageHandler(new & ~filters.StatusUpdate.ALL, self._message))
        self.app.add_error_handler(self._error)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._started_at = time.time()
        if not self.inbox.claim():
            raise TelegramSetupError(
                f"another bot process on this machine polls with this bot token and routing log ({self.store.path}); "
                "only one can take its updates — stop that one first (Telegram would answer both with 409 Conflict)")
        await self._initialize()
        try:
            await self.app.bot.set_my_commands([
                BotCommand("agent", "talk to one agent (no name: automatic routing)"),
                BotCommand("status", "models and queues"),
                BotCommand("stop", "stop the answer being written"),
                BotCommand("reset", "forget this chat's history"),
            ])
        except TelegramError as exc:  # cosmetic: the commands work without the menu
            log.info("telegram: could not set the command menu (%s)", type(exc).__name__)
        await self.app.start()
        kept = self.inbox.pending()
        for item in kept:  # before polling: a chat's earlier message is answered before its newer ones
            try:
                again = Update.de_json(item.payload, self.app.bot)
            except Exception as exc:  # a row this library cannot read back must not keep the bot from starting
                log.warning("telegram: update %s kept from before the stop cannot be read (%s); dropped",
                            item.update_id, type(exc).__name__)
                self.inbox.done(item.update_id)
                continue
            self._kept[item.update_id] = item
            await self.app.update_queue.put(again)
        if kept:
            log.info("telegram: %d update(s) taken before the last stop and not yet handled: handling them first",
                     len(kept))
        await self._note_webhook()
        assert self.app.updater is not None
        await self.app.updater.start_polling(timeout=int(self.poll_timeout), poll_interval=0.0,
                                             allowed_updates=["message", "callback_query"],
                                             bootstrap_retries=START_TRIES - 1, error_callback=self._polling_failed)
        self._polling_since = time.monotonic()
        log.info("telegram: polling as @%s, %d allowed user(s)", self.app.bot.username, len(self.allowed))
        # train the fast path now, off the event loop, so the first routed message does not wait for it
        self._warm = asyncio.create_task(self._warm_routing())

    async def _initialize(self) -> None:
        """``initialize`` (getMe), a start-up flap waited out: one 502 or 504 from the Bot API's front, a 429, a
        timed-out or dropped connection stopped ``modelyard telegram`` with 'cannot reach Telegram' (exit 1) — or
        its deleteWebhook, in start_polling (retried there as often). A refused token is said at once."""
        for attempt in range(START_TRIES):
            try:
                await self.app.initialize()
                return
            except RetryAfter as exc:
                if attempt == START_TRIES - 1:
                    raise
                wait = min(retry_seconds(exc.retry_after), START_WAIT)
            except NetworkError as exc:  # TimedOut among them; InvalidToken is not
                if attempt == START_TRIES - 1:
                    raise
                wait = min(0.5 * 2**attempt, START_WAIT)
                log.info("telegram: getMe failed (%s); trying again in %gs", type(exc).__name__, wait)
            await asyncio.sleep(wait)

    async def _note_webhook(self) -> None:
        """A webhook set for the token (a deployment that takes the updates by webhook) is deleted when polling starts
        (python-telegram-bot's start_polling calls deleteWebhook), and that deployment got no update from then on, with
        nothing said here. Said now, its host only: a webhook's path often holds the token or a secret."""
        try:
            info = await self.app.bot.get_webhook_info()
        except TelegramError as exc:  # only this line is lost
            log.info("telegram: could not ask whether a webhook is set (%s)", type(exc).__name__)
            return
        if info.url:
            log.warning("telegram: a webhook was set for this bot token (to %s), so Telegram sent the updates there; "
                        "this bot deletes it to poll, and whatever set it gets no more updates — if that is another "
                        "deployment of this bot, give each its own token (@BotFather)",
                        urlsplit(info.url).hostname or "an address without a host")

    def _polling_failed(self, error: TelegramError) -> None:
        """A getUpdates call failed (python-telegram-bot retries it): one line, no traceback (its default
        logs a full one for every 409, 502 or dropped connection), the same failure at most once a minute."""
        now = time.monotonic()
        kind = type(error).__name__
        self._poll_failed = (now, redact(str(error), (self._token,)))
        if isinstance(error, Conflict):
            self._conflict_at = now
        if self._poll_error == kind and now - self._poll_error_at < POLL_ERROR_EVERY:
            return
        self._poll_error, self._poll_error_at = kind, now
        if isinstance(error, Conflict) and "webhook" in str(error).lower():
            # set after this bot started (it deletes a stale one when it starts): a deployment that takes updates by
            # webhook; taking them back would take them from it, so say where they go and how to end it
            log.warning("telegram: a webhook is set for this bot token (409 Conflict), so Telegram sends the "
                        "updates there, not to this bot; stop whatever set it, or call deleteWebhook — retrying")
        elif isinstance(error, Conflict):
            # not a second bot over this routing log on this machine: that one is refused at start (Inbox.claim)
            log.warning("telegram: another process is polling with this bot token (409 Conflict): another machine, "
                        "another config or another program uses it, and Telegram gives each message to only one of "
                        "them — stop it, or give this bot a token of its own (@BotFather); retrying")
        else:
            log.warning("telegram: polling for updates failed (%s: %s); retrying", kind,
                        redact(str(error), (self._token,)))

    @property
    def refused(self) -> asyncio.Event:
        """Set once Telegram refused the token while the bot ran (revoked): it takes no more messages."""
        return self._api.refused

    @property
    def _api(self) -> InboxBot:
        bot = self.app.bot
        assert isinstance(bot, InboxBot)
        return bot

    def health(self) -> dict[str, Any]:
        """For /healthz: whether polling works, and how many finished answers wait for the Bot API.

        ``polling``: "stopped" once getUpdates was refused with 401 (the token revoked: nothing polls any more);
        "conflict" when getUpdates got 409 Conflict in the last CONFLICT_SHOWN seconds — another process polls with
        this token and takes some of the messages (or a webhook is set: it takes them all); "failing" when the last
        poll failed and none succeeded since; "stalled" when no poll was answered for STALL_AFTER past its timeout and
        none failed; else "ok". A conflict was only a log line; a stall not even that."""
        now = time.monotonic()
        polled_at = self._api.polled_at
        failed_at, failure = self._poll_failed or (None, None)
        if self._api.refused_at is not None:
            polling = "stopped"
            failed_at, failure = self._api.refused_at, "401 Unauthorized: Telegram refuses the bot token"
        elif self._conflict_at is not None and now - self._conflict_at < CONFLICT_SHOWN:
            polling = "conflict"
        elif failed_at is not None and (polled_at is None or failed_at > polled_at):
            polling = "failing"
        elif (since := polled_at or self._polling_since) is not None and now - since > self.poll_timeout + STALL_AFTER:
            polling = "stalled"
        else:
            polling = "ok"
        return {"polling": polling,
                "last_poll_age_s": None if polled_at is None else round(now - polled_at, 1),
                "last_error": failure,
                "last_error_age_s": None if failed_at is None else round(now - failed_at, 1),
                "answers_waiting": len(self._held)}

    def _migrated(self, old: int | None, new: int | None) -> None:
        """The group ``old`` became the supergroup ``new`` (Bot API migrate_to_chat_id): its history and chosen agent
        go on there. Kept under the old id, the supergroup started from nothing, as if never spoken to."""
        if old is None or new is None or old == new:
            return
        if self.store.move(FRONTEND, old, new):
            log.info("telegram: chat %s became supergroup %s; its conversation goes on there", old, new)

    def _slots(self) -> int:
        """Model slots there are: the bound on answers written at once."""
        return sum(s.limit for s in self.runtime.router.model_states() if s.state is not Condition.UNAVAILABLE)

    def _handled(self, update: object) -> None:
        """An update was handled (answered, refused, ignored): done in the inbox, unless the bot is stopping with
        it unanswered — then the next start answers it."""
        if not isinstance(update, Update):
            return
        riders = self._riders.pop(update.update_id, [])
        if update.update_id in self._deferred:
            self._deferred.discard(update.update_id)
            return
        for update_id in [update.update_id, *riders]:  # with the rest of its album or text, answered with it
            self._kept.pop(update_id, None)
            try:
                self.inbox.done(update_id)
            except Exception as exc:  # a locked or full disk: answered twice after a restart, at worst
                log.warning("telegram: could not mark update %s handled (%s)", update_id, exc)

    async def _warm_routing(self) -> None:
        try:
            await prepare_routing(self.runtime)
        except Exception as exc:  # the first routed turn builds it again and reports what fails
            log.warning("telegram: could not prepare routing at start (%s)", redact(str(exc)))

    async def stop(self) -> None:
        self._stopping = True
        self._closing.set()
        if self._warm is not None:
            self._warm.cancel()
        turns = list(self._turns)
        for task in turns:  # the model is stopped (its row logged); each message says it was cut short
            task.cancel()
        if turns:
            await asyncio.wait(turns, timeout=STOP_WAIT)
        if self.app.updater is not None and self.app.updater.running:
            with contextlib.suppress(InvalidToken):  # its polling loop ended on a revoked token (said then)
                await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        if isinstance(self.app.bot, InboxBot):
            await self.app.bot.close_connections()
        self.inbox.close()
        if self._own_store:
            self.store.close()

    async def __aenter__(self) -> TelegramBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- gate ----------------------------------------------------------------------------

    async def _gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Default deny: updates from anyone not on the allowlist stop here. A group's upgrade to a supergroup (a
        service message Telegram writes, whoever upgraded it) moves the chat's conversation to the new chat id."""
        moved = update.message
        if moved is not None and (moved.migrate_to_chat_id or moved.migrate_from_chat_id):
            if moved.migrate_to_chat_id:
                self._migrated(moved.chat.id, moved.migrate_to_chat_id)
            else:
                self._migrated(moved.migrate_from_chat_id, moved.chat.id)
            raise ApplicationHandlerStop
        if update.message is None and update.callback_query is None:
            # a kind not asked for (allowed_updates), which the Bot API still sends: those from before the bot's first
            # getUpdates with the list, a server or relay that ignores it — a channel post, a reaction, an edit, a
            # business message. Nothing handles them; a channel's post was 'ignored update from user unknown (not in
            # telegram.allowed_users)', a warning that sent the owner looking for a user to allow
            kinds = ", ".join(k for k, v in update.to_dict().items() if k != "update_id" and v is not None)
            log.info("telegram: update %s (%s) is of a kind the bot does not handle; passed over", update.update_id,
                     kinds)
            raise ApplicationHandlerStop
        if update.effective_chat is not None and update.effective_chat.is_direct_messages:
            await self._direct_messages(update)
            raise ApplicationHandlerStop
        stand_in = update.effective_user is not None and update.effective_user.id in STAND_INS
        if (update.message is not None and update.message.sender_chat is not None) or (
                stand_in and update.callback_query is None):
            await self._anonymous(update.message)
            raise ApplicationHandlerStop
        user = update.effective_user
        if user is not None and user.id in self.allowed:
            return
        message, chat = update.message, update.effective_chat
        if (message is not None and chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
                and not self._our_command(message) and self._addressed(message) is None):
            # a stranger's chatter in a group the bot reads, or a command for another bot (``/start@other_bot``,
            # in a text or a caption): not worth a warning each
            raise ApplicationHandlerStop
        kind = "button" if update.callback_query else "message" if update.message else "update"
        log.warning("telegram: ignored %s from user %s (not in telegram.allowed_users)",
                    kind, user.id if user else "unknown")
        if update.callback_query is not None:  # stop the client's spinner; change nothing
            with contextlib.suppress(TelegramError):
                await _answer_press(update.callback_query)
        raise ApplicationHandlerStop

    async def _direct_messages(self, update: Update) -> None:
        """A channel's direct messages chat (Bot API 9.2 ``is_direct_messages``: a supergroup where people write to the
        channel, each in their own topic; a bot administering the channel gets them). Nobody there talks to the bot,
        and one chat holds every person's conversation, where this bot keeps one history, one order and one /stop per
        chat: answered, one person's words would reach another's answers (Chevalet/chevaletAnonBot#32: "bot replies
        landed in someone else's inbox"). Nothing there is answered; the log says so once per chat."""
        chat = update.effective_chat
        assert chat is not None
        if chat.id not in self._direct_chats:
            self._direct_chats.add(chat.id)
            log.warning("telegram: chat %s is a channel's direct messages chat (the bot administers the channel): its "
                        "messages are written to the channel, not to the bot, and the bot answers none of them",
                        chat.id)
        if update.callback_query is not None:  # stop the client's spinner; change nothing
            with contextlib.suppress(TelegramError):
                await _answer_press(update.callback_query)

    async def _anonymous(self, message: Message | None) -> None:
        """A message sent on behalf of a chat (Bot API ``sender_chat``): an anonymous admin's, a person's posting as
        their channel, a channel post forwarded into its discussion group. ``from`` holds a stand-in shared by all of
        them (@GroupAnonymousBot, 1087968824), so the allowlist cannot vouch for it: the id the log named went into
        allowed_users, and every anonymous admin of any group the bot was in was answered (dgongut/docker-controller-
        bot#25; tdlib/telegram-bot-api#667: "ignore any incoming requests from 1087968824 and 777000"). Never answered
        by a model; one addressed to the bot is told why."""
        if message is None:
            return
        origin = message.sender_chat.id if message.sender_chat is not None else "?"
        log.info("telegram: chat %s: a message sent on behalf of chat %s (an anonymous admin, a channel): Telegram "
                 "does not say who sent it; not answered", message.chat.id, origin)
        if message.is_automatic_forward or not (self._our_command(message) or self._addressed(message) is not None):
            return  # a channel's post in its discussion group, or talk not for this bot
        await self._say(message, ANONYMOUS)

    def _our_command(self, message: Message) -> bool:
        """A text or caption that is a command for no bot in particular or for this one."""
        text = message.text or message.caption or ""
        return text.startswith("/") and self._ours(text)

    def _ours(self, command_text: str) -> bool:
        """A command addressed to no bot or to this one (not ``/start@other_bot``)."""
        _, at, addressee = command_text.split(maxsplit=1)[0].partition("@")
        return not at or addressee.lower() == (self.app.bot.username or "").lower()

    # -- commands ------------------------------------------------------------------------

    async def _say(self, message: Message, text: str) -> None:
        """A reply not written by a model (a command's, a refusal, a notice), in as many messages as it needs: the Bot
        API takes 4,096 characters a message (core.telegram.org/bots/api#sendmessage) and refused a longer one with
        400 "message is too long" — a /status listing many models, or their long errors, was a warning in the log and
        nothing in the chat."""
        for part in split(plain(text), MAX_MESSAGE):
            try:
                await self._say_one(message, part.text)
            except TelegramError as exc:  # said as what it is: the error handler's line named only the error
                log.warning("telegram: chat %s: a reply (%d characters) could not be delivered and is not tried again "
                            "(%s: %s)", message.chat.id, len(part.text), type(exc).__name__,
                            redact(str(exc), (self._token,)))
                return

    async def _say_one(self, message: Message, text: str) -> None:
        """A short reply (a command's, a refusal, a notice). Flood control (429 with retry_after: any call can get it,
        and a group allows a bot about 20 messages a minute — python-telegram-bot's wiki, 'Avoiding flood limits') is
        waited out up to SAY_WAIT and the reply sent then; a group that became a supergroup (400 with
        migrate_to_chat_id) gets it there; a send that never reached Telegram (or its 502) is tried again. Each of
        these lost the reply: a warning in the log, nothing in the chat. A page in the Bot API's place (a captive
        portal's, which reached nothing, or a relay's that carried the send out: an empty 200, its own page) is
        looked for on screen before the reply is sent again (:func:`find_lost`): sent again at once, a relay's reply
        showed twice."""
        chat_id = message.chat.id
        sent = self._api.sent
        since = sent.mark(chat_id)
        # only where every message of the bot after the question is known to this process (as for a placeholder)
        searchable = message.date.timestamp() >= int(self._started_at)
        doubt = False
        for attempt in range(3):  # the last refusal is raised
            try:
                if doubt and chat_id == message.chat.id and (found := await find_lost(
                        self._api, sent, chat_id, since, text, after=message.message_id)) is not None:
                    log.info("telegram: chat %s: the reply a page answered for is on screen (message %s); not sent "
                             "again", chat_id, found)
                    return
                doubt, since = False, sent.mark(chat_id)  # not on screen: sent again, and looked for if need be
                if chat_id == message.chat.id:
                    await message.reply_text(text)
                else:
                    await self.app.bot.send_message(chat_id, text)
                return
            except RetryAfter as exc:
                wait = retry_seconds(exc.retry_after)
                if wait > SAY_WAIT or attempt == 2:
                    raise
                log.info("telegram: reply in chat %s held by flood control for %gs", chat_id, wait)
                await asyncio.sleep(wait)
            except ChatMigrated as exc:
                if attempt == 2:
                    raise
                self._migrated(chat_id, exc.new_chat_id)
                chat_id = exc.new_chat_id
            except NetworkError as exc:
                # never reached Telegram (no connection) or its front did not hand it on (502/503): sent again. One
                # that may have been carried out (its answer lost, or a 504: the front gave up waiting) is not: a
                # second send would show the reply twice
                if attempt == 2 or isinstance(exc, BadRequest) or maybe_sent(exc):
                    raise
                doubt = doubt or (searchable and chat_id == message.chat.id and maybe_on_screen(exc))
                log.info("telegram: reply in chat %s failed (%s); trying again", chat_id, type(exc).__name__)
                await asyncio.sleep(0.5 * (attempt + 1))

    def _session(self, update: Update) -> Session:
        """The conversation the update belongs to: its chat's, or its topic's in a forum or a private chat with topics
        (Bot API 9.3: "letting users organize bot chats into easily accessible threads"). One per chat, every topic
        shared one history, /agent and /reset: a question in one topic was answered with another's in context
        (openclaw/openclaw#7739, kirodotdev/KiroCrew#4927: "switching topic does not switch conversation")."""
        chat, message = update.effective_chat, update.effective_message
        assert chat is not None
        topic = message.message_thread_id if message is not None and message.is_topic_message else None
        return Session(self.runtime, self.store, FRONTEND, chat.id if topic is None else f"{chat.id}:{topic}",
                       history_tokens=self.settings.history_tokens, default_agent=self.settings.agent)

    def _theirs(self, update: Update) -> Callable[[str], bool] | None:
        """In a group, whether a request was asked by the person behind ``update`` (None elsewhere: every
        answer in a private chat is theirs)."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
            return None
        asker, chat_id = str(user.id if user is not None else 0), chat.id
        return lambda request_id: self.store.asked_by(FRONTEND, chat_id, request_id) == asker

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await self._say(update.effective_message, HELP)

    async def _agent(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        session = self._session(update)
        wanted = " ".join(context.args or []).strip()
        if not wanted:
            session.choose(None)
            text = "Back to automatic routing."
        elif wanted in self.config.agents:
            session.choose(wanted)
            description = self.config.agents[wanted].description
            text = f"Now talking to {wanted} directly." + (f"\n{description}" if description else "")
            # after a 👎 on a routed answer this is a routing label; right after one, asking again is — in a group,
            # only on an answer to the person who sends it (the chat's last answer may be someone else's question)
            user = update.effective_user
            asker = user.id if user is not None else 0
            disputed = self._disputed.pop((update.effective_message.chat.id, asker), None)
            switch = await session.correct(wanted, disputed, LabelSource.TELEGRAM, self._theirs(update))
            if switch is Switch.LABELLED:
                text += ("\n(Noted: your last request belonged to it — routing will learn from that; "
                         "`modelyard routing forget ID` takes it back.)")
            elif switch is Switch.ASK_AGAIN:
                text += f"\n(If your last request should have gone to {wanted}, send it again: that teaches routing.)"
        else:
            log.info("telegram: chat %s asked for unknown agent (%d chars)", session.conversation.external_id,
                     len(wanted))
            # a model's name (`/status` lists them) or a typo: said which agents use it, or the nearest agent
            said = not_an_agent(self.config, wanted[:64], "/agent", "/agent alone for automatic routing")
            text = said[:1].upper() + said[1:]
        await self._say(update.effective_message, text)

    async def _status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        session = self._session(update)
        lines = [f"Agent: {session.agent or 'automatic routing'}", "", "Models:"]
        for s in self.runtime.router.model_states():
            where = "local" if s.is_local else "cloud"
            line = f"• {s.name} ({s.provider}, {where}): {s.state} — {s.in_flight}/{s.limit} busy, {s.waiting} waiting"
            lines.append(line + (f" ({redact(s.detail)})" if s.detail else ""))
        lines += ["", f"Answers: {self.gate.running} being written, {self.gate.waiting} waiting for a model "
                      f"(up to {max(self._slots(), 1)} at once), {len(self._held)} finished and waiting to be "
                      "delivered (Telegram out of reach or holding them back)"]
        await self._say(update.effective_message, "\n".join(lines))

    async def _reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        session = self._session(update)
        async with self._locks.held(update.effective_message.chat.id):
            removed = session.reset()
        log.info("telegram: chat %s history reset (%d turns)", session.conversation.external_id, removed)
        await self._say(update.effective_message, "History cleared. Starting fresh.")

    async def _stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """End the answer being written in this chat (what was shown stays, marked stopped) and the messages
        waiting behind it. Handled at once, beside the answer it stops."""
        message, user = update.effective_message, update.effective_user
        assert message is not None
        work = [task for task in self._work.get(message.chat.id, ()) if not task.done()]
        if work and user is not None and message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
            work = await self._stoppable(message.chat.id, user.id, work)
            if not work:
                log.info("telegram: chat %s: /stop from user %s, whose answer it is not, ignored", message.chat.id,
                         user.id)
                await self._say(message, NOT_YOURS)
                return
        for task in work:
            self._cancelled.add(task)
            task.cancel()
        if work:
            await asyncio.wait(work, timeout=STOP_WAIT)
        log.info("telegram: chat %s: /stop ended %d message(s)", message.chat.id, len(work))
        text = ("Stopped." if len(work) < 2 else
                f"Stopped — that answer and the {len(work) - 1} message(s) waiting behind it.")
        if finished := sum(1 for chat_id in self._held.values() if chat_id == message.chat.id):
            text += (f"\n{finished} finished answer(s) here are still on their way: /stop ends only what is being "
                     "written.")
        await self._say(message, text)

    def _end(self, task: asyncio.Task | None, chat_id: int | None = None) -> None:
        """The chat refuses every message (the person blocked the bot, it was removed from the group): the model
        is stopped as by /stop. It wrote the whole answer, a slot busy and its tokens spent, for no one to read. With
        ``chat_id`` (the whole chat refuses, not a forum topic) the messages waiting there end too: each asked its
        model in turn and met the same refusal (a person who sends a burst and blocks the bot)."""
        tasks = [task] if task is not None else []
        waiting = [t for t in self._work.get(chat_id, ()) if t is not task] if chat_id is not None else []
        ended = 0
        for each in tasks + waiting:
            if not each.done() and each not in self._cancelled:
                self._cancelled.add(each)
                self._gone.add(each)
                each.cancel()
                ended += each is not task
        if ended:
            log.info("telegram: chat %s refuses the bot; the %d message(s) waiting there are not answered", chat_id,
                     ended)

    async def _stoppable(self, chat_id: int, user_id: int, work: list[asyncio.Task]) -> list[asyncio.Task]:
        """What a group member's /stop may end: their own messages (being answered or waiting), everyone's when
        they are an admin of the chat (Bot API getChatMember: status "creator" or "administrator"). Anyone's /stop
        ended anyone's answer: one person could cut short what the others in the group had asked."""
        own = [task for task in work if self._askers.get(task) == user_id]
        if len(own) == len(work):
            return own
        try:
            member = await self.app.bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:  # cannot tell: only their own
            log.info("telegram: chat %s: could not ask whether user %s is an admin (%s)", chat_id, user_id, exc)
            return own
        admin = member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)
        return work if admin else own

    async def _unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command none of ours. One addressed to another bot (``/start@other_bot``: a group where this bot reads
        every message, privacy mode off or an admin) is not ours to answer: it got 'Unknown command' and the help."""
        message = update.effective_message
        assert message is not None
        if not self._ours(message.text or message.caption or "/"):
            log.info("telegram: chat %s: a command for another bot, ignored", message.chat.id)
            return
        await self._say(message, "Unknown command.\n\n" + HELP)

    async def _caption_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo or file whose caption opens with a command, or a text whose command is in bold (telegram_caption.py):
        the command is carried out as if sent as plain text, and the person told the attachment was not read. It
        reached the model as a request."""
        message = update.effective_message
        assert message is not None
        command = caption_command(message)
        assert command is not None  # the handler's filter
        if not self._ours(message.caption or message.text or "/"):
            log.info("telegram: chat %s: a caption's command for another bot, ignored", message.chat.id)
            return
        handler = self._commands.get(command.name, self._unknown_command)
        if message.media_group_id is not None:
            self._command_albums.append((message.chat.id, message.media_group_id))
        context.args = command.args
        log.info("telegram: chat %s: /%s in a %s, carried out as the command", message.chat.id, command.name,
                 "caption" if message.caption is not None else "formatted text")
        await handler(update, context)
        if handler is not self._unknown_command and (attached := attachment(message)) is not None:
            await self._say(message, f"(Only the command was carried out: I can't see {attached}, and a caption "
                                     "that is a command is not sent to a model.)")

    # -- conversation --------------------------------------------------------------------

    async def _message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if message is None or user is None or chat is None:
            return
        group = chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
        gathered = await self._gathered(update, message)
        if gathered is None:  # a later item of an album, a later piece of a long text: the first one's turn answers it
            return
        parts = [u.effective_message for u in gathered if u.effective_message is not None]
        if message.media_group_id is not None and (chat.id, message.media_group_id) in self._command_albums:
            return  # the rest of an album whose caption was a command: no request
        joined = message.media_group_id is None and (len(parts) > 1 or message.forward_origin is not None)
        if joined:  # one text the person's app cut in pieces, or messages forwarded (with a comment): one request
            said: list[str | None] = [self._pieces(parts, group)]
        else:
            said = [(self._addressed(part) if group else written(part).strip()) for part in parts]
        if all(each is None for each in said):  # chatter among the people in the group: not for this bot
            return
        captions = [each for each in said if each]
        text = captions[0] if len(captions) == 1 else "\n".join(
            f"Item {i}: {each}" for i, each in enumerate(said, 1) if each)
        if group and not text and message.text is not None:  # '@bot' alone
            await self._say(message, HELP)
            return
        attached = attachment(message) if message.media_group_id is None else f"an album of {len(parts)} items"
        if joined and text:  # each forwarded piece says what it carried
            attached = None
        if not text and service_only(message):  # kept without a service field it could not read: no request
            log.info("telegram: a service message in chat %s, read without what it said; not a request", chat.id)
            return
        if not text:
            log.info("telegram: a message without text (%s) in chat %s", attached or "empty", chat.id)
            await self._say(message, unreadable(attached))
            return
        if attached:  # a caption is the request (the media's own text field): the model is told what it cannot see
            text = f"{text}\n\n(The person attached {attached}, which is not shown to you.)"
        if (context_line := self._replied(message)) is not None:
            text = f"{text}\n\n{context_line}"
        task = asyncio.current_task()
        assert task is not None
        # where the chat's lost sends stand as the question comes: only a question this process saw sent (every
        # message of the bot in the chat after it known) may have its lost placeholder looked for
        fresh = update.update_id not in self._kept and message.date.timestamp() >= int(self._started_at)
        since = self._api.sent.mark(chat.id) if fresh else None
        work = self._work[chat.id]
        work.add(task)
        self._askers[task] = user.id
        key = ("text", chat.id, user.id)
        alone = None
        forwards = any(part.forward_origin is not None for part in parts)
        if message.media_group_id is None and (forwards or len(parts) == 1):
            alone = self._alone[key] = _Alone(update, task, time.monotonic(), updates=gathered, forwards=forwards,
                                              own=any(part.forward_origin is None for part in parts),
                                              dated=max(part.date.timestamp() for part in parts))
        lock = self._locks.claim(chat.id)  # the chat's answers in the order its messages came
        locked = False

        def unlock() -> None:  # once this answer is complete and held (_InOrder.let_go), or at the end
            nonlocal locked
            if locked:
                locked = False
                lock.release()

        try:
            await lock.acquire()
            locked = True
            try:
                if self._stopping:  # waited behind an answer the stop cut short: the next start answers it
                    self._deferred.add(update.update_id)
                    return
                await self._turn(update, text, unlock, since)
            finally:
                unlock()
        except asyncio.CancelledError:
            if task not in self._cancelled:
                raise
            task.uncancel()  # /stop: this message is not answered (its turn, if it ran, said it was stopped)
        finally:
            if (orphan := self._handover.pop(update.update_id, None)) is not None and task not in self._gone:
                await self._orphaned(orphan, chat.id)
            self._locks.leave(chat.id)
            work.discard(task)
            self._askers.pop(task, None)
            self._cancelled.discard(task)
            self._gone.discard(task)
            joined = task in self._joined  # a request typed after its forwards took it over: they were followed
            self._joined.discard(task)
            if alone is not None and self._alone.get(key) is alone:
                del self._alone[key]
            if alone is not None and alone.forwards and not alone.own and not joined:
                self._note_stood_alone(key)
            if not work and self._work.get(chat.id) is work:
                del self._work[chat.id]

    def _note_stood_alone(self, key: tuple[object, ...]) -> None:
        """Forwards of this person were answered with no words of theirs after them."""
        if len(self._stood_alone) > FOLLOWED_KEPT and key not in self._stood_alone:
            self._stood_alone.clear()
        self._stood_alone[key] = self._stood_alone.get(key, 0) + 1

    async def _gathered(self, update: Update, message: Message) -> list[Update] | None:
        """The updates this one's turn answers: itself, or with the rest of its album or of the text the person's
        app cut, or of the forward it is part of (frontends/telegram_gather.py); None when it is one of that rest. The
        rest stay in the inbox until the first one is handled: a bot killed meanwhile answers them together at its
        next start."""
        if message.media_group_id is not None:
            key: tuple[object, ...] = ("album", message.chat.id, message.media_group_id)
            more = True
        elif message.from_user is not None:  # a forwarded message waits for the rest and the person's comment
            key = ("text", message.chat.id, message.from_user.id)
            more = (may_continue(message.text) or message.forward_origin is not None
                    or update.update_id in self._api.followed)
            self._api.followed.discard(update.update_id)
            if not more and not self._gather.gathering(key):
                earlier = self._join_alone(key, update, message)
                if not earlier:
                    return [update]
                self._riders[update.update_id] = [u.update_id for u in earlier]
                return sorted([*earlier, update], key=lambda u: u.effective_message.message_id
                              if u.effective_message else 0)
        else:
            return [update]
        first = not self._gather.gathering(key)
        earlier = self._join_alone(key, update, message) if message.forward_origin is not None and first else []
        # forwards wait for the request typed after them, but not those of a person who sends none (telegram_gather)
        patient = message.forward_origin is not None and self._stood_alone.get(key, 0) < STOOD_ALONE
        # "typing…" in a private chat only: in a group a forward is not addressed to the bot, which may say nothing
        typing = (asyncio.create_task(self._typing(message), name=f"telegram-typing-{message.chat.id}")
                  if patient and first and message.chat.type == ChatType.PRIVATE else None)
        try:
            updates = await self._gather.gather(key, update, more=more, earlier=earlier, patient=patient)
        finally:
            if typing is not None:
                typing.cancel()
        if updates is None:
            self._deferred.add(update.update_id)  # done with the first one (_handled)
            return None
        if _followed_forwards([u.effective_message for u in updates if u.effective_message is not None]):
            self._stood_alone[key] = 0
        # under the update whose turn this is (the first to come), not the first in the album's order: where the items
        # came in another order the rest were filed under one already handled, and stayed in the inbox, each answered
        # again alone at the next start
        self._riders[update.update_id] = [u.update_id for u in updates if u is not update]
        return updates

    async def _typing(self, message: Message) -> None:
        """"typing…" shown while forwards are held for the rest and for the person's request (sendChatAction: "The
        status is set for 5 seconds or less", core.telegram.org/bots/api#sendchataction), so the wait reads as the bot
        at work. A refusal only costs the indicator."""
        thread = message.message_thread_id if message.is_topic_message else None
        while True:
            try:
                await self.app.bot.send_chat_action(message.chat.id, ChatAction.TYPING, message_thread_id=thread)
            except TelegramError as exc:
                log.debug("telegram: chat %s: typing action refused (%s)", message.chat.id, type(exc).__name__)
                return
            await asyncio.sleep(TYPING_EVERY)

    def _join_alone(self, key: tuple[object, ...], update: Update, message: Message) -> list[Update]:
        """The request this message belongs to, when a poll brought it apart and its answer is not complete: its
        turn is called off and it joins this one (its placeholder, if shown, takes the joined answer). Each forwarded
        message and the person's comment come as updates of their own, and a long poll returns as soon as there is
        one update (core.telegram.org/bots/api#getupdates), so they can come polls — seconds, on a loaded machine or a
        slow link — apart: each part was answered as a request of its own (HKUDS/nanobot#2585: "the bot responds
        twice"; chatwoot/chatwoot#13308). Joined are, the answer not yet complete:

        - forwards that come within the gathering wait (telegram_gather.GATHER_WAIT) of a message sent on its own:
          the comment typed in the forward window, which comes first;
        - a forward sent with forwards being answered — the same ``date`` (the second Telegram took them: one forward
          action stamps all its messages at once, core.telegram.org/bots/api#message), within FORWARD_HOLD;
        - the person's own message after forwards alone, within FORWARD_WAIT of their answer's start: the request
          typed after them ("summarise these"; banteg/takopi#89).

        A plain message after anything else still starts at once, and an answer that is complete stands."""
        alone = self._alone.get(key)
        if alone is None or alone.task.done() or alone.update is update:
            return []
        waited = time.monotonic() - alone.at
        if message.forward_origin is None:
            joins = alone.forwards and not alone.own and waited <= FORWARD_WAIT
            if joins:  # the request typed after forwards: this person's are waited for (again)
                self._stood_alone[key] = 0
        elif alone.forwards:
            joins = abs(message.date.timestamp() - alone.dated) <= 1 and waited <= FORWARD_HOLD
        else:
            joins = waited <= self._gather.wait
        if not joins:
            return []
        if alone.task not in self._work.get(alone.update.effective_chat.id if alone.update.effective_chat else 0, ()):
            return []  # its answer is complete: it stands, and this message is a request of its own
        del self._alone[key]
        self._joined.add(alone.task)
        self._cancelled.add(alone.task)  # ended quietly, as /stop ends a message waiting its turn
        self._deferred.add(alone.update.update_id)  # done in the inbox with this one's turn (its riders)
        # a turn called off before it took over the messages of one it called off passes them on: left with it, they
        # stayed as they were ('…', a part-answer) once this turn was called off in turn
        inherited = self._handover.pop(alone.update.update_id, None)
        self._handover[update.update_id] = inherited if inherited is not None and alone.reply is None else alone
        alone.task.cancel()
        return list(alone.updates or [alone.update])

    async def _orphaned(self, taken: _Alone, chat_id: int) -> None:
        """The answer this turn took over, left unadopted: the turn ended before it wrote there (/stop while it waited
        its turn, the bot stopping, nothing in the joined request to answer). Its messages — a '…', a part-answer —
        stayed as they were for good; they are ended with what happened, as a stopped answer is."""
        reply = taken.reply
        if reply is None or not reply.message_ids:
            return
        note = STOPPED_NOTE if self._stopping else CANCELLED_NOTE
        log.info("telegram: chat %s: an answer called off for the messages after it, which were not answered with it "
                 "(%s); its messages say so", chat_id, "the bot is stopping" if self._stopping else "stopped")
        try:
            await reply.finish(f"{reply.latest}\n\n{note}".strip(), outage=ORPHAN_OUTAGE)
        except Exception as exc:  # a bug in the Bot API's I/O must not fail the turn's clean-up
            log.warning("telegram: chat %s: a called-off answer could not be ended (%s)", chat_id,
                        type(exc).__name__)

    def _pieces(self, parts: list[Message], group: bool) -> str | None:
        """One request of a text cut in pieces, or of forwarded messages and the person's comment: each forwarded one
        said as such, with whose it was (telegram_forward.py). "" when none has text (what it carried is said to the
        person, no model asked); None in a group when none of the person's own is addressed to the bot."""
        own = [part for part in parts if part.forward_origin is None]
        if group and not any(self._addressed(part) is not None for part in own):
            return None
        if not any(written(part) for part in parts):
            return ""
        pieces = []
        for part in parts:
            piece = forwarded(part, attachment(part))
            if piece is None:
                piece = (self._addressed(part) if group else None) or written(part)
            pieces.append(piece)
        return "\n".join(pieces).strip()

    def _replied(self, message: Message) -> str | None:
        """What the message replies to, for the model: the part quoted (Bot API 7.0 ``quote``: the person selected it),
        else the message's text, cut to :data:`REPLIED_CHARS` (a bot's answer, already in the history, to
        :data:`OWN_CHARS`). Only the person's new text reached the model: "what about this?" in reply to someone's
        message, or to an answer from before /reset, was a question about nothing (PleasePrompto/ductor#135,
        nullclaw/nullclaw#916, lvndry/jazz#438; NousResearch/hermes-agent#23091 for the quote). None for no reply, or
        one to a message with nothing to read (a forum topic's opening, a sticker)."""
        replied = message.reply_to_message
        if replied is None:  # or one to another chat's message (telegram_elsewhere.py)
            external = message.external_reply
            return replied_elsewhere(message, attachment(external) if external else None, REPLIED_CHARS)
        if replied.forum_topic_created is not None:
            return None
        own = replied.from_user is not None and replied.from_user.id == self.app.bot.id
        quoted = message.quote.text if message.quote is not None else None
        said = quoted or written(replied)
        limit = OWN_CHARS if own and not quoted else REPLIED_CHARS
        said = " ".join(said.split())
        if len(said) > limit:
            said = said[:limit].rstrip() + "…"
        who = ("your earlier answer" if own else
               f"a message from {replied.from_user.first_name}" if replied.from_user is not None else "a message")
        if said:
            return f'(This is a reply to {who}{", quoting" if quoted else ""}: "{said}")'
        attached = attachment(replied)
        return f"(This is a reply to {attached}, not shown to you, in {who}.)" if attached and not own else None

    def _settled(self, task: asyncio.Task, chat_id: int) -> None:
        """This message's answer is complete: what is left is showing it, which /stop does not end (it stops what
        is still being written). A /stop sent while a finished answer waited for the Bot API dropped the answer."""
        work = self._work.get(chat_id)
        if work is not None:
            work.discard(task)
        self._askers.pop(task, None)

    def _addressed(self, message: Message) -> str | None:
        """In a group, what is said to this bot: the text of a message that mentions it (the mention taken out) or
        replies to it; None for the rest. With privacy mode on Telegram sends only these (and commands); with it off,
        or the bot an admin, every message comes, and each line of chatter ran a model and got an answer."""
        text = written(message)
        name = self.app.bot.username or ""
        mention = re.compile(rf"@{re.escape(name)}\b", re.IGNORECASE) if name else None
        replied = message.reply_to_message
        # a forum topic's messages all reply to its opening service message (the thread is that message's:
        # core.telegram.org/api/forum): in a topic the bot opened, each was taken as a reply to the bot and answered,
        # chatter and all (banteg/takopi#152, NousResearch/hermes-agent#51349)
        opening = replied is not None and (replied.forum_topic_created is not None or (
            message.is_topic_message is True and replied.message_id == message.message_thread_id))
        to_bot = (replied is not None and not opening and replied.from_user is not None
                  and replied.from_user.id == self.app.bot.id)
        if mention is not None and mention.search(text):
            return " ".join(mention.sub(" ", text).split())
        return text.strip() if to_bot else None

    async def _turn(self, update: Update, text: str, unlock: Callable[[], None], since: tuple[int, int] | None) -> None:
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        assert message is not None and user is not None and chat is not None
        interval = self.settings.edit_interval
        if chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
            interval = max(interval, GROUP_EDIT_INTERVAL)
        reply = StreamingReply(self.app.bot, chat.id, interval=interval,
                               reply_to=message.message_id, formatter=FORMATTERS[self.settings.format],
                               thread_id=message.message_thread_id if message.is_topic_message else None,
                               sent=self._api.sent, since=since)
        update_id = update.update_id
        task = asyncio.current_task()
        assert task is not None
        alone = self._alone.get(("text", chat.id, user.id))
        if alone is not None and alone.task is task:  # its placeholder, for forwards that take it over
            alone.reply = reply
        order = _InOrder(self, chat.id, update_id, unlock)
        try:
            await self._answer(update, text, reply, order, task)
        finally:
            order.done()

    async def _answer(self, update: Update, text: str, reply: StreamingReply, order: _InOrder,
                      task: asyncio.Task) -> None:
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        assert message is not None and user is not None and chat is not None
        update_id = update.update_id
        kept = self._kept.pop(update_id, None)
        if kept is not None and kept.shown:  # a run before a restart left this answer's messages on screen
            reply.adopt(int(kept.shown["chat_id"]), [int(i) for i in kept.shown["ids"]])
        elif (taken := self._handover.pop(update_id, None)) is not None and taken.reply is not None and (
                ids := taken.reply.message_ids):  # the comment's placeholder, answered here with its forwards
            reply.adopt(taken.reply.chat_id, ids)
        if kept is not None and kept.answer:  # and had its whole answer: shown, not asked again
            self._settled(task, chat.id)
            if await self._after_earlier(order, update_id):
                await self._show(update_id, reply, kept.answer, chat.id, user.id, order)
            return
        #: the person saw this answer begin before a kill or a stop: it is asked again from the start, and says so
        restarted = kept is not None and kept.shown is not None
        held = ran = False
        later: list[str] = []

        async def start(notices: list[str]) -> None:
            nonlocal held, ran
            ran = True
            if order.behind:  # an earlier answer still waits for the Bot API: this one is written unseen, and shown
                later.extend(notices)  # after it — its placeholder now would come before that answer
            else:
                for notice in notices:  # said before the answer; one the Bot API refuses (flood control, the message
                    try:  # it replies to deleted) must not fail the turn before the model runs, as the placeholder did
                        await self._say(message, notice)
                    except TelegramError as exc:
                        log.info("telegram: notice in chat %s failed (%s)", chat.id, type(exc).__name__)
                await reply.start(RESTARTED_PLACEHOLDER if restarted else PLACEHOLDER)
                self._keep_shown(update_id, reply)
            self.replies.append(reply)
            await self.gate.acquire()  # the placeholder shows meanwhile
            held = True

        reply.on_gone = lambda: self._end(task, chat.id if reply.gone_chat else None)
        self._turns.add(task)
        try:
            result = await self._session(update).turn(text, on_text=reply.update, on_start=start,
                                                         source=LabelSource.TELEGRAM, theirs=self._theirs(update))
        except asyncio.CancelledError:
            if task in self._joined:  # the rest of its request came in a later poll: answered with it
                await reply.hand_over()
                log.info("telegram: chat %s: a message is answered together with the messages of its request that "
                         "came after it", chat.id)
                raise
            if task in self._gone:  # blocked by the person, the bot removed from the group: nothing will show
                log.info("telegram: chat %s refuses the bot; the answer (and its model) stopped", chat.id)
                raise
            if task in self._cancelled:  # /stop
                log.info("telegram: chat %s: answer stopped by /stop", chat.id)
                if reply.started:
                    await reply.finish(f"{reply.latest}\n\n{CANCELLED_NOTE}".strip())
                raise
            if not self._stopping:
                raise
            task.uncancel()
            self._deferred.add(update_id)
            log.info("telegram: chat %s: answer stopped, the bot is shutting down; it is answered at the next start",
                     chat.id)
            if reply.started:
                await reply.finish(f"{reply.latest}\n\n{STOPPED_NOTE}".strip())
                self._keep_shown(update_id, reply)
            return
        except Exception:  # the pipeline maps every failure to a reply; this is a bug in it or in Telegram I/O
            log.exception("telegram: chat %s: turn failed", chat.id)
            if reply.started:
                await reply.finish(FAILED)
            return
        finally:
            self._turns.discard(task)
            if held:
                self.gate.release()
        self._settled(task, chat.id)  # no await since the model ended: a /stop from here on leaves it be
        if not result.answered or result.result is None:
            if not await self._after_earlier(order, update_id):
                return
            for notice in [*later, *(result.notices if not ran else [])]:
                await self._say(message, notice)
            if not ran:  # refused before any model ran: nothing to edit
                await self._say(message, result.text)
                log.info("telegram: chat %s: message refused", chat.id)
                return
            await reply.finish(result.text)
            log.info("telegram: chat %s: %s", chat.id, result.status)
            return
        answered = result.result
        answer = {"text": result.text, "agent": answered.agent, "model": answered.model,
                  "request_id": answered.request_id, "restarted": restarted}
        self.inbox.answered(update_id, answer)  # in the history now: a restart from here shows it, asks nothing
        if not await self._after_earlier(order, update_id):
            return
        for notice in later:
            with contextlib.suppress(TelegramError):
                await self._say(message, notice)
        await self._show(update_id, reply, answer, chat.id, user.id, order)

    async def _after_earlier(self, order: _InOrder, update_id: int) -> bool:
        """Wait for the chat's earlier answers to be shown; False (the answer kept for the next start) if the bot
        stops first."""
        if await order.wait():
            return True
        self._deferred.add(update_id)
        log.info("telegram: the bot stops with update %s waiting behind an earlier answer; the next start shows it",
                 update_id)
        return False

    async def _show(self, update_id: int, reply: StreamingReply, answer: dict[str, Any], chat_id: int,
                    user_id: int, order: _InOrder) -> None:
        """The final answer with its buttons, each message linked to its request for 👍/👎.

        The Bot API out of reach past FINAL_OUTAGE, or flood control asking for a long wait: the answer stays in the
        inbox (answered, not yet shown) and is tried again, the pauses growing to REDELIVER_MAX, until it gets
        through. Meanwhile the chat's lock is let go: its next messages are answered, and shown after this one."""
        note = f"— {answer['agent']} · {answer['model']}" if answer.get("model") else ""
        if answer.get("restarted"):
            note = f"{note}\n{RESTARTED_NOTE}".strip()
        linked = self._linking[chat_id] = asyncio.Event()
        try:
            message_ids = await reply.finish(answer["text"], rating_buttons(), note=note)
            self._link(reply, message_ids, answer, user_id)
            self._migrated(chat_id, reply.chat_id)  # the answer met the group's upgrade (400 migrate_to_chat_id)
        finally:
            linked.set()
            if self._linking.get(chat_id) is linked:
                del self._linking[chat_id]
        if reply.undelivered:
            self._keep_shown(update_id, reply)
            if reply.transient:
                order.let_go()
            if not reply.transient or not await self._redeliver(reply, answer, note, user_id):
                self._deferred.add(update_id)  # the API refused it, or the bot is stopping: the next start shows it
                log.warning("telegram: chat %s: the answer (request %s) is kept and shown when the bot next starts",
                            chat_id, answer["request_id"])
                return
            message_ids = list(reply.message_ids)
        if reply.gone:  # blocked by the person, the bot removed, the topic closed: nothing of it will show
            log.warning("telegram: chat %s refuses the bot: the answer (request %s) could not be delivered", chat_id,
                        answer["request_id"])
            self._end(None, chat_id if reply.gone_chat else None)
            return
        log.info("telegram: chat %s answered by %s/%s (request %s, %d message(s))",
                 chat_id, answer["agent"], answer["model"], answer["request_id"], len(message_ids))

    async def _redeliver(self, reply: StreamingReply, answer: dict[str, Any], note: str, user_id: int) -> bool:
        """Try the final answer again while the Bot API is out of reach or holds it back; False if the bot stops
        first (or the API then refuses it for good reason other than being away)."""
        log.warning("telegram: chat %s: the answer (request %s) is kept in the inbox and sent when the Bot API "
                    "answers again", reply.chat_id, answer["request_id"])
        pause = REDELIVER_FIRST
        while reply.undelivered and reply.transient:
            wait = max(pause, reply.not_before - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._closing.wait()
            if self._closing.is_set():
                return False
            message_ids = await reply.finish(answer["text"], rating_buttons(), note=note, outage=0.0, tries=1)
            self._link(reply, message_ids, answer, user_id)
            pause = min(pause * 2, REDELIVER_MAX)
        return not reply.undelivered

    def _link(self, reply: StreamingReply, message_ids: list[int], answer: dict[str, Any], user_id: int) -> None:
        for message_id in message_ids:  # in the chat the answer went to (a group may have become a supergroup)
            self.store.link_message(FRONTEND, reply.chat_id, message_id, answer["request_id"], user_id)

    def _keep_shown(self, update_id: int, reply: StreamingReply) -> None:
        """Note which messages show this answer, for a restart to write it there (a placeholder refused: none)."""
        if reply.message_ids:
            try:
                self.inbox.showing(update_id, reply.chat_id, reply.message_ids)
            except Exception as exc:  # a restart would add a second message instead: not worth failing the answer
                log.info("telegram: could not note the messages of update %s (%s)", update_id, exc)

    # -- ratings -------------------------------------------------------------------------

    async def _rate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        target = query.message
        if target is not None and (linking := self._linking.get(target.chat.id)) is not None:
            with contextlib.suppress(TimeoutError):  # the buttons showed before the link was written
                async with asyncio.timeout(10):
                    await linking.wait()
        link = (self.store.message_link(FRONTEND, target.chat.id, target.message_id)
                if target is not None else None)
        if link is None:  # its sendMessage's answer was lost (no id to link), or not one of this log's answers
            log.info("telegram: rating from user %s on message %s, which is linked to no request", user.id,
                     target.message_id if target else "?")
            await _answer_press(query, UNLINKED)
            return
        if link.user_id != str(user.id):
            log.warning("telegram: rejected rating from user %s on message %s (not their answer)",
                        user.id, target.message_id if target else "?")
            await _answer_press(query, "This answer can't be rated by you.")
            return
        good = query.data == RATE_UP
        if not self.store.rate(link.request_id, good):
            log.warning("telegram: rating for request %s: not in the routing log", link.request_id)
            await _answer_press(query, "Sorry, that answer is no longer in the log.")
            return
        log.info("telegram: request %s rated %s by user %s", link.request_id, "👍" if good else "👎", user.id)
        if not good and target is not None:
            self._disputed[(target.chat.id, user.id)] = link.request_id
        await _answer_press(query, "Thanks — noted 👍" if good else "Thanks — noted 👎")

    async def _stale_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        log.info("telegram: unknown button data from user %s", update.effective_user.id if update.effective_user
                 else "?")
        await _answer_press(update.callback_query)

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.warning("telegram: %s: %s", type(error).__name__, redact(str(error), (self._token,)))
