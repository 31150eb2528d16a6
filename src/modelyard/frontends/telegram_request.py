"""The Bot API's HTTP client, honest about what Telegram's front (its nginx) answers for the Bot API.

When the Bot API server behind api.telegram.org is down or slow, the nginx in front of it answers by itself: 502 Bad
Gateway or 504 Gateway Time-out, with its own HTML page (php-telegram-bot/core#353 and nickoala/telepot#31:
``<title>502 Bad Gateway</title> … nginx/1.10.0``; telegraf/telegraf#110: ``504 Gateway Time-out … nginx/1.6.2``).
python-telegram-bot reads every error body as JSON (telegram/request/_baserequest.py, ``parse_json_payload``): such a
page is logged whole, with a traceback, at ERROR, and the error raised carries the page in its text ("Bad Gateway
(502). Parsing the server response b'<html>…' failed"; releases before 22 raised a bare ``TelegramError('Invalid
server response')``, not even a NetworkError). A 502 and a 504 become the same ``NetworkError``.

They do not say the same about the request. A 502 (or 503) is the front failing to hand it on — the Bot API server
down, restarting, refusing the connection: nothing was carried out, and sending it again is safe. A 504 is the front
having handed it on and given up waiting for the answer: like a read timeout, the message may well be in the chat,
and a sendMessage sent again shows it twice. :class:`FrontError` carries the status, so the caller can tell them
apart (``streaming.maybe_sent``).

A refusal that is not the Bot API's JSON at all — an HTML 403 or 407 page — comes from something between the bot and
the Bot API: a TLS-inspecting corporate proxy's block page (Squid's ERR_ACCESS_DENIED, "403 Forbidden"), an nginx relay
set as ``telegram.base_url`` with ``deny``, a proxy asking for its password (407). The Bot API itself always answers
its JSON envelope (core.telegram.org/bots/api#making-requests: "The response contains a JSON object, which always has a
Boolean field 'ok'"). python-telegram-bot turned such a 403 into ``Forbidden`` — "the person blocked the bot" — and the
finished answer was dropped for good (a 401 or 404 page into ``InvalidToken``: the bot stopped as if the token were
revoked). :class:`ProxyRefusal` makes it an outage: the answer is kept and tried again, and the log says to check the
proxy.

Likewise any other 5xx page that is not the envelope: a relay in front (``telegram.base_url`` on a Cloudflare Worker,
where Telegram is blocked) answers 520–526 with Cloudflare's page (``<title>… | 524: A timeout occurred</title>``),
which python-telegram-bot logged whole with a traceback. Cloudflare's 524 says the relay reached the origin and gave up
waiting for its answer ("The connection to the origin web server was made, but the origin web server timed out before
responding"): handed on, like a 504 — sent again, the message showed twice.

And a 200 whose body is not the envelope: something in between answered in Telegram's place. A captive portal (a hotel
or train Wi-Fi before its login) or an ISP's block page answers every request with its own HTML page and reaches
nothing; python-telegram-bot raised a bare ``TelegramError('Invalid server response')`` (python-telegram-bot#1009,
#196), no NetworkError, so a final answer so refused was not tried through the outage but kept for the next start.
:class:`ForeignAnswer` makes it an outage. A relay that passed the call on and mangled the answer coming back (a PHP
script printing its warnings ahead of it, a body cut short) did carry it out: where the envelope is whole inside the
body it is taken from there (the message's id known); where only its start is (``{"ok": true, "result": {…`` cut off)
the call counts as carried out, its answer lost (``handed_on``: not sent again). A relay that carried the call out and
answered with a page of its own, no trace of the envelope left, cannot be told from a portal that never reached
Telegram: taken for the portal, its message can show twice.
"""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from telegram.error import NetworkError
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)

#: statuses the front answers for the Bot API behind it
FRONT_STATUSES = frozenset({HTTPStatus.BAD_GATEWAY, HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.GATEWAY_TIMEOUT})
#: a front's statuses for a request it handed on and stopped waiting for: nginx's 504, Cloudflare's 524
HANDED_ON = frozenset({HTTPStatus.GATEWAY_TIMEOUT, 524})
_TITLE = re.compile(rb"<title>\s*(?:\d{3}\s+)?([^<]{1,80}?)\s*</title>", re.IGNORECASE)


class FrontError(NetworkError):
    """Telegram's front answered 502, 503 or 504 for the Bot API (``status``): the API itself gave no answer."""

    def __init__(self, status: int, description: str):
        super().__init__(f"{description} ({status})")
        self.status = status

    @property
    def handed_on(self) -> bool:
        """The front passed the request on and stopped waiting (504, 524): it may have been carried out."""
        return self.status in HANDED_ON


class ProxyRefusal(FrontError):
    """A 4xx that is not the Bot API's answer (no JSON envelope): a proxy or firewall in between refused the request,
    which so never reached Telegram."""

    def __init__(self, status: int, description: str):
        super().__init__(status, f"{description}: not the Bot API's answer but a proxy's or firewall's between this "
                                 "bot and the Bot API (HTTPS_PROXY, telegram.base_url) — check the proxy; the answer "
                                 "is kept and tried again")

    @property
    def handed_on(self) -> bool:
        return False


class ForeignAnswer(FrontError):
    """A 2xx whose body is not the Bot API's envelope: a captive portal's or a relay's page answered in Telegram's
    place. ``relayed``: the body holds the start of the envelope, so the call reached Telegram (its answer mangled)."""

    def __init__(self, status: int, description: str, *, relayed: bool):
        said = ("the Bot API's answer came back mangled by a relay between this bot and the Bot API "
                "(telegram.base_url, HTTPS_PROXY)" if relayed else
                "not the Bot API's answer but a page from something between this bot and the Bot API (a Wi-Fi's "
                "login page, a block page, a relay in telegram.base_url)")
        super().__init__(status, f"{description}: {said}")
        self.relayed = relayed

    @property
    def handed_on(self) -> bool:
        return self.relayed


#: where the Bot API's envelope begins, inside a body a relay added to
_ENVELOPE_START = re.compile(rb'\{\s*"ok"\s*:')


def _embedded_envelope(payload: bytes) -> dict[str, Any] | None:
    """The Bot API's envelope whole inside a body a relay wrapped (its warnings printed ahead); None."""
    text = payload.decode("utf-8", "replace")
    for start in _ENVELOPE_START.finditer(payload):
        offset = len(payload[:start.start()].decode("utf-8", "replace"))
        try:
            body, _ = json.JSONDecoder().raw_decode(text, offset)
        except ValueError:
            continue
        if isinstance(body, dict) and isinstance(body.get("ok"), bool):
            return body
    return None


def _from_bot_api(payload: bytes) -> bool:
    """The body is the Bot API's envelope: a JSON object with its ``ok`` field."""
    try:
        body = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        return False
    return isinstance(body, dict) and "ok" in body


def _description(status: int, payload: bytes) -> str:
    """The body's own word: the Bot API's JSON ``description``, nginx's page title, else the status's name."""
    try:
        said = json.loads(payload.decode("utf-8", "replace")).get("description")
    except (ValueError, AttributeError):
        said = None
    if isinstance(said, str) and said:
        return said[:200]
    title = _TITLE.search(payload)
    if title is not None:
        return title.group(1).decode("utf-8", "replace")
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # Cloudflare's 52x are no standard status
        return f"HTTP {status}"


class FrontAwareRequest(HTTPXRequest):
    """python-telegram-bot's HTTPX client that raises :class:`FrontError` for a 502, 503 or 504, whatever its body,
    :class:`ProxyRefusal` for a 4xx and :class:`ForeignAnswer` for a 2xx that is not the Bot API's JSON."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if code in FRONT_STATUSES or (code >= 500 and not _from_bot_api(payload)):
            raise FrontError(code, _description(code, payload))
        if 400 <= code < 500 and not _from_bot_api(payload):
            raise ProxyRefusal(code, _description(code, payload))
        if 200 <= code < 300 and not _from_bot_api(payload):
            envelope = _embedded_envelope(payload)
            if envelope is None:
                raise ForeignAnswer(code, _description(code, payload),
                                    relayed=_ENVELOPE_START.search(payload) is not None)
            inside = json.dumps(envelope).encode()
            log.info("telegram: the Bot API's answer came wrapped in a relay's output (%d bytes more); taken from "
                     "inside it", len(payload) - len(inside))
            return _as_answered(code, envelope, inside)
        if 200 <= code < 300:
            return _as_answered(code, json.loads(payload.decode("utf-8", "replace")), payload)
        return code, payload


def _as_answered(code: int, envelope: dict[str, Any], payload: bytes) -> tuple[int, bytes]:
    """A 2xx envelope as the Bot API meant it: a refusal (``ok`` false) under its own status, an ``ok`` answer with
    its ``result``; else :class:`ForeignAnswer`, carried out and its answer lost.

    "If 'ok' equals True, the request was successful and the result of the query can be found in the 'result' field"
    (core.telegram.org/bots/api#making-requests). A relay or a self-hosted server that answers ``{"ok": true}`` with
    the field missing or null made python-telegram-bot raise a bare KeyError (``BaseRequest.post``: ``return
    json_data["result"]``) or AttributeError (``Message.de_json(None)``): a sendMessage so answered failed the turn
    with a traceback, the person's '…' on screen and never answered. A refusal a relay passes on as 200 (a 429 with
    its ``parameters.retry_after``) was the same KeyError, not the RetryAfter it is."""
    if envelope.get("ok") is False:
        error_code = envelope.get("error_code")
        return (error_code if isinstance(error_code, int) and error_code >= 400 else HTTPStatus.BAD_REQUEST), payload
    if envelope.get("ok") is True and envelope.get("result") is None:
        raise ForeignAnswer(code, "the Bot API answered ok with no result", relayed=True)
    return code, payload


def api_base(url: str) -> str:
    """``telegram.base_url`` as python-telegram-bot joins it: the token appended, then ``/<method>``.

    Every Bot API request is "presented in this form: https://api.telegram.org/bot<token>/METHOD_NAME"
    (core.telegram.org/bots/api#making-requests), a local Bot API server's too; other bot libraries take the server's
    address alone (martynovskyi/telegram-bot-api-reactive: ``apiHost: http://gateway.me/``, default
    ``https://api.telegram.org``). Written so here — ``http://localhost:8081`` or ``…:8081/`` — the bot asked
    ``…8081<token>/getMe`` (a port with the bot's id in it: 'cannot reach Telegram') or ``/<token>/getMe``, which a Bot
    API server answers 404 Not Found: python-telegram-bot's InvalidToken, and the bot said the token was refused — copy
    it again from @BotFather — when the token was right and the address short of its ``/bot``. An address with no path
    gets it; one ending in ``/bot/`` loses the slash; any other path (a relay's own) is taken as written."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return parts._replace(path="/bot").geturl()
    if parts.path.endswith("/bot/"):
        return parts._replace(path=parts.path[:-1]).geturl()
    return url
