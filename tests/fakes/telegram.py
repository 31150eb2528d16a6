"""Fake Telegram Bot API (`/bot<TOKEN>/<method>`) with long polling and scripted updates.

Accepts what bot libraries send (JSON, form-encoded, multipart or query parameters;
method names case-insensitively) and answers in the Bot API envelope, so a bot pointed
at `server.base_url` runs unmodified. Tests inject user messages and button presses.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from tests.fakes.chat import nginx_page
from tests.fakes.faults import Fault, FaultKind, FaultLike
from tests.fakes.playback import Playback, Rendering, json_bytes
from tests.fakes.server import FakeServer
from tests.fakes.telegram_entities import EntityError, LinkError, check_entities

# Parameters that stay strings even when they look like JSON numbers or literals.
_TEXT_PARAMS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "inline_message_id",
        "data",
        "url",
        "action",
        "parse_mode",
        "language_code",
    }
)
_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    429: "Too Many Requests: retry after {retry}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
#: what the Bot API answers getUpdates while a webhook is set for the token (another deployment set one)
WEBHOOK_CONFLICT = ("Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                    "the webhook first")
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
MAX_TEXT = 4096
#: entities a message keeps: the message is taken and those after the 100th are dropped, no error (rubenlagus/
#: TelegramBots#854: "The message is sent successfully but all tags after the 100th are ignored"; tdlib/
#: telegram-bot-api#820: "a single message can only support up to 100 markdown entities")
MAX_ENTITIES = 100
#: what the Bot API answers a message sent to a group that became a supergroup (parameters.migrate_to_chat_id)
UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
#: ChatMemberAdministrator's rights, each required in the object (core.telegram.org/bots/api#chatmemberadministrator)
_ADMIN_RIGHTS = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
                 "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
                 "can_delete_stories")
#: a send to a channel's direct messages chat without direct_messages_topic_id
DIRECT_TOPIC_MISSING = "Bad Request: channel direct messages topic must be specified"
#: a status fault's variant "migrate_to_chat_id:<id>" adds that parameter (the group became a supergroup)
MIGRATE = "migrate_to_chat_id:"
#: a bot's message in a private chat or a group can be edited and deleted for 48 hours only: after that, 400 "message
#: can't be edited" (editMessageText: tdesktop#2389, "in private chats and groups there's still the 48 hours limit";
#: the text as bots get it: yagop/node-telegram-bot-api#734, php-telegram-bot/core#1000) and "message can't be
#: deleted" (core.telegram.org/bots/api#deletemessage; eternnoir/pyTelegramBotAPI#1544, TelegramBots/Telegram.Bot#471)
EDIT_WINDOW = 48 * 3600
NOT_EDITABLE = "Bad Request: message can't be edited"
NOT_DELETABLE = "Bad Request: message can't be deleted"
#: an offset further than this past the next update id is "in the future" (tdlib/td, tddb/td/db/TQueue.cpp
#: ``TQueueImpl::get``): telegram-bot-api's ``Client::do_get_updates`` then reads from the queue's head, confirming
#: nothing
FUTURE_SLACK = 10
#: the same offset asked again within this many seconds gets one update at most (``Client::process_get_updates_query``,
#: tdlib/telegram-bot-api, telegram-bot-api/Client.cpp: "limit = 1")
SAME_OFFSET_SOON = 0.5
#: the Bot API answers a long poll after 50 s at most, whatever ``timeout`` asked (tdlib/telegram-bot-api#562:
#: timeout=300 came back after 50.5 s)
MAX_POLL = 50.0
T = TypeVar("T")
#: a captive portal's answer to any request made before its login: 200 OK and its own HTML page (a meta refresh to the
#: login form), whatever was asked — Windows' probe "If the result is a HTTP/200 but the response body doesn't match
#: the string the server is known to always send … the OS will launch a web browser" (textslashplain.com/2022/06/24/
#: captive-portals/); en.wikipedia.org/wiki/Captive_portal: "traffic is intercepted … redirected to a login page".
#: Telegram never sees the request. python-telegram-bot raised a bare TelegramError('Invalid server response') and
#: logged the page whole (python-telegram-bot#1009, #196; irazasyed/telegram-bot-sdk#1053: "some broken proxy")
CAPTIVE_PORTAL = ("<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv=\"refresh\" content=\"0; "
                  "url=http://10.5.50.1/login?dst=https%3A%2F%2Fapi.telegram.org%2F\">\n<title>Hotspot login</title>\n"
                  "</head>\n<body>\n<p>Please log in to use the Internet. If nothing happens, <a href=\"http://10.5.50.1/"
                  "login\">click here</a>.</p>\n</body>\n</html>\n")


class ApiError(Exception):
    """A Bot API failure answered as {"ok": false, ...}."""

    def __init__(self, code: int, description: str, retry_after: int | None = None,
                 migrate_to_chat_id: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        if self.migrate_to_chat_id is not None:  # a group upgraded to a supergroup: its new id
            body["parameters"] = {"migrate_to_chat_id": self.migrate_to_chat_id}
        return body


@dataclass
class BotCall:
    """One Bot API method call as received, with what the fake answered."""

    method: str
    params: dict[str, Any]
    ok: bool = True
    result: Any = None
    error: str | None = None

    @property
    def text(self) -> str | None:
        return self.params.get("text")

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")


class TelegramServer(FakeServer):
    """Bot API subset: getMe, getUpdates (long poll), sendMessage, editMessageText, ..."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "modelyard_test_bot",
        bot_first_name: str = "Modelyard Test",
        fault_methods: Iterable[str] = (
            "sendMessage",
            "editMessageText",
            "answerCallbackQuery",
            "sendChatAction",
            "deleteMessage",
        ),
        refuse_entities: str | None = None,
        refuse_link: Callable[[str], str | None] | None = None,
        group_budget: int | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        #: sends and edits a bot may make in one group per minute, counted together (tdlib/td#2592, levlam: "They can
        #: edit messages about 20 times per minute in a specific chat", "They share the limit"); past it, 429 with
        #: retry_after until the oldest call of the minute drops out. None: no such limit (most tests)
        self.group_budget = group_budget
        self._group_calls: dict[Any, list[float]] = {}
        #: answer every message that carries entities with this "can't parse entities" reason (a rule the
        #: Bot API adds later, a proxy that rewrites them): the text without entities still goes through
        self.refuse_entities = refuse_entities
        #: a text_link URL -> why the Bot API refuses it, None to take it: a URL rule Telegram adds beyond
        #: :func:`tests.fakes.telegram_entities.check_link` ("entity URL '…' is invalid: …")
        self.refuse_link = refuse_link
        bot_id = token.split(":", 1)[0]
        self.bot_user = {
            "id": int(bot_id) if bot_id.isdigit() else 123456,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.fault_methods = {m.lower() for m in fault_methods}
        self._state = threading.RLock()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 1
        self._next_callback_id = 1
        self._messages: dict[tuple[Any, int], dict[str, Any]] = {}
        self._open_callbacks: set[str] = set()
        self._calls: list[BotCall] = []
        self._poll_generation = 0
        #: getUpdates' allowed_updates, kept from call to call ("If not specified, the previous setting will be used");
        #: it applies to the updates made from ``_allowed_from`` on — "this parameter doesn't affect updates created
        #: before the call to getUpdates, so unwanted updates may be received for a short period of time"
        #: (core.telegram.org/bots/api#getupdates). None: every kind
        self._allowed: list[str] | None = None
        self._allowed_from = 0
        #: the offset and monotonic time of the last getUpdates (:data:`SAME_OFFSET_SOON`)
        self._last_offset: int | None = None
        self._last_poll_at = -SAME_OFFSET_SOON
        self.commands: list[dict[str, Any]] = []
        self.webhook_url = ""
        #: per group, the members who are not plain members: user id → "creator" or "administrator" (getChatMember)
        self.chat_admins: dict[int, dict[int, str]] = {}
        #: groups upgraded to supergroups: old chat id → new (what is sent to the old one is refused with it)
        self.migrated: dict[int, int] = {}
        #: channels' direct messages chats (Bot API 9.2) the bot administers: a send there needs its topic
        self.direct_messages_chats: set[int] = set()
        #: refuse a send to a private chat's topic, as the Bot API did for every one after its 10.0 rollout
        #: (tdlib/telegram-bot-api#847: 400 "message thread not found"; without message_thread_id the send went through)
        self.refuse_private_topics = False
        #: monotonic time until which sends and edits are refused by flood control (see :meth:`flood`)
        self._flood_until = 0.0
        #: the same, per chat
        self._chat_flood: dict[Any, float] = {}
        #: calls to carry out and then answer under a fault (see :meth:`lose_reply`)
        self._lost: list[tuple[str, Callable[[dict[str, Any]], bool], Fault]] = []
        #: calls refused under a fault, not carried out (see :meth:`refuse`)
        self._refused: list[tuple[str, Callable[[dict[str, Any]], bool], Fault]] = []
        #: calls answered by something in between that never reaches Telegram (:meth:`intercept`), and calls carried
        #: out whose answer a relay mangles on the way back (:meth:`garble_reply`)
        self._intercepted: list[tuple[str, Callable[[dict[str, Any]], bool], str]] = []
        self._garbled: list[tuple[str, Callable[[dict[str, Any]], bool], Callable[[bytes], bytes]]] = []
        self._late: list[tuple[str, Callable[[dict[str, Any]], bool], float]] = []
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getme": lambda p: dict(self.bot_user),
            "getchatmember": self._get_chat_member,
            "logout": lambda p: True,
            "close": lambda p: True,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._webhook_info,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_commands,
            "getmycommands": lambda p: list(self.commands),
            "deletemycommands": self._delete_commands,
        }

    @property
    def base_url(self) -> str:
        """Value for a library's base URL option, e.g. python-telegram-bot `base_url=`."""
        return f"{self.url}/bot"

    @property
    def api_url(self) -> str:
        """Full prefix for this token: f"{api_url}/sendMessage"."""
        return f"{self.url}/bot{self.token}"

    def routes(self) -> list[BaseRoute]:
        return [Route("/bot{token}/{method}", self._dispatch, methods=["GET", "POST"])]

    # ----- test helpers ----------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (update_id assigned here) for the next getUpdates."""
        with self._state:
            full = {"update_id": self._next_update_id, **update}
            message = update.get("message")
            if isinstance(message, dict) and isinstance(message.get("chat"), dict):  # as sent: it can be replied to
                self._messages.setdefault((message["chat"].get("id"), message.get("message_id")), message)
            self._next_update_id += 1
            self._updates.append(full)
        return full

    def renumber(self, next_id: int) -> None:
        """The next update's id is ``next_id``, whatever came before: "If there are no new updates for at least a
        week, then identifier of the next update will be chosen randomly instead of sequentially"
        (core.telegram.org/bots/api#update; tdlib/td TQueue::push draws it from 2,000,001 up) — lower than the last,
        as likely as not."""
        with self._state:
            self._next_update_id = next_id

    def resend(self, update: dict[str, Any]) -> None:
        """Queue an update again, id and all: what getUpdates returns for one never confirmed (the bot took it
        and died before its next call passed a higher offset)."""
        with self._state:
            self._updates.append(json.loads(json.dumps(update)))
            self._updates.sort(key=lambda u: u["update_id"])

    def push_message(
        self,
        user_id: int,
        chat_id: int | None = None,
        text: str = "",
        *,
        first_name: str = "Tester",
        username: str | None = None,
        deleted: bool = False,
        topic_id: int | None = None,
    ) -> dict[str, Any]:
        """A user writing `text` (bot_command entity added for "/cmd"); ``deleted``: gone by the time the bot
        answers (deleted by its sender, or by a clean-up bot that removes commands); ``topic_id``: in that topic of
        the chat (a forum's, or a private chat's — Bot API 9.3: ``message_thread_id`` and ``is_topic_message``)."""
        chat_id = user_id if chat_id is None else chat_id
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": "en",
        }
        if username:
            user["username"] = username
        with self._state:
            message: dict[str, Any] = {
                "message_id": self._new_message_id(),
                "from": user,
                "chat": self._chat(chat_id, first_name, username),
                "date": int(time.time()),
                "text": text,
            }
            if topic_id is not None:
                message["message_thread_id"], message["is_topic_message"] = topic_id, True
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            update = self.push_update({"message": message})
            if deleted:
                del self._messages[(chat_id, message["message_id"])]
            return update

    def push_photo(self, user_id: int, chat_id: int | None = None, caption: str | None = None, *,
                   media_group_id: str | None = None,
                   caption_entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A user sending a photo (``photo``: its sizes, core.telegram.org/bots/api#photosize), with ``caption``: a
        caption opening with "/cmd" carries its bot_command entity in ``caption_entities``, as a text's does in
        ``entities`` ("special entities like usernames, URLs, bot commands, etc. that appear in the caption",
        core.telegram.org/bots/api#message); ``caption_entities`` given are sent as they are."""
        chat_id = user_id if chat_id is None else chat_id
        user = {"id": user_id, "is_bot": False, "first_name": "Tester", "language_code": "en"}
        with self._state:
            message_id = self._new_message_id()
            message: dict[str, Any] = {
                "message_id": message_id, "from": user, "chat": self._chat(chat_id, "Tester", None),
                "date": int(time.time()),
                "photo": [{"file_id": f"AgAD{message_id}", "file_unique_id": f"u{message_id}", "width": 90,
                           "height": 90}]}
            if media_group_id is not None:
                message["media_group_id"] = media_group_id
            if caption is not None:
                message["caption"] = caption
                if caption.startswith("/"):
                    command = caption.split()[0]
                    message["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            if caption_entities is not None:
                message["caption_entities"] = caption_entities
            return self.push_update({"message": message})

    def push_direct_message(self, user_id: int, chat_id: int, text: str, *, topic_id: int | None = None,
                            title: str = "Team news") -> dict[str, Any]:
        """A user writing to a channel's direct messages (Bot API 9.2, core.telegram.org/bots/api-changelog#august-15-
        2025), which a bot administering the channel receives: the chat is a supergroup with ``is_direct_messages``
        ("True, if the chat is the direct messages chat of a channel", #chat), each person's messages in a topic of
        it (``direct_messages_topic``: DirectMessagesTopic ``topic_id`` and ``user``, #message). A send there without
        ``direct_messages_topic_id`` is refused (:meth:`_send_message`). Chevalet/chevaletAnonBot#32: "bot replies
        landed in someone else's inbox"."""
        user = {"id": user_id, "is_bot": False, "first_name": "Tester", "language_code": "en"}
        with self._state:
            self.direct_messages_chats.add(chat_id)
            message: dict[str, Any] = {
                "message_id": self._new_message_id(), "from": user, "date": int(time.time()), "text": text,
                "chat": {"id": chat_id, "title": title, "type": "supergroup", "is_direct_messages": True},
                "direct_messages_topic": {"topic_id": user_id if topic_id is None else topic_id, "user": user}}
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            return self.push_update({"message": message})

    def push_service(self, user_id: int, chat_id: int | None = None, **service: Any) -> dict[str, Any]:
        """A service message Telegram writes in the chat for what ``user_id`` did — no text, no caption, one field
        saying what happened (core.telegram.org/bots/api#message): ``pinned_message`` (the message pinned, as the bot
        gets it: a private chat's person may pin the bot's answer), ``message_auto_delete_timer_changed``
        (``{"message_auto_delete_time": 86400}``: the person set the chat's auto-delete timer)."""
        chat_id = user_id if chat_id is None else chat_id
        user = {"id": user_id, "is_bot": False, "first_name": "Tester", "language_code": "en"}
        with self._state:
            message: dict[str, Any] = {"message_id": self._new_message_id(), "from": user,
                                       "chat": self._chat(chat_id, "Tester", None), "date": int(time.time()),
                                       **json.loads(json.dumps(service))}
            return self.push_update({"message": message})

    def push_callback(
        self,
        user_id: int,
        message_id: int,
        chat_id: int | None = None,
        data: str = "",
        *,
        first_name: str = "Tester",
    ) -> dict[str, Any]:
        """A user pressing an inline button with callback `data` under message `message_id`."""
        chat_id = user_id if chat_id is None else chat_id
        with self._state:
            message = self._messages.get((chat_id, message_id)) or {
                "message_id": message_id,
                "from": dict(self.bot_user),
                "chat": self._chat(chat_id, first_name, None),
                "date": int(time.time()),
                "text": "",
            }
            query_id = str(4_000_000_000_000_000 + self._next_callback_id)
            self._next_callback_id += 1
            self._open_callbacks.add(query_id)
            query = {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"},
                "message": json.loads(json.dumps(message)),
                "chat_instance": str(-(abs(chat_id) * 7919 % 10**18) or -1),
                "data": data,
            }
            return self.push_update({"callback_query": query})

    def expire_presses(self) -> None:
        """Telegram's window for answering the button presses so far passes (seconds: Telethon#4073): an
        answerCallbackQuery for any of them is refused with 400 "query is too old and response timeout expired or query
        ID is invalid" (aiogram_dialog#145, nutgram#725) — a press the bot handles after a restart, or late."""
        with self._state:
            self._open_callbacks.clear()

    def upgrade_group(self, old_chat_id: int, new_chat_id: int, user_id: int) -> None:
        """A group becomes a supergroup, as Telegram does it: a service message with ``migrate_to_chat_id`` in the
        old group, one with ``migrate_from_chat_id`` in the new (Bot API Message), and from then on every message
        sent to the old id refused with 400 and ``parameters.migrate_to_chat_id`` (ResponseParameters)."""
        user = {"id": user_id, "is_bot": False, "first_name": "Tester", "language_code": "en"}
        with self._state:
            self.migrated[old_chat_id] = new_chat_id
            for chat, field, value in ((old_chat_id, "migrate_to_chat_id", new_chat_id),
                                       (new_chat_id, "migrate_from_chat_id", old_chat_id)):
                self.push_update({"message": {"message_id": self._new_message_id(), "from": user,
                                              "chat": self._chat(chat, "Tester", None), "date": int(time.time()),
                                              field: value}})

    def flood(self, seconds: float, chat_id: int | None = None) -> None:
        """Flood control for ``seconds``: every sendMessage / editMessageText refused with 429 "Too Many Requests:
        retry after N" and parameters.retry_after = N, the seconds left — counting down, as bots that retry at once
        see it (agno-agi/agno#7360: "retry after 33", "32", "32", ...). With ``chat_id``, in that chat only: the
        limits are per chat as well as overall — about one message a second in a chat, 20 a minute in a group
        (core.telegram.org/bots/faq, "My bot is hitting limits"; UNICT-DMI/Telegram-SpottedDMI-Bot#33)."""
        with self._state:
            if chat_id is None:
                self._flood_until = time.monotonic() + seconds
            else:
                self._chat_flood[chat_id] = time.monotonic() + seconds

    def _check_flood(self, chat_id: Any = None) -> None:
        now = time.monotonic()
        left = max(self._flood_until, self._chat_flood.get(chat_id, 0.0)) - now
        if left <= 0 and self.group_budget is not None and isinstance(chat_id, int) and chat_id < 0:
            with self._state:
                calls = self._group_calls.setdefault(chat_id, [])
                calls[:] = [t for t in calls if now - t < 60.0]
                if len(calls) >= self.group_budget:
                    left = calls[0] + 60.0 - now
                else:
                    calls.append(now)
        if left > 0:
            retry = max(int(left + 0.999), 1)
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry)

    def lose_reply(self, fault: FaultLike, *, method: str = "sendMessage",
                   when: Callable[[dict[str, Any]], bool] = lambda params: True) -> None:
        """The next call of ``method`` whose parameters pass ``when`` is carried out (the message exists in the chat),
        and its answer lost under ``fault``: ``Fault.drop_midstream()`` cuts the connection mid-response,
        ``Fault.hang_before_headers()`` never answers (the client's read timeout), ``Fault.status(504, html=True)`` is
        the front giving up on the Bot API behind it (its nginx page). What bots meet on a flaky link:
        TimedOut from send_message, the message delivered all the same (python-telegram-bot#1045, #3937;
        SiderealPress/Lobster#630: one status message delivered five times by retries)."""
        with self._state:
            self._lost.append((method.lower(), when, Fault.parse(fault)))

    def refuse(self, fault: FaultLike, *, method: str = "sendMessage",
               when: Callable[[dict[str, Any]], bool] = lambda params: True) -> None:
        """The next call of ``method`` whose parameters pass ``when`` is refused under ``fault`` and not carried out:
        ``Fault.status(403)`` is the Bot API's 403 "Forbidden: bot was blocked by the user" (the person blocked the bot
        between two calls of one answer: core.telegram.org/bots/faq; python-telegram-bot's Forbidden)."""
        with self._state:
            self._refused.append((method.lower(), when, Fault.parse(fault)))

    def _take_lost(self, name: str, params: dict[str, Any]) -> Fault | None:
        return self._take(self._lost, name, params)

    def intercept(self, page: str | None = None, *, method: str = "sendMessage", calls: int = 1,
                  when: Callable[[dict[str, Any]], bool] = lambda params: True) -> None:
        """The next ``calls`` calls of ``method`` whose parameters pass ``when`` never reach Telegram: something in
        between answers them itself, ``200 OK`` with its HTML page (:data:`CAPTIVE_PORTAL` unless ``page``), and
        nothing is carried out — a hotel or train Wi-Fi's login page, an ISP's block page."""
        with self._state:
            self._intercepted.extend([(method.lower(), when, page or CAPTIVE_PORTAL)] * calls)

    def carry_out_late(self, seconds: float, *, method: str = "sendMessage",
                       when: Callable[[dict[str, Any]], bool] = lambda params: True) -> None:
        """The next call of ``method`` whose parameters pass ``when`` is carried out ``seconds`` after it came, then
        answered: Telegram holding a call under load or over a chat's quota, the client's timeout meanwhile, and the
        message delivered all the same later (python-telegram-bot#1045: "raises TimedOut exception for some messages
        over quota, but still delivers them"; SiderealPress/Lobster#630). A client that gives up on the call does not
        stop it: the message still shows."""
        with self._state:
            self._late.append((method.lower(), when, seconds))

    def garble_reply(self, mangle: Callable[[bytes], bytes], *, method: str = "sendMessage",
                     when: Callable[[dict[str, Any]], bool] = lambda params: True) -> None:
        """The next call of ``method`` whose parameters pass ``when`` is carried out (the message is in the chat), and
        the relay in between hands back ``mangle(envelope)``, ``200 OK`` as text/html, in place of the Bot API's JSON
        (:func:`php_warning_first`: a PHP relay printing its warnings ahead of the answer) — a refusal too (a 429)."""
        with self._state:
            self._garbled.append((method.lower(), when, mangle))

    def _take(self, queue: list[tuple[str, Callable[[dict[str, Any]], bool], T]], name: str,
              params: dict[str, Any]) -> T | None:
        with self._state:
            for i, (method, when, what) in enumerate(queue):
                if method == name and when(params):
                    del queue[i]
                    return what
        return None

    def revoke(self, new_token: str = "123456:NEW-TOKEN") -> None:
        """The owner revokes the token in @BotFather while the bot runs: every call with the old one is answered
        401 {"ok": false, "error_code": 401, "description": "Unauthorized"} from then on (tdlib/telegram-bot-api#77;
        eternnoir/pyTelegramBotAPI#2367: nothing revives a bot with the old token)."""
        with self._state:
            self.token = new_token

    def age(self, chat_id: int, message_id: int, seconds: float) -> None:
        """Make a message ``seconds`` older (its ``date``): one the bot sent two days ago can no longer be edited."""
        with self._state:
            self._messages[(chat_id, message_id)]["date"] -= int(seconds)

    def delete(self, chat_id: int, message_id: int) -> None:
        """Someone deletes a message (the person deletes the bot's answer being written)."""
        with self._state:
            self._messages.pop((chat_id, message_id), None)

    def confirm_all(self) -> None:
        """Every update so far taken and confirmed (by whatever ran the token before the bot under test)."""
        with self._state:
            self._updates.clear()

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        with self._state:
            return list(self._updates)

    @property
    def calls(self) -> list[BotCall]:
        """Every method call received (auth failures and unknown methods excluded)."""
        with self._state:
            return list(self._calls)

    def calls_to(self, method: str) -> list[BotCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @property
    def sent(self) -> list[BotCall]:
        """Successful sendMessage / editMessageText calls, in order."""
        return [c for c in self.calls if c.ok and c.method.lower() in ("sendmessage", "editmessagetext")]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Current state of a message (after edits)."""
        with self._state:
            found = self._messages.get((chat_id, message_id))
            return json.loads(json.dumps(found)) if found else None

    # ----- dispatch --------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> ASGIApp:
        raw = await request.body()
        try:
            params = _coerce(_params(request, raw))
        except ApiError as error:
            await self.record(request, {})
            return _envelope(error.payload(), error.code)
        recorded = await self.record(request, params)
        if request.path_params["token"] != self.token:
            return _envelope(ApiError(401, "Unauthorized").payload(), 401)
        method = request.path_params["method"]
        name = method.lower()
        if name != "getupdates" and name not in self._handlers:
            return _envelope(ApiError(404, "Not Found").payload(), 404)
        call = BotCall(method, params)
        if (page := self._take(self._intercepted, name, params)) is not None:  # never reached Telegram: not done
            self._log(call, error=ApiError(200, "answered by a captive portal, not carried out"))
            return self.tracked(HTMLResponse(page))
        if (late := self._take(self._late, name, params)) is not None:
            await asyncio.sleep(late)
        garble = self._take(self._garbled, name, params)
        lost = self._take_lost(name, params)
        fault = lost or self._take(self._refused, name, params) or (
            self.faults.next() if name in self.fault_methods else None)
        recorded.fault = fault
        if lost is not None and lost.kind is FaultKind.STATUS:  # carried out, then the front's error (a 504)
            try:
                self._log(call, result=self._handlers[name](params))
            except ApiError as error:
                self._log(call, error=error)
            return self.tracked(_front_page(lost))
        if fault is not None and fault.kind is FaultKind.STATUS and fault.variant == "html":
            self._log(call, error=ApiError(fault.code, CLOUDFLARE.get(fault.code) or HTTPStatus(fault.code).phrase))
            return self.tracked(_front_page(fault))
        if fault is not None and fault.kind is FaultKind.STATUS:
            retry = _int_or_none(fault.retry_after)
            template = fault.message or _DESCRIPTIONS.get(fault.code, "Error")
            migrate = fault.variant.removeprefix(MIGRATE) if fault.variant.startswith(MIGRATE) else None
            error = ApiError(fault.code, template.format(retry=retry if retry is not None else 1), retry,
                             int(migrate) if migrate else None)
            if fault.code == 429 and error.retry_after is None:
                error.retry_after = 1
            self._log(call, error=error)
            return self.tracked(_envelope(error.payload(), fault.code, dict(fault.headers)))
        try:
            if name == "getupdates":
                result = await self._get_updates(request, params)
            else:
                result = self._handlers[name](params)
        except ApiError as error:
            self._log(call, error=error)
            if garble is not None:  # the relay answers 200 whatever the Bot API said, its warning ahead
                return self.tracked(HTMLResponse(garble(json_bytes(error.payload()))))
            return self.tracked(_envelope(error.payload(), error.code))
        self._log(call, result=result)
        payload = {"ok": True, "result": result}
        if garble is not None:  # carried out; the relay mangles the answer on its way back
            return self.tracked(HTMLResponse(garble(json_bytes(payload))))
        if fault is None or fault.kind is FaultKind.OK:
            return self.tracked(_envelope(payload))
        rendering = Rendering(stream=False, media_type="application/json", body=json_bytes(payload))
        rendering.error_body = json_bytes(ApiError(500, "Internal Server Error").payload())
        rendering.invalid_body = b'{"ok": true, "result": {"message_id": '
        return self.tracked(Playback(rendering, fault, self.stopping, 0.0))

    def _log(self, call: BotCall, *, result: Any = None, error: ApiError | None = None) -> None:
        if error is not None:
            call.ok, call.error = False, error.description
        else:
            call.result = result
        with self._state:
            self._calls.append(call)

    # ----- methods ---------------------------------------------------------------------

    async def _get_updates(self, request: Request, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = _int_or_none(params.get("offset"))
        limit = min(max(_int_or_none(params.get("limit")) or 100, 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), MAX_POLL)
        if "allowed_updates" in params:
            with self._state:
                allowed = params.get("allowed_updates") or None
                if allowed != self._allowed:
                    self._allowed, self._allowed_from = allowed, self._next_update_id
        with self._state:
            self._poll_generation += 1
            generation = self._poll_generation
            now = time.monotonic()
            if offset == self._last_offset and now < self._last_poll_at + SAME_OFFSET_SOON:
                limit = 1
            self._last_offset, self._last_poll_at = offset, now
            if offset is not None:
                if offset < 0:
                    self._updates = self._updates[offset:]
                elif offset <= self._next_update_id + FUTURE_SLACK:  # else "in the future": read from the head
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            with self._state:
                if self.webhook_url:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                if generation != self._poll_generation:
                    raise ApiError(409, _DESCRIPTIONS[409])
                ready = [u for u in self._updates if u["update_id"] < self._allowed_from or not self._allowed
                         or any(k in u for k in self._allowed)]
            if ready or time.monotonic() >= deadline or self.stopping.is_set():
                return ready[:limit]
            if await request.is_disconnected():
                return []
            await asyncio.sleep(0.02)

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        with self._state:
            self.webhook_url = ""
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = str(params.get("url") or "")
        return True

    def _webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._state:
            pending = len(self._updates)
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": pending}

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _chat_key(params.get("chat_id"))
        text = params.get("text")
        if chat_id in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        self._check_migrated(chat_id)
        if chat_id in self.direct_messages_chats and _int_or_none(params.get("direct_messages_topic_id")) is None:
            # TDLib's MessageTopic::get_send_message_topic: "topic is required in administered direct messages chats"
            # (tdlib/td, td/telegram/MessageTopic.cpp); as bots get it: aiogram's exceptions list, "Bad Request:
            # channel direct messages topic must be specified"
            raise ApiError(400, DIRECT_TOPIC_MISSING)
        if (self.refuse_private_topics and isinstance(chat_id, int) and chat_id > 0
                and _int_or_none(params.get("message_thread_id")) is not None):
            raise ApiError(400, "Bad Request: message thread not found")
        self._check_flood(chat_id)
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        entities = self._entities(text, params)
        markup = _markup(params.get("reply_markup"))
        reply = params.get("reply_parameters")
        reply = reply if isinstance(reply, dict) else {}
        replied = _int_or_none(reply.get("message_id", params.get("reply_to_message_id")))
        anyway = reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
        with self._state:
            if replied is not None and (chat_id, replied) not in self._messages and anyway is not True:
                # the message replied to is gone (its sender deleted it, a clean-up bot did)
                raise ApiError(400, "Bad Request: message to be replied not found")
            message: dict[str, Any] = {
                "message_id": self._new_message_id(),
                "from": dict(self.bot_user),
                "chat": self._chat(chat_id, "Tester", None),
                "date": int(time.time()),
                "text": text,
            }
            if entities:
                message["entities"] = entities
            if replied is not None and (original := self._messages.get((chat_id, replied))) is not None:
                # "Note that the Message object in this field will not contain further reply_to_message fields even
                # if it itself is a reply" (core.telegram.org/bots/api#message); an edit's answer carries it too
                message["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
            if (thread := _int_or_none(params.get("message_thread_id"))) is not None:
                # as the API does in a forum: without it, the message lands in the General topic
                message["message_thread_id"], message["is_topic_message"] = thread, True
            if (inline := _inline_markup(markup)) is not None:
                message["reply_markup"] = inline
            self._messages[(chat_id, message["message_id"])] = message
            return json.loads(json.dumps(message))

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        entities = self._entities(text, params)
        if params.get("inline_message_id"):
            return True
        chat_id, message_id = _chat_key(params.get("chat_id")), _int_or_none(params.get("message_id"))
        if chat_id in (None, "") or message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        self._check_migrated(chat_id)
        self._check_flood(chat_id)
        markup = _markup(params.get("reply_markup"))
        with self._state:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            if message["from"].get("id") != self.bot_user["id"] or _too_old(message):
                raise ApiError(400, NOT_EDITABLE)
            new_markup = _inline_markup(markup)
            if (message.get("text") == text and message.get("reply_markup") == new_markup
                    and message.get("entities", []) == entities):
                raise ApiError(400, NOT_MODIFIED)
            message["text"] = text
            message.pop("entities", None)
            if entities:
                message["entities"] = entities
            message["edit_date"] = int(time.time())
            if new_markup is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = new_markup
            return json.loads(json.dumps(message))

    def _entities(self, text: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        entities = _entities(text, params)
        if entities and self.refuse_entities:
            raise ApiError(400, f"Bad Request: can't parse entities: {self.refuse_entities}")
        for entity in entities:
            why = self.refuse_link(entity["url"]) if self.refuse_link and entity["type"] == "text_link" else None
            if why:
                raise ApiError(400, f"Bad Request: {LinkError(entity['url'], why)}")
        if len(entities) > MAX_ENTITIES:  # taken, and the entities after the 100th dropped without a word
            entities = sorted(entities, key=lambda e: e["offset"])[:MAX_ENTITIES]
        return entities

    def _check_migrated(self, chat_id: Any) -> None:
        if chat_id in self.migrated:
            raise ApiError(400, UPGRADED, migrate_to_chat_id=self.migrated[chat_id])

    def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        """A ChatMember by its status: ChatMemberOwner, ChatMemberAdministrator (every right field is required)
        or ChatMemberMember (core.telegram.org/bots/api#getchatmember)."""
        chat_id, user_id = _chat_key(params.get("chat_id")), _int_or_none(params.get("user_id"))
        if chat_id in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        if user_id is None:
            raise ApiError(400, "Bad Request: user not found")
        self._check_migrated(chat_id)
        user = {"id": user_id, "is_bot": False, "first_name": "Tester"}
        status = self.chat_admins.get(chat_id, {}).get(user_id, "member") if isinstance(chat_id, int) else "member"
        if status == "creator":
            return {"status": status, "user": user, "is_anonymous": False}
        if status == "administrator":
            return {"status": status, "user": user, "can_be_edited": False, "is_anonymous": False,
                    **dict.fromkeys(_ADMIN_RIGHTS, True)}
        return {"status": status, "user": user}

    def _delete_message(self, params: dict[str, Any]) -> bool:
        key = (_chat_key(params.get("chat_id")), _int_or_none(params.get("message_id")) or 0)
        with self._state:
            message = self._messages.get(key)  # type: ignore[arg-type]
            if message is None:
                raise ApiError(400, "Bad Request: message to delete not found")
            if _too_old(message):
                raise ApiError(400, NOT_DELETABLE)
            del self._messages[key]  # type: ignore[arg-type]
        return True

    def _answer_callback(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        with self._state:
            if query_id not in self._open_callbacks:
                raise ApiError(
                    400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
                )
            self._open_callbacks.discard(query_id)
        return True

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        if params.get("chat_id") in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not params.get("action"):
            raise ApiError(400, "Bad Request: action is empty")
        return True

    def _set_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        self.commands = [{"command": c.get("command"), "description": c.get("description")} for c in commands]
        return True

    def _delete_commands(self, params: dict[str, Any]) -> bool:
        self.commands = []
        return True

    # ----- internals -------------------------------------------------------------------

    def _new_message_id(self) -> int:
        with self._state:
            message_id = self._next_message_id
            self._next_message_id += 1
            return message_id

    @staticmethod
    def _chat(chat_id: Any, first_name: str, username: str | None) -> dict[str, Any]:
        if isinstance(chat_id, int) and chat_id > 0:
            chat: dict[str, Any] = {"id": chat_id, "first_name": first_name, "type": "private"}
            if username:
                chat["username"] = username
            return chat
        if isinstance(chat_id, int):
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "title": "Test group", "type": kind}
        name = str(chat_id)
        return {"id": -1_001_000_000_000, "title": name, "username": name.lstrip("@"), "type": "channel"}


def _front_page(fault: Fault) -> Response:
    """What the nginx in front of the Bot API answers by itself: its HTML page for a 502 or a 504 (php-telegram-bot/
    core#353: '<title>502 Bad Gateway</title> … nginx/1.10.0'; telegraf/telegraf#110: '504 Gateway Time-out … nginx'),
    or, for a status fault without ``html``, the API's JSON envelope."""
    if fault.variant == "html":
        page = cloudflare_page(fault.code) if fault.code in CLOUDFLARE else nginx_page(fault.code)
        return HTMLResponse(page, status_code=fault.code, headers=dict(fault.headers))
    description = fault.message or _DESCRIPTIONS.get(fault.code) or HTTPStatus(fault.code).phrase
    return _envelope(ApiError(fault.code, description).payload(), fault.code, dict(fault.headers))


#: Cloudflare's own 5xx, answered by a relay in front of the Bot API (a Worker set as the bot's base URL) with its page
#: (developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-5xx-errors/)
CLOUDFLARE = {520: "Web server is returning an unknown error", 521: "Web server is down",
              522: "Connection timed out", 523: "Origin is unreachable", 524: "A timeout occurred",
              525: "SSL handshake failed", 526: "Invalid SSL certificate"}


def cloudflare_page(status: int) -> str:
    """Cloudflare's error page, shortened: its title names the host and the error ('api.assembla.com | 524: A timeout
    occurred', as pasted by users hitting it), its body what happened."""
    what = CLOUDFLARE[status]
    return (f"<!DOCTYPE html>\n<html class=\"no-js\" lang=\"en-US\">\n<head>\n<title>tg-relay.example.workers.dev | "
            f"{status}: {what}</title>\n<meta charset=\"UTF-8\" />\n</head>\n<body><h1>Error {status}</h1><h2>{what}"
            "</h2><p>Cloudflare Ray ID: 6e38aaae2b924b8c • Performance &amp; security by Cloudflare</p></body>\n"
            "</html>\n")


def _too_old(message: dict[str, Any]) -> bool:
    """Past the 48 hours a bot may edit or delete its message in a private chat or a group (not a channel)."""
    return message.get("chat", {}).get("type") != "channel" and time.time() - message.get("date", 0) > EDIT_WINDOW


def _envelope(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers=headers)


def _inline_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Telegram echoes only inline keyboards back in the Message object."""
    if markup and "inline_keyboard" in markup:
        return {"inline_keyboard": markup["inline_keyboard"]}
    return None


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _chat_key(value: Any) -> Any:
    as_int = _int_or_none(value)
    return as_int if as_int is not None else value


def _entities(text: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Entities as sent, checked by the documented rules (parse_mode is not interpreted by this fake)."""
    if params.get("parse_mode") and params.get("entities"):
        raise ApiError(400, "Bad Request: can't parse entities: entities and parse_mode are mutually exclusive")
    try:
        return check_entities(text, params.get("entities"))
    except LinkError as exc:
        raise ApiError(400, f"Bad Request: {exc}") from exc
    except EntityError as exc:
        raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc


def _markup(value: Any) -> dict[str, Any] | None:
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    return value


def _params(request: Request, raw: bytes) -> dict[str, Any]:
    """Merge query-string and body parameters, whatever the body encoding."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").lower()
    if not raw:
        return params
    if "application/json" in content_type:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "Bad Request: invalid JSON") from exc
        if isinstance(body, dict):
            params.update(body)
    elif "multipart/form-data" in content_type:
        params.update(_multipart(raw, request.headers["content-type"]))
    else:
        params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _multipart(raw: bytes, content_type: str) -> dict[str, str]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if name and part.get_filename() is None:
            fields[str(name)] = part.get_payload(decode=True).decode("utf-8", "replace")
    return fields


def _coerce(params: dict[str, Any]) -> dict[str, Any]:
    """Form values arrive as strings; decode JSON-looking ones the way Telegram does."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str) and key not in _TEXT_PARAMS:
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[key] = value
    return out


def php_warning_first(envelope: bytes) -> bytes:
    """A PHP relay (a script on shared hosting forwarding to api.telegram.org where it is blocked) with display_errors
    on: PHP's HTML-formatted warning printed ahead of the Bot API's answer it passes on (php.net/manual/en/
    errorfunc.configuration.php#ini.html-errors; the form '<br />', '<b>Warning</b>:  … in <b>file</b> on line
    <b>n</b><br />')."""
    return (b"<br />\n<b>Warning</b>:  Undefined array key \"HTTP_X_FORWARDED_FOR\" in "
            b"<b>/var/www/tg-proxy/index.php</b> on line <b>27</b><br />\n" + envelope)
