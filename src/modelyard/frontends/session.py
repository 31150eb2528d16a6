"""One turn pipeline for every front-end: history in → answer → every failure mapped → history out.

A front-end is its I/O only: it reads a message, shows the text ``on_text`` streams (a call
that does not continue the previous text replaces it), and shows the :class:`Reply`, whose
``text`` is always fit for the person. Everything between — the agent chosen for the
conversation, the input budget, the history window, the orchestrator and hand-offs
(:func:`~modelyard.agents.turn.handle_turn`), the mapping of every failure to a message,
storing the exchange, the routing row committed before the answer can be rated — happens
here, the same way in Telegram and ``modelyard chat``; ``modelyard ask`` is one turn without
history (:func:`answer`).

A new front-end needs one module: read input, call :meth:`Session.turn`, render the reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from modelyard.agents.learning import correct_routing
from modelyard.agents.turn import OnText, TurnResult, handle_turn
from modelyard.config import Config
from modelyard.errors import ModelyardError, redact
from modelyard.frontends.history import Conversation, ConversationStore
from modelyard.ledger.labels import LabelSource
from modelyard.router import ChainExhausted, RequestRecord, StreamInterrupted
from modelyard.router.fit import Fit, fit
from modelyard.runtime import Runtime
from modelyard.tokens import message_tokens
from modelyard.types import Message

log = logging.getLogger(__name__)
#: called with the notices once a message passed the checks, before the model runs
OnStart = Callable[[list[str]], Awaitable[None]]

#: system prompt tokens the front-end cannot see, kept free when history fills a model's context
PROMPT_MARGIN = 128
#: how long an answer waits for its routing row before it is shown anyway (only a stuck disk gets near it)
LOG_WAIT = 10.0

NO_MODEL = "Sorry — no model could answer right now. Please try again in a moment."
FAILED = "Sorry — something went wrong while answering. Please try again."
INTERRUPTED_NOTE = "[answer interrupted — the model stopped responding]"
EMPTY_ANSWER = "(the model returned an empty answer)"


class Status(StrEnum):
    ANSWERED = "answered"
    #: refused before any model ran (empty, too long, a hand-off loop...): the text says why
    REFUSED = "refused"
    #: no model in the chain could answer
    NO_MODEL = "no_model"
    #: the answering model broke off; the text is the partial answer and a note
    INTERRUPTED = "interrupted"
    #: a bug: the text apologises, the log has the traceback
    FAILED = "failed"


@dataclass
class Reply:
    status: Status
    #: what to show the person
    text: str
    #: the turn, when it ran (answered); its route and decision
    result: TurnResult | None = None
    #: every request the turn made, answered or not (route lines, ids)
    records: list[RequestRecord] = field(default_factory=list)
    #: the failure in full (a terminal shows it; a chat app shows ``text``)
    detail: str | None = None
    #: things to tell the person first ("agent X no longer exists; back to automatic routing")
    notices: list[str] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.status is Status.ANSWERED


def message_fit(config: Config, agent: str | None, text: str) -> Fit:
    """How a message fits the models that may answer it (router/fit.py, the router's own rule): with
    automatic routing any agent may answer, so every agent's chain counts."""
    return fit(config, [agent] if agent else list(config.agents), message_tokens(text))


async def answer(runtime: Runtime, history: list[Message], *, agent: str | None = None,
                 on_text: OnText | None = None, records: list[RequestRecord] | None = None) -> Reply:
    """One turn on ``history`` (its last user message), every outcome a :class:`Reply`.

    Cancellation (Ctrl-C, a front-end stopping) is not an outcome: it propagates, and ``records``
    (filled as each request starts) still shows what ran.
    """
    records = records if records is not None else []
    try:
        result = await handle_turn(runtime, history, agent=agent, on_text=on_text, records=records)
    except ChainExhausted as exc:
        log.warning("turn: no model could answer (request %s)", exc.record.id)
        return Reply(Status.NO_MODEL, NO_MODEL, None, records, str(exc))
    except StreamInterrupted as exc:
        log.warning("turn: answer interrupted (request %s)", exc.record.id)
        partial = exc.partial.strip()
        return Reply(Status.INTERRUPTED, f"{partial}\n\n{INTERRUPTED_NOTE}" if partial else NO_MODEL, None,
                     records, str(exc))
    except ModelyardError as exc:  # refusals meant for the person (unknown agent, hand-off loop, depth...)
        log.warning("turn refused (%s)", type(exc).__name__)
        message = redact(str(exc))[:500]
        return Reply(Status.REFUSED, message, None, records, message)
    except Exception:
        log.exception("turn failed")
        return Reply(Status.FAILED, FAILED, None, records, FAILED)
    if not result.request_id:  # refused before any model ran (empty, too long...): nothing to keep or rate
        return Reply(Status.REFUSED, result.text, result, records, result.text)  # why, and what to do
    await runtime.log.wait_written(LOG_WAIT)  # the rows exist before the answer can be rated or looked up
    return Reply(Status.ANSWERED, result.text.strip() or EMPTY_ANSWER, result, records)


class Session:
    """One conversation of one front-end (a Telegram chat, the terminal's ``chat``), over its stored history.

    ``remember_agent``: whether ``/agent NAME`` is stored with the conversation (Telegram) or holds
    for this session only (``chat --agent`` / ``/agent`` in the terminal).
    """

    def __init__(self, runtime: Runtime, store: ConversationStore, frontend: str, external_id: str | int, *,
                 history_tokens: int, agent: str | None = None, default_agent: str | None = None,
                 remember_agent: bool = True):
        self.runtime = runtime
        self.config = runtime.config
        self.store = store
        self.conversation: Conversation = store.conversation(frontend, external_id)
        self.history_tokens = history_tokens
        self.remember_agent = remember_agent
        self.default_agent = default_agent
        self._agent = agent if agent is not None else self.conversation.agent
        #: the requests of the turn running now (or last run): what a front-end shows after a Ctrl-C
        self.records: list[RequestRecord] = []

    @property
    def agent(self) -> str | None:
        """The agent this conversation talks to: the one chosen, else the front-end's default; None = the
        orchestrator picks per turn."""
        return self._agent or self.default_agent

    def choose(self, agent: str | None) -> None:
        """Talk to ``agent`` from now on (None: automatic routing). The caller checked the name."""
        self._agent = agent
        if self.remember_agent:
            self.store.set_agent(self.conversation, agent)

    def reset(self) -> int:
        """Forget the history (the agent choice stays); how many turns went."""
        return self.store.reset(self.conversation)

    def history(self) -> list[Message]:
        return self.store.load(self.conversation, self.history_tokens)

    async def correct(self, agent: str, request_id: str | None = None, source: LabelSource = LabelSource.CHAT,
                      theirs: Callable[[str], bool] | None = None) -> bool:
        """``/agent NAME`` right after a routed answer (or after a 👎 on ``request_id``) is a routing label;
        ``theirs`` says whether the last answer was to the person correcting (a group chat's may not be)."""
        if request_id is None:
            last = next((t for t in reversed(self.store.turns(self.conversation)) if t.role == "assistant"), None)
            if last is None or not last.request_id or last.agent == agent:
                return False
            if theirs is not None and not theirs(last.request_id):
                return False
            request_id = last.request_id
        return await asyncio.to_thread(correct_routing, self.runtime, request_id, agent, source)

    async def turn(self, text: str, *, on_text: OnText | None = None, on_start: OnStart | None = None) -> Reply:
        """Answer ``text`` in this conversation; an answered exchange is stored, anything else is not.

        ``on_start(notices)`` runs once the message passed the checks, just before the model does (a
        chat app shows the notices and its placeholder there); a refusal before that never calls it.
        """
        notices: list[str] = []
        agent = self.agent
        if agent is not None and agent not in self.config.agents:  # chosen before a config change
            log.warning("%s: conversation %s uses an agent no longer in the config; back to automatic",
                        self.conversation.frontend, self.conversation.external_id)
            notices.append(f"Agent '{agent}' no longer exists; back to automatic routing.")
            self.choose(None)
            agent = None
        found = message_fit(self.config, agent, text)
        if found.too_long:
            log.info("%s: refused a message of ~%d tokens (limit %s)", self.conversation.frontend, found.tokens,
                     found.largest)
            return Reply(Status.REFUSED, f"Your message is too long for the models (about {found.tokens} tokens; "
                         f"the largest takes about {found.largest}). Please shorten it or split it up.",
                         notices=notices)
        # history fills what the smallest model able to take this message can read, so it stays usable
        room = (self.history_tokens if found.room is None
                else min(self.history_tokens, found.room - PROMPT_MARGIN))
        history = [*self.store.load(self.conversation, max(room - found.tokens, 0)), Message("user", text)]
        self.records = []
        if on_start is not None:
            await on_start(notices)
        reply = await answer(self.runtime, history, agent=agent, on_text=on_text, records=self.records)
        reply.notices[:0] = notices
        if reply.answered and reply.result is not None:
            result = reply.result
            self.store.append(self.conversation, "user", text)
            self.store.append(self.conversation, "assistant", result.text, agent=result.agent, model=result.model,
                              request_id=result.request_id, keep_tokens=self.history_tokens)
        return reply
