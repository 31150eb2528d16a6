"""The router: walk an agent's chain until some model answers, within bounded time.

For each model in [primary, *fallbacks]: skip it if unavailable (credentials), if the prompt
does not fit its declared context (router/fit.py: a larger model further on may take it), or if
cooling down; wait for one of its slots at most ``timeouts.queue``; call it with first-token and
idle bounds; retry transient failures a bounded number of times; otherwise record why and
move on. Every attempt lands in the request's record, which goes to the routing log once.

Streaming rule: once a visible chunk (text or a tool call) of a model's answer has been
handed to the caller, that model is *committed*. If it then fails, the router raises
:class:`StreamInterrupted` with the partial text rather than silently continuing with a
different model. :meth:`Router.complete` buffers whole answers, so it can fall back at any
point, and can also reject an answer that arrived but is unusable (``accept``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from modelyard.config.schema import Config, ModelConfig, Price, Timeouts
from modelyard.errors import ProviderError, Reason, provider_failure, redact, says_health
from modelyard.outcomes import AttemptOutcome, RequestKind, RequestOutcome
from modelyard.providers import Provider
from modelyard.providers.output_cap import MOST_TOKENS, clamp_limit, clamped, refused_limit
from modelyard.providers.speed import measured
from modelyard.router.clock import running_loop
from modelyard.router.embedding import answer_note, input_too_long, other_space, vectors_bound
from modelyard.router.fit import too_long_as_learned, too_long_for
from modelyard.router.kept import Kept, kept_for
from modelyard.router.pool import ModelPool
from modelyard.router.raw_template import other_template
from modelyard.router.records import (
    CALLER_GONE,
    Attempt,
    ChainExhausted,
    RequestRecord,
    StreamInterrupted,
    new_request_id,
)
from modelyard.router.slots import QueueTimeout
from modelyard.router.spare_slots import SpareSlots
from modelyard.router.state import ModelState, ModelStatus, Ticket
from modelyard.router.stop_watch import StopWatch, closed_at, sent, usage_after, watched
from modelyard.router.watchdog import Watchdog
from modelyard.tokens import request_tokens
from modelyard.types import (
    CONTEXT_FULL,
    ChatRequest,
    ChatResponse,
    Chunk,
    Message,
    finish_reason_of,
    invalid_arguments,
)

Sink = Callable[[RequestRecord], None]
#: returns None when an answer is usable, else why not (the router then falls back)
Accept = Callable[[ChatResponse], str | None]

_VISIBLE = ("text", "tool_call")
#: the detail of an answer whose budget ran out while the model was still thinking (nothing of the answer came)
CUT_THINKING = "cut while still thinking: no answer came after the reasoning"
#: the detail of the attempt of a request whose caller went away while it waited in a model's queue
GONE_QUEUED = "gone while waiting for a free slot"


@dataclass(slots=True)
class Routed:
    record: RequestRecord
    response: ChatResponse


class RoutedStream:
    """Async iterator of chunks; ``record`` and ``response`` are complete once it ends."""

    def __init__(self, router: Router, agent: str, request: ChatRequest, record: RequestRecord):
        self.record = record
        self.response = ChatResponse()
        self._gen = router._run(agent, request, record, self.response, stream=True, accept=None)

    def __aiter__(self) -> RoutedStream:
        return self

    async def __anext__(self) -> Chunk:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()


class Router:
    """Walks agents' chains over a :class:`ModelPool`. Several routers may share one pool (the
    gateway's direct ``model:NAME`` router does): limits and cooldowns are the pool's, not the router's."""

    def __init__(self, config: Config, *, pool: ModelPool | None = None,
                 providers: dict[str, Provider] | None = None, sink: Sink | None = None):
        self.config = config
        self._owns_pool = pool is None
        self.pool = pool if pool is not None else ModelPool(config, providers=providers)
        self.providers = self.pool.providers
        self.sink = sink
        self._timeouts: dict[tuple[str, str], Timeouts] = {}
        self._agents: dict[str, _AgentPlan] = {}
        self._bounds: dict[tuple[str, str], _Bounds] = {}
        self._facts: dict[str, _ModelFacts] = {}
        # read once: a pydantic model's attribute goes through its class's __getattr__ hook (~400 instructions
        # more than a plain one, unspecialised; issue #15). The config is frozen, and the router keeps its own
        self._store_text = config.log.store_text
        self._retries = config.defaults.retries
        #: how long a model's refusal of a kind of request is believed (providers/refusals.py)
        self._refusal_seconds = config.defaults.cooldown.max_seconds

    # -- public API ------------------------------------------------------------------------

    def stream(self, agent: str, request: ChatRequest, *, request_id: str | None = None,
               parent_id: str | None = None) -> RoutedStream:
        self._check_agent(agent)
        record = _record(request_id, agent, parent_id)
        return RoutedStream(self, agent, request, record)

    async def complete(self, agent: str, request: ChatRequest, *, accept: Accept | None = None,
                       request_id: str | None = None, parent_id: str | None = None) -> Routed:
        """Whole answer, buffered: may fall back at any point, even after tokens arrived."""
        self._check_agent(agent)
        record = _record(request_id, agent, parent_id)
        if request.embed is not None:
            record.kind = RequestKind.EMBEDDINGS
        response = ChatResponse()
        async for _ in self._run(agent, request, record, response, stream=False, accept=accept):
            pass
        return Routed(record, response)

    def model_states(self) -> list[ModelStatus]:
        return self.pool.statuses()

    async def aclose(self) -> None:
        """Close the pool if this router made it (a shared pool is closed by its owner, the runtime)."""
        if self._owns_pool:
            await self.pool.aclose()

    # -- internals -------------------------------------------------------------------------

    def _check_agent(self, agent: str) -> None:
        if agent not in self._agents and agent not in self.config.agents:  # planned: known (see _plan)
            known = ", ".join(sorted(self.config.agents))
            raise KeyError(f"unknown agent '{agent}' (agents: {known})")

    def timeouts(self, agent: str, model: str) -> Timeouts:
        key = (agent, model)
        found = self._timeouts.get(key)
        if found is None:
            found = self._timeouts[key] = self.config.timeouts_for(agent, model)
        return found

    def _bounds_of(self, agent: str, model: str) -> _Bounds:
        found = self._bounds.get((agent, model))
        if found is None:
            tm = self.timeouts(agent, model)
            found = self._bounds[(agent, model)] = _Bounds(tm, tm.queue, tm.first_token, tm.idle, tm.total)
        return found

    def _facts_of(self, provider: Provider) -> _ModelFacts:
        """What the router reads of a model's config per request; read again if the provider's config is another."""
        found = self._facts.get(provider.name)
        config = provider.config
        if found is None or found.config is not config:
            found = self._facts[provider.name] = _ModelFacts(config, config.provider, config.context,
                                                             config.max_queue, config.price, config.price.input,
                                                             config.price.output)
        return found

    def _plan(self, agent: str) -> _AgentPlan:
        """The agent's chain and settings, read from its (frozen) config once."""
        plan = self._agents.get(agent)
        if plan is None:
            cfg = self.config.agents[agent]
            plan = self._agents[agent] = _AgentPlan(tuple(cfg.chain), cfg.system_prompt(agent), cfg.thinking,
                                                    cfg.thinking_budget, cfg.max_tokens)
        return plan

    def _prepare(self, plan: _AgentPlan, request: ChatRequest) -> ChatRequest:
        """Apply the agent's settings: system prompt, thinking, output budget (none to an embeddings request)."""
        if request.embed is not None:
            return request
        messages = request.messages
        system = plan.system
        if system and not any(m.role == "system" for m in messages):
            messages = [Message("system", system), *messages]
        thinking = plan.thinking if request.thinking is None else request.thinking
        budget = request.thinking_budget or plan.thinking_budget
        max_tokens = request.max_tokens or plan.max_tokens
        if (messages is request.messages and thinking == request.thinking and budget == request.thinking_budget
                and max_tokens == request.max_tokens):
            return request  # nothing to apply: no copy (dataclasses.replace costs more than a small request)
        return dataclasses.replace(request, messages=messages, thinking=thinking, thinking_budget=budget,
                                   max_tokens=max_tokens)

    async def _run(self, agent: str, request: ChatRequest, record: RequestRecord, response: ChatResponse,
                   *, stream: bool, accept: Accept | None) -> AsyncGenerator[Chunk, None]:
        """Walk the chain; yields chunks only in streaming mode. Logs the record exactly once."""
        plan = self._plan(agent)
        chain = plan.chain
        loop = running_loop()
        now = loop.time()
        walk = _Walk(agent, record, response, self._prepare(plan, request), stream, accept, now,
                     now + self._bounds_of(agent, chain[0]).total, loop)
        if self._store_text:
            record.prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        states, spend = self.pool.states, self.pool.spend
        embed = request.embed
        raw = request.prompt is not None and request.prompt.templated
        try:
            for index, model in enumerate(chain):
                provider = self.providers[model]
                facts = self._facts_of(provider)
                kind = facts.kind
                if embed is not None and index and (other := other_space(chain, index, self.providers)):
                    # another model's vectors would be mixed into the client's index (router/embedding.py)
                    record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, Reason.UNAVAILABLE, other))
                    continue
                if raw and index and (other := await other_template(chain, index, self.providers)):
                    # the client's own template and special tokens, written for another model (raw_template.py)
                    record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, Reason.BAD_REQUEST, other))
                    continue
                why = provider.unavailable_reason()
                if why:
                    reason = Reason.MISSING_CREDENTIALS if provider.config.api_key_env else Reason.UNAVAILABLE
                    record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, reason, why))
                    continue
                if provider.absence is not None and (why := provider.absent_reason()):
                    # its server said it does not have the model (not pulled) a moment ago: not asked, not cooled
                    record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, Reason.MODEL_MISSING, why))
                    continue
                if spend is not None and (why := spend.over(model)):
                    record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, Reason.SPEND_CAP, why))
                    continue
                if (facts.context or provider.learned_context is not None) and (why := _too_long(walk, provider)):
                    # this model's limit, not the request's fault: a larger context further on may take it
                    record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, Reason.BAD_REQUEST, why))
                    continue
                state = states[model]
                ticket = await state.admit()
                if ticket is None:
                    record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, Reason.COOLING_DOWN,
                                                   state.cooling_detail()))
                    continue
                try:
                    if facts.max_queue is not None and (why := state.queue_full(facts.max_queue)):
                        record.attempts.append(Attempt(model, kind, AttemptOutcome.FALLBACK, Reason.QUEUE_FULL, why,
                                                       queue_wait_ms=0.0))
                        continue
                    bounds = self._bounds_of(agent, model)
                    if embed is not None:  # the vectors' bound grows with the batch (router/embedding.py)
                        bounds = dataclasses.replace(bounds, first_token=vectors_bound(bounds.first_token, embed))
                    queued_at = loop.time()
                    remaining = walk.deadline - queued_at
                    if remaining <= 0:
                        record.attempts.append(Attempt(model, kind, AttemptOutcome.SKIPPED, Reason.DEADLINE,
                                                       "the request's total time bound ran out"))
                        break
                    bound = min(bounds.queue, remaining)
                    try:
                        waited = await state.acquire(bound)
                    except QueueTimeout as exc:
                        spent = bound if exc.waited is None else exc.waited
                        record.attempts.append(Attempt(model, kind, AttemptOutcome.FALLBACK, exc.reason,
                                                       str(exc), queue_wait_ms=spent * 1000))
                        continue
                    except asyncio.CancelledError:
                        # the caller went away (a client's stop button, its own timeout) while this waited for a
                        # slot: the row had no attempt, nothing said which model's queue held it nor for how long
                        record.attempts.append(Attempt(model, kind, AttemptOutcome.CANCELLED, CALLER_GONE.get(),
                                                       GONE_QUEUED, queue_wait_ms=(loop.time() - queued_at) * 1000))
                        raise
                    record.queue_wait_ms += waited * 1000
                    # an embeddings request past one call's bound: its calls go at once on the model's free slots
                    lanes = SpareSlots(state) if embed is not None and state.limit > 1 else None
                    # a later model that may be asked keeps its first-token bound of the request's time (router/kept.py;
                    # not for vectors: a later model's are of another space, skipped)
                    keep = kept_for(chain, index, states, self.providers, agent, self._bounds_of) if (
                        index + 1 < len(chain) and embed is None) else None
                    chunks = self._use_model(walk, provider, facts, state, bounds, waited, ticket, lanes, keep)
                    try:
                        async for chunk in chunks:
                            yield chunk
                    finally:
                        try:
                            await chunks.aclose()  # contextlib.aclosing, without its two coroutines per use
                        finally:
                            await state.release()
                    if walk.answer is not None:
                        if embed is not None and (note := answer_note(chain, index, self.providers,
                                                                      walk.answer.vector_calls,
                                                                      lanes.most if lanes is not None else 1)):
                            record.attempts[-1].detail = note
                        self._finish(walk, model, index, loop.time())
                        return
                finally:
                    await state.abandoned(ticket)  # a no-op unless it ended with no verdict (queued out, cancelled)
            record.outcome = RequestOutcome.FAILED
            raise ChainExhausted(agent, record)  # no local name: it would tie the error to this frame in a cycle
        except (asyncio.CancelledError, GeneratorExit):
            record.outcome = RequestOutcome.CANCELLED
            last = record.attempts[-1] if record.attempts else None
            if last is not None and last.outcome is AttemptOutcome.OK and last.duration_ms is None:
                last.outcome, last.reason = AttemptOutcome.CANCELLED, CALLER_GONE.get()
            raise
        finally:
            if not record.total_ms:
                record.total_ms = (loop.time() - walk.t0) * 1000
            # every attempt's tokens were billed, whether or not the request got an answer
            tokens_in = tokens_out = 0
            cost = 0.0
            for a in record.attempts:
                tokens_in += a.tokens_in
                tokens_out += a.tokens_out
                cost += a.cost_usd
                if spend is not None:
                    spend.add(a.model, a.cost_usd)
            record.tokens_in, record.tokens_out, record.cost_usd = tokens_in, tokens_out, cost
            if self.sink is not None:
                self.sink(record)

    async def _use_model(self, walk: _Walk, provider: Provider, facts: _ModelFacts, state: ModelState,
                         bounds: _Bounds, waited: float, ticket: Ticket, lanes: SpareSlots | None = None,
                         keep: Kept | None = None                         ) -> AsyncGenerator[Chunk, None]:
        """Call one model (holding its slot), retrying transient failures; sets ``walk.answer`` on success.

        In streaming mode visible chunks pass straight through once the model is committed.
        """
        loop = walk.loop
        retries = self._retries
        record = walk.record
        request = walk.request
        note = ""  # a max_tokens clamped to the model's output limit (or context): said in the route, never silent
        asked = request.max_tokens
        # the context its server said it has, refusing a prompt (context_refusal.py), bounds an answer as well
        if asked is not None and ((learned := provider.learned_context) is not None
                                  or asked > (provider.profile.max_output or facts.context or MOST_TOKENS)):
            cap, why = clamp_limit(provider.profile.max_output, facts.context,
                                   learned.n_ctx if learned is not None else None)
            if asked > cap:
                note = clamped(asked, cap, why)
                request = dataclasses.replace(request, max_tokens=cap)
        # the client's stop sequences: the stream is closed at the first the text reaches (stop_watch.py)
        stops = watched(request) if request.stop or request.cut_at else ()
        refitted = False  # asked once more after a refusal that stated the limit (output_cap.py)
        kind = facts.kind
        n = 0
        while True:
            attempt = Attempt(provider.name, kind, AttemptOutcome.OK, None, note)  # positional: see _record
            attempt.queue_wait_ms = waited * 1000 if n == 0 and not refitted else 0.0
            record.attempts.append(attempt)
            if provider.billed:  # its $0 without a price is unknown, not free (ledger/cost.py)
                attempt.billed = True
            buffer = ChatResponse()
            buffer.model = provider.name
            held: list[Chunk] = []
            started = loop.time()
            pieces = 0  # text/thinking chunks: the output count when the provider never got to report usage
            watch = StopWatch(stops) if stops else None
            stopped = False  # the text reached a stop sequence: its stream is closed, the answer is whole
            try:
                # The provider's stream under the first-token, idle and total bounds: one watchdog timer moved
                # on with each chunk, disarmed while the caller has the chunk (its time is not the model's).
                # Inline, not a generator of its own: each chunk and each wait would pass through one more.
                # checked: every shape of provider data is handled; a buffered answer may come a read at a time
                gen = provider.chunks(request, bounds.timeouts, buffered=not walk.stream, lanes=lanes)
                idle, first_token, deadline = bounds.idle, bounds.first_token, walk.deadline
                # until the client has been sent something, the attempt ends where a later model's share begins
                end = deadline if keep is None or walk.committed else keep.cut(started, deadline)
                watchdog = Watchdog(loop, idle)  # its first timer serves the idle bounds too
                first = True
                try:
                    while True:
                        limit = min(started + first_token if first else loop.time() + idle, end)
                        watchdog.arm(limit)
                        try:
                            chunk = await gen.__anext__()
                        except StopAsyncIteration:
                            break
                        except asyncio.CancelledError:
                            if not watchdog.claim():
                                raise
                            if limit >= deadline:
                                raise ProviderError(Reason.DEADLINE,
                                                    "the request's total time bound ran out") from None
                            if limit >= end and keep is not None:
                                raise keep.cut_short(pieces, end - started, begun=not first) from None
                            if first:
                                raise ProviderError(Reason.FIRST_TOKEN_TIMEOUT,
                                                    f"no first token within {first_token:g}s") from None
                            raise ProviderError(Reason.IDLE_TIMEOUT, f"stream silent for {idle:g}s") from None
                        except ProviderError:
                            raise
                        except Exception as exc:
                            raise provider_failure(exc) from None
                        watchdog.disarm()
                        if first:
                            attempt.ttft_ms = (loop.time() - started) * 1000
                            first = False
                        buffer.add(chunk)
                        if chunk.kind == "text":
                            pieces += chunk.pieces
                            if watch is not None and watch.reached(chunk.text):
                                stopped = True
                        elif chunk.kind == "thinking":
                            pieces += chunk.pieces
                        if not walk.stream:
                            if stopped:
                                break
                            continue
                        if not walk.committed and chunk.kind in _VISIBLE:
                            walk.committed = True
                            end = deadline  # the client has the answer's start: it is not cut to make room
                            record.model = provider.name
                            record.ttft_ms = (loop.time() - walk.t0) * 1000
                            for h in held:
                                yield h
                            held.clear()
                        if walk.committed:
                            yield chunk
                        else:
                            held.append(chunk)
                        if stopped:  # the caller has the text up to the sequence: nothing after it is read
                            break
                    if stopped and sent(request, watch.matched if watch is not None else None):
                        await usage_after(gen, watchdog, loop, buffer)  # but the usage its server sends at once
                finally:
                    watchdog.close()
                    await gen.aclose()  # what contextlib.aclosing does, without its two coroutines per use
                if walk.accept is not None and (problem := walk.accept(buffer)):
                    raise ProviderError(Reason.UNUSABLE_REPLY, problem)
            except (asyncio.CancelledError, GeneratorExit):
                # the caller went away (Ctrl-C, SIGTERM, a client disconnect): by now the provider's stream
                # is closed (an in-process worker stopped and joined), so what it produced is final
                self._close_attempt(attempt, buffer, started, loop.time(), facts, pieces, walk.prompt_tokens)
                attempt.outcome, attempt.reason = AttemptOutcome.CANCELLED, CALLER_GONE.get()
                if attempt.tokens_out:
                    record.model = record.model or provider.name
                    if self._store_text:
                        record.response = buffer.text
                raise
            except ProviderError as exc:
                self._close_attempt(attempt, buffer, started, loop.time(), facts, pieces, walk.prompt_tokens)
                if (key := provider.config.api_key()) and key in exc.message:
                    # the server echoed the key back (a proxy's 401, an error event): one that does not look
                    # like a key (no sk- prefix) would otherwise reach the routing log and the client
                    exc = exc.reworded(redact(exc.message, (key,)))
                exc = provider.refused_key(exc)
                attempt.reason, attempt.detail = exc.reason, exc.message
                if exc.reason is Reason.CONNECT_ERROR:
                    provider.server_gone()  # what comes back may serve what this one refused, with another context
                if walk.committed:
                    attempt.outcome = AttemptOutcome.INTERRUPTED
                    await state.failed(ticket, exc.reason, exc.retry_after)
                    record.outcome = RequestOutcome.INTERRUPTED
                    record.error = str(exc)
                    raise StreamInterrupted(walk.agent, record, buffer.text) from None
                if (exc.reason is Reason.BAD_REQUEST and not refitted and request.max_tokens is not None
                        and (refusal := refused_limit(exc.message, request.max_tokens)) is not None
                        and refusal.limit < request.max_tokens):
                    # "max_tokens too large": the limit is in its words; ask once more within it, at once
                    refitted = True
                    if refusal.per_model:
                        provider.refused_above(refusal.limit)
                    note = clamped(walk.request.max_tokens or request.max_tokens, refusal.limit)
                    request = dataclasses.replace(request, max_tokens=refusal.limit)
                    attempt.outcome = AttemptOutcome.RETRY
                    continue
                if (exc.reason is Reason.BAD_REQUEST and request.embed is None
                        and (n_ctx := exc.served_context) is not None):
                    # the server said its context refusing this prompt: a prompt as long is not sent there again
                    provider.refused_context(n_ctx, walk.prompt_tokens())
                pause = exc.retry_after if exc.retry_after is not None else retries.backoff * 2**n
                if (exc.retryable and n < retries.attempts and pause <= retries.max_wait
                        and loop.time() + pause < walk.deadline):
                    attempt.outcome = AttemptOutcome.RETRY
                    n += 1
                    await asyncio.sleep(pause)
                    continue
                attempt.outcome = AttemptOutcome.FALLBACK
                if exc.kind_refused:  # not this model's kind of request: no verdict on its health (the kind it
                    provider.learn_refusal(request.embed is not None, exc, self._refusal_seconds)  # serves goes on)
                    return
                if exc.absent:  # not on its server (not pulled): skipped a while, then asked again; nothing cools
                    provider.learn_absent(exc.message)
                    return
                if exc.reason is Reason.FIRST_TOKEN_TIMEOUT and (cold := await provider.cold_start(
                        lambda: state.slot_for_load(bounds.queue))):  # the load takes a slot too
                    attempt.detail = f"{exc.message}: {cold}"  # the model's load, not its health
                    return
                if says_health(exc.reason, request.embed is not None):
                    await state.failed(ticket, exc.reason, exc.retry_after)
                return
            if watch is None or watch.matched is None:
                self._close_attempt(attempt, buffer, started, loop.time(), facts)
            else:  # closed before its server reported usage: counted as the pieces that arrived
                self._close_attempt(attempt, buffer, started, loop.time(), facts, pieces, walk.prompt_tokens)
                closing = closed_at(buffer, watch.matched, attempt.tokens_in, attempt.tokens_out)
                attempt.detail = f"{attempt.detail}; {closing}" if attempt.detail else closing
            if buffer.tool_calls:  # answered, but a call's arguments need the model's repair: the row says so
                attempt.detail = invalid_arguments(buffer.tool_calls)
            if left := provider.left_out(request):  # a knob of the client's its server refused: said, never silent
                attempt.detail = f"{attempt.detail}; {left}" if attempt.detail else left
            if buffer.truncated and buffer.thinking and not buffer.tool_calls and not buffer.text.strip():
                # the budget ran out inside the reasoning: an empty answer said as what it is, not as a short one
                attempt.detail = f"{attempt.detail}; {CUT_THINKING}" if attempt.detail else CUT_THINKING
            await state.succeeded(ticket)
            if provider.refused_kinds:  # it serves the kind it once refused (another model pulled under its name)
                provider.refused_kinds.served(request.embed is not None)
            if not walk.stream:
                record.ttft_ms = record.queue_wait_ms + (attempt.ttft_ms or 0.0)
            walk.answer, walk.budget = buffer, request.max_tokens
            return

    def _close_attempt(self, attempt: Attempt, buffer: ChatResponse, started: float, ended: float,
                       facts: _ModelFacts, pieces: int = 0, prompt: Callable[[], int] | None = None) -> None:
        """Time, tokens and cost of one attempt. An answer cut short (cancelled, broken off) usually
        never got its usage report: its output is then counted as the pieces that arrived (one token
        each for llama.cpp, Ollama and OpenAI-style streams), never as 0, and its prompt — read whole, since
        the model answered — as ``prompt`` estimates it (it was logged as 0: a billed model's spend, its spend
        cap and ``report`` left out a prompt the provider charged for)."""
        attempt.duration_ms = (ended - started) * 1000
        usage = buffer.usage
        out = usage.output_tokens if usage.output_tokens >= pieces else pieces  # not max(): a C call per answer
        tokens_in = usage.input_tokens or (prompt() if pieces and prompt is not None else 0)
        attempt.tokens_in = tokens_in
        attempt.tokens_out = out
        if usage.cache_read_tokens or usage.cache_write_tokens:  # priced apart (Price.cost), logged for replay
            attempt.cache_read_tokens, attempt.cache_write_tokens = usage.cache_read_tokens, usage.cache_write_tokens
            attempt.cache_write_1h_tokens = usage.cache_write_1h_tokens
            attempt.cost_usd = facts.price.cost(tokens_in, out, usage.cache_read_tokens, usage.cache_write_tokens,
                                                read_share=facts.config.cache_read_share,
                                                cache_write_1h=usage.cache_write_1h_tokens)
        else:
            attempt.cost_usd = (tokens_in * facts.price_input + out * facts.price_output) / 1e6
        if usage.stated_cost_usd is not None:  # what the provider billed (OpenRouter's usage.cost), not an estimate
            attempt.cost_usd = usage.stated_cost_usd
        # the server's own decoding speed where it gave one, else the span from the first token, when it can say
        # (speed.py: a 5-token answer in one burst read "2978.4 tok/s")
        attempt.tokens_per_s = usage.tokens_per_s or measured(
            out, (attempt.duration_ms - (attempt.ttft_ms or 0.0)) / 1000)

    def _finish(self, walk: _Walk, model: str, index: int, now: float) -> None:
        buffer, response, record = walk.answer, walk.response, walk.record
        assert buffer is not None
        response.text, response.thinking, response.model = buffer.text, buffer.thinking, buffer.model
        response.tool_calls, response.usage, response.stop_reason, response.vectors = (
            buffer.tool_calls, buffer.usage, buffer.stop_reason, buffer.vectors)
        record.model = model
        record.finish_reason = finish_reason_of(buffer.stop_reason)
        if buffer.truncated:
            # the budget the answer was cut at is the one really sent: clamped to the model's output limit or to the
            # room a prompt leaves (a refusal that stated it), not the client's (it read "max_tokens=2000" at 45)
            record.max_tokens = walk.budget
            record.context_full = buffer.stop_reason == CONTEXT_FULL
        record.outcome = RequestOutcome.OK if index == 0 else RequestOutcome.FALLBACK
        record.total_ms = (now - walk.t0) * 1000
        record.tokens_per_s = record.attempts[-1].tokens_per_s
        if self._store_text:
            record.response = buffer.text
            record.thinking = buffer.thinking or None


def _too_long(walk: _Walk, provider: Provider) -> str | None:
    """Why the model cannot take the walk's prompt: past the context its config declares, or (a chat) one its server
    said it has when it refused a prompt (router/fit.py); None when it may take it."""
    request, embed = walk.request, walk.request.embed
    if embed is not None:
        return input_too_long(provider, walk.prompt_tokens(), embed) if provider.config.context else None
    why = too_long_for(provider.config, walk.prompt_tokens(), request.max_tokens)
    if why is None and (learned := provider.learned_context) is not None:
        why = too_long_as_learned(learned, walk.prompt_tokens(), request.max_tokens)
    return why


def _record(request_id: str | None, agent: str, parent_id: str | None) -> RequestRecord:
    """A request's record. Records made per request take positional arguments and plain assignments: a class
    called with keywords gets them as a dict built for the call, ~850 instructions each (issue #15)."""
    record = RequestRecord(request_id or new_request_id(), agent)
    if parent_id is not None:
        record.parent_id = parent_id
    return record


@dataclass(slots=True, frozen=True)
class _Bounds:
    """An agent's time bounds on one model, as plain attributes (see Router.__init__)."""

    timeouts: Timeouts
    queue: float
    first_token: float
    idle: float
    total: float


@dataclass(slots=True, frozen=True)
class _ModelFacts:
    """What the router reads of a model's config per request, as plain attributes (see Router.__init__)."""

    config: ModelConfig  # what they were read from
    kind: str
    context: int | None
    max_queue: int | None
    price: Price
    price_input: float
    price_output: float


@dataclass(slots=True, frozen=True)
class _AgentPlan:
    """What the router reads of an agent's config on every request, as plain attributes."""

    chain: tuple[str, ...]
    system: str
    thinking: bool | None
    thinking_budget: int | None
    max_tokens: int | None


@dataclass(slots=True)
class _Walk:
    """The state of one request's walk down its chain."""

    agent: str
    record: RequestRecord
    response: ChatResponse
    request: ChatRequest
    stream: bool
    accept: Accept | None
    t0: float
    deadline: float
    #: the running loop, asked once per request (``get_running_loop`` makes a system call on Linux)
    loop: asyncio.AbstractEventLoop
    committed: bool = False
    answer: ChatResponse | None = None
    #: the max_tokens the answering attempt was really sent (clamped to an output limit or the context's room)
    budget: int | None = None
    tokens: int | None = None

    def prompt_tokens(self) -> int:
        """The prepared request's estimated size, counted once and only if a model declares a context."""
        if self.tokens is None:
            self.tokens = request_tokens(self.request)
        return self.tokens
