"""Messages a person forwards to the bot, alone or several at once with a comment of their own.

A forwarded message comes with ``forward_origin`` (core.telegram.org/bots/api#messageorigin: who wrote it) and the
original's text or media; the person's comment, typed in the forward window, comes as a message of its own — each
forwarded message is one update (HKUDS/nanobot#2585: "the forwarded content is processed without the user's
question/context … the bot responds twice"; chatwoot/chatwoot#13308: 5–10 messages forwarded at once, one request
each). The model got each forwarded text as the person's own words, and answered each (openclaw/openclaw#108985:
"presented to the agent as the forwarding user's own text").
"""

from __future__ import annotations

from telegram import Message

from modelyard.frontends.telegram_checklist import written
from modelyard.frontends.telegram_elsewhere import origin_name


def forwarded(message: Message, attached: str | None) -> str | None:
    """The line the model gets for a forwarded message: whose it was and its text — else what it carried
    (``attached``: "a photo"), said not shown. None for a message the person wrote."""
    origin = message.forward_origin
    if origin is None:
        return None
    said = written(message).strip()
    if said:
        carried = f", with {attached} not shown to you" if attached else ""
        return f"[Forwarded message{origin_name(origin)}{carried}:]\n{said}"
    return f"[Forwarded{origin_name(origin)}: {attached or 'a message'}, not shown to you]"
