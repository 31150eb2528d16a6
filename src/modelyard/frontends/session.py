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

from modelyard.agents.learning import correct_routing, was_routed
from modelyard.agents.turn import OnText, TurnResult, handle_turn
from modelyard.config import Config
from modelyard.errors import ModelyardError, redact
from modelyard.frontends.history import Conversation, ConversationStore, Turn
from modelyard.frontends.reask import Switch, reasks
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

    def _last_answer(self, theirs: Callable[[str], bool] | None) -> tuple[Turn, Turn | None] | None:
        """The conversation's last answer (with the question before it), if it has a request id and was to the
        person acting now (``theirs``: a group chat's last answer may be someone else's)."""
        turns = self.store.turns(self.conversation)
        at = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == "assistant"), None)
        if at is None or not turns[at].request_id or (theirs is not None and not theirs(turns[at].request_id or "")):
            return None
        question = turns[at - 1] if at and turns[at - 1].role == "user" else None
        return turns[at], question

    async def correct(self, agent: str, request_id: str | None = None, source: LabelSource = LabelSource.CHAT,
                      theirs: Callable[[str], bool] | None = None) -> Switch:
        """``/agent NAME`` after a 👎 on ``request_id`` labels that routed request now; right after an answer the
        orchestrator routed to another agent it only says that asking again labels it (reask.py: a switch
        alone labelled the questions of people trying the command)."""
        if request_id is not None:
            labelled = await asyncio.to_thread(correct_routing, self.runtime, request_id, agent, source)
            return Switch.LABELLED if labelled else Switch.NONE
        last = self._last_answer(theirs)
        if last is None or last[0].agent == agent or last[1] is None:
            return Switch.NONE
        routed = await asyncio.to_thread(was_routed, self.runtime, last[0].request_id or "")
        return Switch.ASK_AGAIN if routed else Switch.NONE

    async def _reasked(self, text: str, agent: str, source: LabelSource,
                       theirs: Callable[[str], bool] | None) -> str | None:
        """``text`` asks ``agent`` the question the orchestrator just routed elsewhere: that request is labelled
        ``agent`` (a correction, issue #10); what to tell the person, or None."""
        last = self._last_answer(theirs)
        if last is None or last[1] is None or last[0].agent == agent or not reasks(text, last[1].content):
            return None
        if not await asyncio.to_thread(correct_routing, self.runtime, last[0].request_id or "", agent, source):
            return None
        return (f"Noted: your question belonged to {agent}, not {last[0].agent} — routing will learn from that "
                "(`modelyard routing labels` lists it, `modelyard routing forget ID` takes it back).")

    async def turn(self, text: str, *, on_text: OnText | None = None, on_start: OnStart | None = None,
                   source: LabelSource = LabelSource.CHAT, theirs: Callable[[str], bool] | None = None) -> Reply:
        """Answer ``text`` in this conversation; an answered exchange is stored, anything else is not.
        ``text`` asking a chosen agent the question just routed elsewhere is a routing label (``source``;
        ``theirs``: whether an answer was to this person).

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
        if agent is not None and (noted := await self._reasked(text, agent, source, theirs)):
            notices.append(noted)
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
