"""The one interface every provider implements.

A provider knows one backend and nothing about chains, slots or logs: it turns a
:class:`ChatRequest` into a stream of :class:`Chunk` and every failure into a
:class:`ProviderError`. First-token and idle timeouts are enforced by the router around
this stream, the same way for every provider; the provider only enforces connect time.

It also owns every other fact about its backend that ``probe``, ``plan``, ``warmup`` and
``check`` need (context, memory, loading, the model's profile), so ``ops/`` never asks which
backend it is talking to. The defaults here say "unknown" honestly; a backend that can tell
overrides them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.paths import dotenv_unread, key_only_in_dotenv, key_only_in_service_env
from modelyard.providers.absence import Absence
from modelyard.providers.context_refusal import LearnedContext
from modelyard.providers.discovery import ServedModel
from modelyard.providers.embed_batches import BatchLimit, Lanes, embedded
from modelyard.providers.embeddings import cannot_embed
from modelyard.providers.ollama_parallel import ServerParallel
from modelyard.providers.profile import ContextWindow, MemoryFacts, ModelProfile
from modelyard.providers.refusals import KindRefusals
from modelyard.providers.shapes import checked
from modelyard.types import ChatRequest, ChatResponse, Chunk

#: one of the model's ``max_concurrent`` slots for a load sent behind a request (:meth:`Provider.cold_start`), taken as
#: a request takes one (in this process, or on Redis when shared): entered, it yields True once it holds the slot,
#: False when none came free within its wait (the load is then not sent); the slot is given back on leaving
PreloadSlot = Callable[[], contextlib.AbstractAsyncContextManager[bool]]


@contextlib.asynccontextmanager
async def no_slot() -> AsyncIterator[bool]:
    """The :data:`PreloadSlot` of a caller that counts no slots (a provider used on its own): the load goes at once."""
    yield True


async def _refused(kind: str) -> AsyncGenerator[Chunk, None]:
    """A prompt in the client's own template, asked of a chat-only backend: refused for this attempt (the chain moves
    on, nothing cools down) rather than shown to the model as a user's message, special tokens and all."""
    raise ProviderError(Reason.BAD_REQUEST, f"a raw prompt (in the client's own template) cannot be sent verbatim to "
                        f"a {kind} model: its API takes only chat messages")
    yield  # pragma: no cover - an async generator


async def _refused_again(said: ProviderError, left: float) -> AsyncGenerator[Chunk, None]:
    """A kind of request the model refused before (:meth:`Provider.learn_refusal`): refused again, not asked."""
    raise ProviderError(said.reason, f"{said.message} (refused before: not asked again for {left:.0f}s)",
                        status=said.status, kind_refused=True)
    yield  # pragma: no cover - an async generator


def parse_duration(text: str | None) -> float | None:
    """Ollama-style durations: "30m", "1h", "90s", "45" (seconds); None/negative = none."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(text))
    if not match:
        return None
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


@dataclasses.dataclass(slots=True, frozen=True)
class _ConfigReads:
    """What a provider reads of its (frozen) config on every request, as plain attributes: a pydantic attribute read
    costs ~380 instructions more than this (issue #15), and ``response_limit`` is a property over another field."""

    config: ModelConfig  # what they were read from
    response_limit: int
    api_key_env: str | None


class Provider(ABC):
    #: a billed cloud service whatever the config's price says (read when registered as a plugin)
    hosted: ClassVar[bool] = False
    #: :meth:`warmup` really loads the model (into a local server or this process)
    preloads: ClassVar[bool] = False
    #: a stream may be abandoned before its end without harm (an in-process worker may not allow it)
    stops_early: ClassVar[bool] = True
    #: reads the model settings of :data:`~modelyard.config.schema.IN_PROCESS_SETTINGS` (path, threads…)
    runs_in_process: ClassVar[bool] = False
    #: sends a :class:`~modelyard.types.TextPrompt` verbatim (no chat template around it); one that cannot answers the
    #: chat conversion, and refuses a prompt the client templated itself (:meth:`chunks`)
    sends_prompts: ClassVar[bool] = False
    #: cuts an embeddings input past the model's context to it unless asked not to (Ollama's ``truncate``): a long text
    #: is sent, not refused here (router/embedding.py input_too_long)
    cuts_long_inputs: ClassVar[bool] = False
    #: the most one embeddings call to this backend's servers may carry, as its API documents it (the config's
    #: ``max_embed_batch`` sets the count of texts per model): a larger request goes in several (embed_batches.py)
    embed_batch: ClassVar[BatchLimit] = BatchLimit()
    #: what to write in ``models.X.context`` when its server does not say (``init --detect``'s note): where the
    #: context a model runs with is set on this kind of server
    context_hint: ClassVar[str] = ("the context its server runs it with (python -m llama_cpp.server's --n_ctx, "
                                   "2048 unless set; llama-server's --ctx-size; vLLM's --max-model-len)")

    # -- what a server serves (``init --detect``) ----------------------------------------

    @classmethod
    def endpoints_to_try(cls) -> tuple[str, ...]:
        """Where this backend's servers listen when nobody said (none: it cannot be found by asking)."""
        return ()

    @classmethod
    async def served_models(cls, endpoint: str) -> list[ServedModel]:
        """The models the server at ``endpoint`` serves; ProviderError when it does not answer
        as this backend's servers do."""
        return []

    def __init__(self, name: str, config: ModelConfig):
        self.name = name
        self.config = config
        self.model_id = config.model or name
        #: billed per token (a hosted backend, or a paid API's endpoint): read once, the router marks its attempts
        self.billed = config.billed
        self._found: dict[str, bool] = {}
        #: an output limit the backend stated when it refused a larger max_tokens (providers/output_cap.py)
        self._refused_above: int | None = None
        #: the kinds of request the model refused as not its kind: later requests of that kind are refused here,
        #: not asked of the server again for a while (learn_refusal, providers/refusals.py)
        self.refused_kinds = KindRefusals()
        self.profile = self._profile()

    _reads: _ConfigReads | None = None

    def _config_reads(self) -> _ConfigReads:
        """The per-request config reads, read again if :attr:`config` is another object."""
        reads, config = self._reads, self.config
        if reads is None or reads.config is not config:
            reads = self._reads = _ConfigReads(config, config.response_limit, config.api_key_env)
        return reads

    @property
    def response_limit(self) -> int:
        """The config's ``max_response_mb`` in bytes."""
        return self._config_reads().response_limit

    # -- the model's profile -----------------------------------------------------------

    def base_profile(self) -> ModelProfile:
        """What this backend knows of the model before the config or a probe say more."""
        return ModelProfile()

    def _profile(self) -> ModelProfile:
        """The backend's profile, then probe findings, then the config's claims; an output limit the
        backend stated in a refusal beats the config's and the table's (it is what the server enforces)."""
        profile = self.base_profile().learned(self._found).declared(self.config.capabilities)
        cap = self._refused_above or self.config.max_output
        return dataclasses.replace(profile, max_output=cap) if cap else profile

    def learn(self, found: Mapping[str, Any]) -> None:
        """Fold in what ``probe`` measured (capability → bool); the config's claims still stand."""
        self._found.update({k: bool(v) for k, v in found.items() if v is not None})
        self.profile = self._profile()

    _learned_context: LearnedContext | None = None

    @property
    def learned_context(self) -> LearnedContext | None:
        """The context the model's server said it has when it refused a prompt past it (providers/context_refusal.py):
        a prompt that cannot fit is not sent again (router/fit.py); None while nothing was refused so, or once the
        refusal is older than ``LEARNED_FOR`` (the server may have been restarted with another ``--ctx-size``)."""
        known = self._learned_context
        if known is not None and known.stale(time.monotonic()):
            self._learned_context = known = None
        return known

    def refused_context(self, n_ctx: int, prompt_tokens: int) -> None:
        """The server refused a prompt of ``prompt_tokens`` (estimated) and said its context is ``n_ctx``."""
        known, now = self.learned_context, time.monotonic()
        self._learned_context = (LearnedContext(n_ctx, prompt_tokens, now) if known is None
                                 else known.after(n_ctx, prompt_tokens, now))

    #: its server said it does not have the model (Ollama: not pulled), and until when that is believed (absence.py)
    absence: Absence | None = None

    def absent_reason(self) -> str | None:
        """Why the model is skipped without asking its server — it said, less than ``absence.ABSENT_FOR`` ago, that it
        does not have it —, or None: ask it (the model may have been pulled meanwhile)."""
        known = self.absence
        if known is None:
            return None
        why = known.standing()
        if why is None:
            self.absence = None
        return why

    def learn_absent(self, said: str) -> None:
        """The server said it does not have the model, in these words: skip it for ``absence.ABSENT_FOR``."""
        self.absence = Absence.now(said)

    async def template_family(self) -> str | None:
        """The chat template family the model's server formats prompts in (router/raw_template.py): the config's
        ``template``; a backend whose server says its model's template reads it where the config is silent."""
        return self.config.template

    def server_gone(self) -> None:
        """Its server refused a connection: what comes back may be another (another ``--ctx-size``, another model
        pulled under the name), so what was learned of this one no longer holds."""
        self._learned_context = None
        self.absence = None
        if self.refused_kinds:
            self.refused_kinds.server_gone()

    def left_out(self, request: ChatRequest) -> str:
        """What of the client's request this model's server is asked without, having refused it (a sampling field
        the OpenAI-compatible provider learned it refuses), for the routing log; "" when all of it went."""
        return ""

    def refused_above(self, limit: int) -> None:
        """The backend refused a larger ``max_tokens`` and said this is its limit: clamp to it from now on."""
        self._refused_above = limit
        self.profile = self._profile()

    @contextlib.contextmanager
    def assuming(self, **facts: Any) -> Iterator[None]:
        """Act as if the profile said ``facts`` for a moment: how ``probe`` tries what it measures."""
        saved = self.profile
        self.profile = dataclasses.replace(saved, **facts)
        try:
            yield
        finally:
            self.profile = saved

    # -- serving -------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """Why this model cannot be used at all right now (e.g. missing credentials), or None."""
        key_env = self._config_reads().api_key_env
        if key_env and not self.config.api_key():
            where = key_only_in_service_env(key_env)
            if os.environ.get(key_env) is not None:  # `export KEY=` or an env file's `KEY=`
                return f"environment variable {key_env} is empty"
            if where:
                return (f"environment variable {key_env} is not set (it is in {where}, which the "
                        f"service reads; this process does not: `set -a; . {where}; set +a` in the shell)")
            if dotenv := key_only_in_dotenv(key_env):
                return f"environment variable {key_env} is not set ({dotenv_unread(dotenv)}, or export it)"
            # `ANTHROPIC_APIKEY` for the ANTHROPIC_API_KEY that is set: name the set one (names only, never values)
            near = difflib.get_close_matches(key_env.upper(),
                                             [n for n, v in os.environ.items() if v.strip()], n=1, cutoff=0.85)
            if near:
                return (f"environment variable {key_env} is not set ({near[0]} is: did you mean it? then "
                        f"models.{self.name}.api_key_env: {near[0]})")
            # said with what to do: the bare 'is not set' left a newcomer guessing where a key goes (a .env file?)
            return (f"environment variable {key_env} is not set: `export {key_env}=<the key>` in the shell that runs "
                    f"modelyard (models.{self.name}.api_key_env names it; modelyard reads no .env file)")
        return None

    def refused_key(self, error: ProviderError) -> ProviderError:
        """A 401/403 said what the server said ("invalid x-api-key") and nothing of which key modelyard sent or what
        to do: the variable it came from is named (never its value), or — with none configured — the key to add."""
        if error.reason is not Reason.AUTH_ERROR or error.status not in (401, 403):
            return error
        key_env = self._config_reads().api_key_env
        if key_env:
            hint = (f"the key in {key_env} was refused: check its value — revoked, cut short when pasted, or "
                    "another service's key — then ask again")
        else:
            hint = (f"the server wants a key and none is configured: set models.{self.name}.api_key_env to the name "
                    "of the environment variable that holds it")
        return error.reworded(f"{error.message} — {hint}")

    @abstractmethod
    def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """Yield the answer as chunks; raise ProviderError on any failure."""

    def chunks(self, request: ChatRequest, timeouts: Timeouts, *, buffered: bool = False,
               lanes: Lanes | None = None) -> AsyncGenerator[Chunk, None]:
        """:meth:`stream`, checked (providers/shapes.py): what every caller iterates, so no shape of
        provider data reaches the router, the log or a front-end unchecked. ``buffered``: the caller
        keeps the whole answer before anyone sees it (:meth:`joined` then). ``lanes``: more of the model's slots
        for the calls of an embeddings request past one call's bound (embed_batches.py), lent by the router."""
        if request.prompt is not None and request.prompt.templated and not self.sends_prompts:
            return _refused(self.config.provider)
        if self.refused_kinds and (said := self.refused_kinds.standing(request.embed is not None)) is not None:
            return _refused_again(*said)
        if request.embed is not None:
            return embedded(lambda part: self.embeddings(part, timeouts), request, self, lanes)
        stream = self.joined(request, timeouts) if buffered else self.stream(request, timeouts)
        return checked(stream, self.response_limit)

    #: the most texts the model's server said one embeddings call may carry, refusing more (embed_batches.py)
    _batch_said: int | None = None

    def batch_limit(self) -> BatchLimit:
        """The most one embeddings call to the model's server carries: the config's count of texts, else the
        backend's — fewer where the server said so refusing more; the backend's bound on tokens either way."""
        most = self.config.max_embed_batch or self.embed_batch.texts
        said = self._batch_said
        if said is not None:
            most = said if most is None else min(most, said)
        return BatchLimit(most, self.embed_batch.tokens, said is not None and most == said)

    def refused_batch(self, most: int) -> None:
        """The server refused a larger embeddings call and said it takes ``most`` texts: so from now on."""
        self._batch_said = most

    def learn_refusal(self, embeddings: bool, error: ProviderError, seconds: float) -> None:
        """The server refused a kind of request as not the model's (an embedding model asked to chat: Ollama's
        '"nomic-embed-text" does not support chat'; a chat model asked for vectors): that kind is refused here from
        now on for ``seconds``, without a round trip, and the kind the model serves is untouched (nothing cools)."""
        self.refused_kinds.learn(embeddings, error, seconds)

    def embeds(self) -> bool:
        """Whether the model may embed: its backend has an embeddings call and its last word on one was no refusal."""
        return type(self).embeddings is not Provider.embeddings and not self.refused_kinds.said(True)

    def embeddings(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """The vectors of ``request.embed``'s texts (providers/embeddings.py: one ``embedding`` chunk, ``usage``,
        ``done``). By default the backend has no embeddings: the attempt is refused and the chain moves on."""
        return cannot_embed(f"model '{self.name}' cannot embed: the {self.config.provider} API has no embeddings "
                            "endpoint")

    def joined(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        """:meth:`stream` for a caller that buffers the whole answer: a provider may join the text deltas
        that arrive together (one network read) into one chunk, as the OpenAI provider does (issue #15)."""
        return self.stream(request, timeouts)

    async def complete(self, request: ChatRequest, timeouts: Timeouts) -> ChatResponse:
        response = ChatResponse()
        async for chunk in self.chunks(request, timeouts):
            response.add(chunk)
        return response

    # -- facts for ops (probe, plan, warmup, check) ---------------------------------------

    def address(self) -> tuple[str, int] | None:
        """The host and port the model is served from, for a quick reachability check (None: in-process)."""
        return None

    def not_running(self, address: tuple[str, int]) -> str:
        """What to say when ``address`` refuses connections and is where this backend's server runs by default on
        this machine (how to start it), else ""."""
        return ""

    async def context_window(self) -> ContextWindow:
        """The context the model was trained for and the one it is served with."""
        return ContextWindow(None, self.config.context, f"the {self.config.provider} API does not report it")

    async def memory(self, *, ask_server: bool = True) -> MemoryFacts:
        """Weights and KV-cache shape of a local model (``ask_server=False``: no network calls)."""
        return MemoryFacts(context=self.config.context, parallel=self.config.max_concurrent)

    async def server_parallel(self) -> ServerParallel | None:
        """How many of this model's requests its server runs at once, as far as can be told (None: not a question
        for this backend — a hosted API, an in-process model)."""
        return None

    async def loaded(self) -> bool | None:
        """Whether the model is in memory right now (None: the backend does not say)."""
        return None

    async def cold_start(self, slot: PreloadSlot | None = None) -> str:
        """Asked after a first-token timeout: why it was the model's load rather than its health (then it starts the
        load the timed-out request gave up on, inside ``slot`` when given), or "" — not a cold start, or the backend
        cannot tell."""
        return ""

    async def not_served(self) -> str | None:
        """Why the model's server, asked, says it does not have the model ("": it has it; None: cannot tell)."""
        return None

    async def silence(self, timeout: float) -> str:
        """Why the model's server, which took a connection, gave no answer to a plain request within ``timeout``
        seconds ("" where it answered, or this backend has nothing cheap to ask)."""
        return ""

    def keep_alive_seconds(self) -> float | None:
        """How long the backend keeps the model loaded after a request (None: not known here)."""
        return None

    async def warmup(self, keep_alive: str | None = None) -> None:  # noqa: B027 - optional hook
        """Load the model so the first real request does not pay the cold start."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory."""
