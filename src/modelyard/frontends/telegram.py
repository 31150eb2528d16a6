"""Telegram front-end: long polling, allowlist, per-chat history, streamed answers, 👍/👎 ratings.

Every update first passes :meth:`TelegramBot._gate`: a user not on ``telegram.allowed_users``
is dropped before any handler runs, so no agent is started and nothing is spent (the drop is
logged without the message text). Allowed messages become one :meth:`Session.turn` each (the
turn pipeline every front-end shares, frontends/session.py), under a per-chat lock so a chat's
turns stay in order while other chats (and button presses) proceed. This module is Telegram's
I/O: commands, streamed message edits, rating buttons.

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
from collections import defaultdict
from collections.abc import Iterable

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import Conflict, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from modelyard.agents.turn import prepare_routing
from modelyard.config import Config
from modelyard.errors import ModelyardError, redact
from modelyard.frontends.history import ConversationStore
from modelyard.frontends.session import FAILED, Session
from modelyard.frontends.streaming import StreamingReply, retry_seconds
from modelyard.frontends.telegram_format import FORMATTERS
from modelyard.ledger.labels import LabelSource
from modelyard.runtime import Runtime

log = logging.getLogger(__name__)

FRONTEND = "telegram"
RATE_UP, RATE_DOWN = "rate:1", "rate:0"

#: how a message being answered ends when the bot stops (``serve`` shutting down, Ctrl-C)
STOPPED_NOTE = "[answer stopped — the bot is shutting down; please ask again in a moment]"
#: longest wait, when stopping, for the turns in flight to show where they stopped
STOP_WAIT = 10.0
#: seconds between two log lines about the same failure of getUpdates
POLL_ERROR_EVERY = 60.0
#: tries of each Bot API call the bot starts with (getMe, deleteWebhook), and the longest wait between two
START_TRIES = 4
START_WAIT = 10.0

HELP = ("Send me a task and I'll route it to the right agent.\n"
        "/agent NAME — talk to one agent directly; /agent — back to automatic routing\n"
        "/status — models and queues\n"
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


def bot_token(config: Config) -> str:
    """The token from the environment variable named by ``telegram.token_env``."""
    name = config.telegram.token_env
    token = os.environ.get(name, "").strip()
    if not token:
        raise TelegramSetupError(f"no Telegram bot token: set the environment variable {name} "
                                 "(or point telegram.token_env at the variable that holds it)")
    return token


def rating_buttons() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data=RATE_UP),
                                  InlineKeyboardButton("👎", callback_data=RATE_DOWN)]])


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
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        #: per chat, the last answer given a 👎: a following /agent NAME corrects its routing
        self._disputed: dict[int, str] = {}
        #: StreamingReply of every finished turn, newest last (benchmarks read first_edit_at)
        self.replies: list[StreamingReply] = []
        #: tasks answering a message now; stop() ends each with STOPPED_NOTE rather than mid-sentence
        self._turns: set[asyncio.Task] = set()
        #: chats whose answer is on screen but not yet linked to its request (a tap may come first)
        self._linking: dict[int, asyncio.Event] = {}
        self._stopping = False
        self._warm: asyncio.Task[None] | None = None
        #: the last getUpdates failure logged, and when (a lasting one is logged once a minute)
        self._poll_error = ""
        self._poll_error_at = 0.0
        quiet_http_logs(token, logging.getLogger().handlers)
        # a reply to a message that is gone (deleted by its sender, or by a group's clean-up bot at once) is
        # refused by the Bot API unless allowed; in a group every reply quotes, so /status and refusals were lost
        self.app = (Application.builder().token(token).base_url(self.settings.base_url)
                    .defaults(Defaults(allow_sending_without_reply=True)).concurrent_updates(True).build())
        self.app.add_handler(TypeHandler(Update, self._gate), group=-1)
        self.app.add_handler(CommandHandler(["start", "help"], self._help))
        self.app.add_handler(CommandHandler("agent", self._agent))
        self.app.add_handler(CommandHandler("status", self._status))
        self.app.add_handler(CommandHandler("reset", self._reset))
        self.app.add_handler(CallbackQueryHandler(self._rate, pattern=r"^rate:[01]$"))
        self.app.add_handler(CallbackQueryHandler(self._stale_button))
        self.app.add_handler(MessageHandler(filters.COMMAND, self._unknown_command))
        self.app.add_handler(MessageHandler(filters.ALL & ~filters.UpdateType.EDITED, self._message))
        self.app.add_error_handler(self._error)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self._initialize()
        try:
            await self.app.bot.set_my_commands([
                BotCommand("agent", "talk to one agent (no name: automatic routing)"),
                BotCommand("status", "models and queues"),
                BotCommand("reset", "forget this chat's history"),
            ])
        except TelegramError as exc:  # cosmetic: the commands work without the menu
            log.info("telegram: could not set the command menu (%s)", type(exc).__name__)
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(timeout=int(self.poll_timeout), poll_interval=0.0,
                                             allowed_updates=["message", "callback_query"],
                                             bootstrap_retries=START_TRIES - 1, error_callback=self._polling_failed)
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

    def _polling_failed(self, error: TelegramError) -> None:
        """A getUpdates call failed (python-telegram-bot retries it): one line, no traceback (its default
        logs a full one for every 409, 502 or dropped connection), the same failure at most once a minute."""
        now = time.monotonic()
        kind = type(error).__name__
        if self._poll_error == kind and now - self._poll_error_at < POLL_ERROR_EVERY:
            return
        self._poll_error, self._poll_error_at = kind, now
        if isinstance(error, Conflict) and "webhook" in str(error).lower():
            # set after this bot started (it deletes a stale one when it starts): a deployment that takes updates by
            # webhook; taking them back would take them from it, so say where they go and how to end it
            log.warning("telegram: a webhook is set for this bot token (409 Conflict), so Telegram sends the "
                        "updates there, not to this bot; stop whatever set it, or call deleteWebhook — retrying")
        elif isinstance(error, Conflict):
            log.warning("telegram: another process is polling with this bot token (409 Conflict); "
                        "only one bot instance can run per token — retrying")
        else:
            log.warning("telegram: polling for updates failed (%s: %s); retrying", kind,
                        redact(str(error), (self._token,)))

    async def _warm_routing(self) -> None:
        try:
            await prepare_routing(self.runtime)
        except Exception as exc:  # the first routed turn builds it again and reports what fails
            log.warning("telegram: could not prepare routing at start (%s)", redact(str(exc)))

    async def stop(self) -> None:
        self._stopping = True
        if self._warm is not None:
            self._warm.cancel()
        turns = list(self._turns)
        for task in turns:  # the model is stopped (its row logged); each message says it was cut short
            task.cancel()
        if turns:
            await asyncio.wait(turns, timeout=STOP_WAIT)
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        if self._own_store:
            self.store.close()

    async def __aenter__(self) -> TelegramBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- gate ----------------------------------------------------------------------------

    async def _gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Default deny: updates from anyone not on the allowlist stop here."""
        user = update.effective_user
        if user is not None and user.id in self.allowed:
            return
        message, chat = update.message, update.effective_chat
        if (message is not None and chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
                and not (message.text or "").startswith("/") and self._addressed(message) is None):
            raise ApplicationHandlerStop  # a stranger's chatter in a group the bot reads: not worth a warning each
        kind = "button" if update.callback_query else "message" if update.message else "update"
        log.warning("telegram: ignored %s from user %s (not in telegram.allowed_users)",
                    kind, user.id if user else "unknown")
        if update.callback_query is not None:  # stop the client's spinner; change nothing
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        raise ApplicationHandlerStop

    # -- commands ------------------------------------------------------------------------

    def _session(self, update: Update) -> Session:
        assert update.effective_chat is not None
        return Session(self.runtime, self.store, FRONTEND, update.effective_chat.id,
                       history_tokens=self.settings.history_tokens, default_agent=self.settings.agent)

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(HELP)

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
            # right after a routed answer, or after a 👎 on one, this is a routing label
            disputed = self._disputed.pop(update.effective_message.chat.id, None)
            if await session.correct(wanted, disputed, LabelSource.TELEGRAM):
                text += "\n(Noted: your last request belonged to it — routing will learn from that.)"
        else:
            log.info("telegram: chat %s asked for unknown agent (%d chars)", session.conversation.external_id,
                     len(wanted))
            text = f"Unknown agent '{wanted[:64]}'. Agents: {', '.join(self.config.agents)}"
        await update.effective_message.reply_text(text)

    async def _status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        session = self._session(update)
        lines = [f"Agent: {session.agent or 'automatic routing'}", "", "Models:"]
        for s in self.runtime.router.model_states():
            where = "local" if s.is_local else "cloud"
            line = f"• {s.name} ({s.provider}, {where}): {s.state} — {s.in_flight}/{s.limit} busy, {s.waiting} waiting"
            lines.append(line + (f" ({redact(s.detail)})" if s.detail else ""))
        await update.effective_message.reply_text("\n".join(lines))

    async def _reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        session = self._session(update)
        async with self._locks[int(session.conversation.external_id)]:
            removed = session.reset()
        log.info("telegram: chat %s history reset (%d turns)", session.conversation.external_id, removed)
        await update.effective_message.reply_text("History cleared. Starting fresh.")

    async def _unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command none of ours. One addressed to another bot (``/start@other_bot``: a group where this bot reads
        every message, privacy mode off or an admin) is not ours to answer: it got 'Unknown command' and the help."""
        message = update.effective_message
        assert message is not None
        command = (message.text or message.caption or "").split(maxsplit=1)[0]
        _, at, addressee = command.partition("@")
        if at and addressee.lower() != (self.app.bot.username or "").lower():
            log.info("telegram: chat %s: a command for another bot, ignored", message.chat.id)
            return
        await message.reply_text("Unknown command.\n\n" + HELP)

    # -- conversation --------------------------------------------------------------------

    async def _message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if message is None or user is None or chat is None:
            return
        text = (message.text or "").strip()
        if chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
            addressed = self._addressed(message)
            if addressed is None:  # chatter among the people in the group: not for this bot
                return
            text = addressed
            if not text and message.text is not None:  # '@bot' alone
                await message.reply_text(HELP)
                return
        if not text:
            log.info("telegram: empty or non-text message in chat %s", chat.id)
            await message.reply_text("I can only read text messages — please send your request as text.")
            return
        async with self._locks[chat.id]:
            await self._turn(update, text)

    def _addressed(self, message: Message) -> str | None:
        """In a group, what is said to this bot: the text of a message that mentions it (the mention taken out) or
        replies to it; None for the rest. With privacy mode on Telegram sends only these (and commands); with it off,
        or the bot an admin, every message comes, and each line of chatter ran a model and got an answer."""
        text = message.text or ""
        name = self.app.bot.username or ""
        mention = re.compile(rf"@{re.escape(name)}\b", re.IGNORECASE) if name else None
        replied = message.reply_to_message
        to_bot = replied is not None and replied.from_user is not None and replied.from_user.id == self.app.bot.id
        if mention is not None and mention.search(text or message.caption or ""):
            return " ".join(mention.sub(" ", text).split()) if text else ""
        return text.strip() if to_bot else None

    async def _turn(self, update: Update, text: str) -> None:
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        assert message is not None and user is not None and chat is not None
        reply = StreamingReply(self.app.bot, chat.id, interval=self.settings.edit_interval,
                               reply_to=message.message_id, formatter=FORMATTERS[self.settings.format],
                               thread_id=message.message_thread_id if message.is_topic_message else None)

        async def start(notices: list[str]) -> None:
            for notice in notices:  # said before the answer; one the Bot API refuses (flood control, the message it
                try:  # replies to deleted) must not fail the turn before the model runs, as the placeholder did
                    await message.reply_text(notice)
                except TelegramError as exc:
                    log.info("telegram: notice in chat %s failed (%s)", chat.id, type(exc).__name__)
            await reply.start()
            self.replies.append(reply)

        task = asyncio.current_task()
        assert task is not None
        self._turns.add(task)
        try:
            result = await self._session(update).turn(text, on_text=reply.update, on_start=start)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            task.uncancel()
            log.info("telegram: chat %s: answer stopped, the bot is shutting down", chat.id)
            if reply.started:
                await reply.finish(f"{reply.latest}\n\n{STOPPED_NOTE}".strip())
            return
        except Exception:  # the pipeline maps every failure to a reply; this is a bug in it or in Telegram I/O
            log.exception("telegram: chat %s: turn failed", chat.id)
            if reply.started:
                await reply.finish(FAILED)
            return
        finally:
            self._turns.discard(task)
        if not reply.started:  # refused before any model ran: nothing to edit
            for notice in result.notices:
                await message.reply_text(notice)
            await message.reply_text(result.text)
            log.info("telegram: chat %s: message refused", chat.id)
            return
        if not result.answered or result.result is None:
            await reply.finish(result.text)
            log.info("telegram: chat %s: %s", chat.id, result.status)
            return
        answered = result.result
        note = f"— {answered.agent} · {answered.model}" if answered.model else ""
        linked = self._linking[chat.id] = asyncio.Event()
        try:
            message_ids = await reply.finish(result.text, rating_buttons(), note=note)
            for message_id in message_ids:  # in the chat the answer went to (a group may have become a supergroup)
                self.store.link_message(FRONTEND, reply.chat_id, message_id, answered.request_id, user.id)
        finally:
            linked.set()
            if self._linking.get(chat.id) is linked:
                del self._linking[chat.id]
        log.info("telegram: chat %s answered by %s/%s (request %s, %d message(s))",
                 chat.id, answered.agent, answered.model, answered.request_id, len(message_ids))

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
        if link is None or link.user_id != str(user.id):
            log.warning("telegram: rejected rating from user %s on message %s (not their answer)",
                        user.id, target.message_id if target else "?")
            await query.answer("This answer can't be rated by you.")
            return
        good = query.data == RATE_UP
        if not self.store.rate(link.request_id, good):
            log.warning("telegram: rating for request %s: not in the routing log", link.request_id)
            await query.answer("Sorry, that answer is no longer in the log.")
            return
        log.info("telegram: request %s rated %s by user %s", link.request_id, "👍" if good else "👎", user.id)
        if not good and target is not None:
            self._disputed[target.chat.id] = link.request_id
        await query.answer("Thanks — noted 👍" if good else "Thanks — noted 👎")

    async def _stale_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        log.info("telegram: unknown button data from user %s", update.effective_user.id if update.effective_user
                 else "?")
        await update.callback_query.answer()

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.warning("telegram: %s: %s", type(error).__name__, redact(str(error), (self._token,)))
