"""What a model can really do, measured against its server rather than taken from the config.

Each check calls the provider directly (``Provider.stream``), never through an agent chain,
so a fallback can never hide a failure and modelyard's own repairs (``tool_text_fallback``)
never make a model look better than it is. "Always verify tool calling support separately
from code generation ability": a model that writes a tool call as JSON *text* fails the tool
check, reported distinctly as ``text-only``.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from modelyard.config.schema import Config, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.ledger.probes import backend_of
from modelyard.providers import Provider
from modelyard.providers.speed import measured
from modelyard.types import ChatRequest, ChatResponse, Message, ToolDefinition

Status = Literal["pass", "fail", "text-only", "no", "n/a", "unknown", "skipped"]

CHECKS = ("reachable", "tools", "thinking", "json", "speed", "context")

WEATHER_TOOL = ToolDefinition(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
        "required": ["city"],
    },
)
TOOL_PROMPT = "What is the weather in Paris right now? Use the get_weather tool."
JSON_PROMPT = 'Return a JSON object describing a person named Alice aged 30, with keys "name" and "age".'
SPEED_PROMPT = "Count from 1 to 20, separated by spaces."
SPEED_RUNS = 3

#: a tool call written into the text: {"name": "...", "arguments"/"parameters": {...}}
_TEXT_CALL = re.compile(r'"name"\s*:\s*"[^"]+"\s*,\s*"(arguments|parameters)"\s*:\s*\{', re.S)


@dataclass
class Check:
    """One check's verdict. ``ok`` is None when the check does not apply or could not run."""

    name: str
    status: Status
    ok: bool | None = None
    value: float | None = None
    detail: str = ""
    #: the check could not finish because the model or its server failed (unreachable, timed out,
    #: server error): something is wrong, not a verdict about what the model can do
    error: bool = False


@dataclass
class ProbeResult:
    model: str
    provider: str
    ts: float = field(default_factory=time.time)
    checks: dict[str, Check] = field(default_factory=dict)
    #: what was measured (:func:`modelyard.ledger.probes.backend_of`): findings apply to that backend only
    backend: str = ""

    def add(self, check: Check) -> None:
        self.checks[check.name] = check

    def get(self, name: str) -> Check | None:
        return self.checks.get(name)

    @property
    def errors(self) -> list[Check]:
        """The checks that failed on an error (``probe`` exits non-zero when there are any)."""
        return [c for c in self.checks.values() if c.error]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "provider": self.provider, "backend": self.backend, "ts": self.ts,
                "checks": {k: asdict(v) for k, v in self.checks.items()}}


@dataclass
class _Run:
    response: ChatResponse
    ttft: float | None
    total: float
    pieces: int


async def _generate(provider: Provider, request: ChatRequest, tm: Timeouts, limit: float,
                    until: Callable[[ChatResponse], bool] | None = None) -> _Run:
    """One call, timed; ``limit`` bounds the whole call (the router's bounds are not in play here).
    ``until`` ends the call early once the answer so far settles the question."""
    if not provider.stops_early:  # e.g. an in-process worker that would write to a closed loop
        until = None
    response = ChatResponse()
    start = time.perf_counter()
    ttft: float | None = None
    pieces = 0
    try:
        async with asyncio.timeout(limit):
            async for chunk in provider.chunks(request, tm):
                if chunk.kind in ("text", "thinking", "tool_call"):
                    pieces += chunk.pieces
                    if ttft is None:
                        ttft = time.perf_counter() - start
                response.add(chunk)
                if until is not None and until(response):
                    break
    except TimeoutError:
        raise ProviderError(Reason.DEADLINE, f"no complete answer within {limit:g}s") from None
    return _Run(response, ttft, time.perf_counter() - start, pieces)


def judge_tool_call(response: ChatResponse) -> Check:
    """Structured call with the right argument = pass; a call spelled out in text = text-only."""
    calls = response.tool_calls
    if calls:
        call = calls[0]
        city = str(call.arguments.get("city", ""))
        if call.name == WEATHER_TOOL.name and "paris" in city.lower():
            return Check("tools", "pass", True, detail=f"structured call get_weather(city={city!r})")
        return Check("tools", "fail", False,
                     detail=f"structured call with wrong content: {call.name}({json.dumps(call.arguments)[:80]})")
    if _TEXT_CALL.search(response.text):
        return Check("tools", "text-only", False,
                     detail="answers tool requests with plain-text JSON instead of a structured tool call")
    snippet = " ".join(response.text.split())[:60]
    return Check("tools", "fail", False, detail=f"no tool call; answered in prose: {snippet!r}")


def _settled_tool_answer(response: ChatResponse) -> bool:
    """A structured call arrived, or a call written as text is complete: no need to generate more."""
    text = response.text
    return bool(response.tool_calls) or (bool(_TEXT_CALL.search(text)) and text.count("{") <= text.count("}"))


def judge_json(response: ChatResponse) -> Check:
    try:
        value = json.loads(response.text.strip())
    except (ValueError, RecursionError):
        snippet = " ".join(response.text.split())[:60]
        return Check("json", "fail", False, detail=f"not valid JSON: {snippet!r}")
    if not isinstance(value, dict):
        return Check("json", "fail", False, detail=f"valid JSON but a {type(value).__name__}, not an object")
    return Check("json", "pass", True, detail=f"object with keys {sorted(value)[:5]}")


def a_or_an(number: int) -> str:
    """The article before a number, by how it is said: "an 8-token prompt", "an 11-", "an 18-", "an 80-",
    "an 800-", "an 18,000-"; "a 1,100-" ("one thousand…"). The leading group of three digits is what is said first."""
    lead = abs(number)
    while lead >= 1000:
        lead //= 1000
    return "an" if lead in (8, 11, 18) or 80 <= lead <= 89 or 800 <= lead <= 899 else "a"


def _user(text: str) -> list[Message]:
    return [Message("user", text)]


async def probe_model(name: str, provider: Provider, config: Config, *, checks: tuple[str, ...] = CHECKS,
                      timeout: float = 60.0, on_step: Callable[[str], None] | None = None) -> ProbeResult:
    """Run the checks on one model. Provider failures become failed checks, never exceptions."""
    result = ProbeResult(name, provider.config.provider, backend=backend_of(provider))
    tm = config.timeouts_for(None, name)  # no agent involved in a probe
    step = on_step or (lambda _s: None)

    why = provider.unavailable_reason()
    if why:
        result.add(Check("reachable", "fail", False, detail=why))
        return _skip_rest(result, checks, "model unavailable")
    step("reachable")
    try:
        await _generate(provider, ChatRequest(_user("Reply with the word OK."), max_tokens=8, temperature=0), tm,
                        timeout)
    except ProviderError as exc:
        exc = provider.refused_key(exc)
        result.add(Check("reachable", "fail", False, detail=f"{exc.reason}: {exc.message}", error=True))
        return _skip_rest(result, checks, "model unreachable")
    result.add(Check("reachable", "pass", True))

    async def guarded(check_name: str, body: Callable[[], Any]) -> None:
        if check_name not in checks:
            return
        step(check_name)
        try:
            for check in await body():
                result.add(check)
        except ProviderError as exc:
            detail = f"{exc.reason}: {exc.message}"
            if check_name == "speed":
                result.add(Check("ttft_ms", "fail", False, detail=detail, error=True))
                result.add(Check("tokens_per_s", "fail", False, detail=detail, error=True))
            elif exc.reason is Reason.BAD_REQUEST:  # the server refused the feature: a verdict, not an error
                result.add(Check(check_name, "no", False, detail=detail))
            else:
                result.add(Check(check_name, "fail", False, detail=detail, error=True))

    async def tools() -> list[Check]:
        run = await _generate(provider, ChatRequest(_user(TOOL_PROMPT), tools=[WEATHER_TOOL], max_tokens=256,
                                                    temperature=0), tm, timeout, until=_settled_tool_answer)
        return [judge_tool_call(run.response)]

    async def thinking() -> list[Check]:
        if not provider.profile.shows_thinking:
            return [Check("thinking", "n/a", None,
                          detail=f"the {provider.config.provider} provider cannot switch thinking or show it")]
        with provider.assuming(thinking=True):  # send the switch even if no one has said the model takes it
            run = await _generate(provider, ChatRequest(_user("Is 17 a prime number? Answer yes or no."),
                                                        thinking=True, thinking_budget=1024, max_tokens=1200), tm,
                                  timeout, until=lambda r: bool(r.thinking or r.text))
        if run.response.thinking:
            return [Check("thinking", "pass", True, detail=f"{len(run.response.thinking)} characters of thinking")]
        return [Check("thinking", "no", False, detail="no thinking output with thinking on")]

    async def json_output() -> list[Check]:
        run = await _generate(provider, ChatRequest(_user(JSON_PROMPT), json_output=True, max_tokens=64,
                                                    temperature=0), tm, timeout)
        return [judge_json(run.response)]

    async def speed() -> list[Check]:
        ttfts, rates = [], []
        prompt_tokens = 0
        for _ in range(SPEED_RUNS):
            run = await _generate(provider, ChatRequest(_user(SPEED_PROMPT), max_tokens=32, temperature=0), tm,
                                  timeout)
            if run.ttft is not None:
                ttfts.append(run.ttft * 1000)
            tokens = run.response.usage.output_tokens or run.pieces
            prompt_tokens = run.response.usage.input_tokens or prompt_tokens
            # the server's own speed, else the span when it can say (providers/speed.py): a short answer in one
            # burst read thousands of tok/s here, and replay takes a probed model's speed from this check
            if rate := run.response.usage.tokens_per_s or measured(tokens, run.total - (run.ttft or 0.0)):
                rates.append(rate)
        # what the figures are of: a short prompt's first token and a short answer's speed, not a long prompt's
        of = f"{a_or_an(prompt_tokens)} {prompt_tokens}-token prompt" if prompt_tokens else "a short prompt"
        out = [Check("ttft_ms", "pass" if ttfts else "unknown", bool(ttfts) or None,
                     statistics.median(ttfts) if ttfts else None, f"median of {len(ttfts)} runs of {of}")]
        out.append(Check("tokens_per_s", "pass" if rates else "unknown", bool(rates) or None,
                         statistics.median(rates) if rates else None,
                         f"median of {len(rates)} runs of up to 32 tokens"))
        return out

    async def context() -> list[Check]:
        try:
            window = await provider.context_window()
        except Exception as exc:  # a backend's answer of any shape must not end the probe
            return [Check("context", "unknown", None, detail=f"could not ask the server: {type(exc).__name__}")]
        length, source = window.trained, window.source
        if length is None:
            return [Check("context", "unknown", None, detail=source)]
        configured = provider.config.context
        detail = source + (f"; configured {configured}" if configured else "")
        return [Check("context", "pass", True, float(length), detail)]

    await guarded("tools", tools)
    await guarded("thinking", thinking)
    await guarded("json", json_output)
    await guarded("speed", speed)
    await guarded("context", context)
    return result


def _skip_rest(result: ProbeResult, checks: tuple[str, ...], why: str) -> ProbeResult:
    for name in checks:
        if name == "reachable":
            continue
        for sub in ("ttft_ms", "tokens_per_s") if name == "speed" else (name,):
            result.add(Check(sub, "skipped", None, detail=why))
    return result


async def probe_models(names: list[str], providers: dict[str, Provider], config: Config, *,
                       checks: tuple[str, ...] = CHECKS, timeout: float = 60.0,
                       on_step: Callable[[str, str], None] | None = None) -> list[ProbeResult]:
    """Probe one model after another: local models share memory and cores, so never in parallel."""
    results = []
    for name in names:
        def step(s: str, _n: str = name) -> None:
            if on_step:
                on_step(_n, s)
        results.append(await probe_model(name, providers[name], config, checks=checks, timeout=timeout,
                                         on_step=step))
    return results
