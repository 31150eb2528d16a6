"""Do the local models fit in memory together, and if not, which to drop?

Per local model: weights + KV cache. Weights come from the config's ``memory_gb``, else from
the model's provider (:meth:`Provider.memory`: Ollama's ``/api/ps`` size when loaded — which
already includes its KV cache — else ``/api/tags``; the GGUF file size for llama.cpp). The KV
cache is ``2 (K,V) × layers × KV heads × head dim × 2 bytes (f16) × context × parallel
sequences`` as llama.cpp allocates it (sliding-window and chunked layers keep only their window, Gemma 3n's
shared layers none, an MLA model one latent row and no V: ``metadata.KvShape``), with the shape and the parallel
count from the provider too (Ollama allocates ``context × max_concurrent``; in-process llama.cpp one context).
In-process llama.cpp also allocates a compute buffer, larger than the KV cache for a small model
(``metadata.compute_buffer_bytes``: 0.95 GB for the embedded 0.5B model at 32k context, beside 0.46 GB of weights
and 0.38 GB of KV). Without a shape, a rule of thumb: **16 KiB per token per GB of weights** (GQA models at f16 KV
measure 12–27 KiB; e.g. Qwen2.5-7B 14, Llama-3-8B 27, Qwen2.5-0.5B 25).

Sizes are in GB of 2^30 bytes, the unit RAM is sold in. The OS and other programs need room too:
the default headroom is 8 GB on machines with 32 GB or more, else a quarter of RAM (at least 2 GB).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from modelyard.config.schema import Config, ModelConfig
from modelyard.providers import MemoryFacts, Provider, build_provider
from modelyard.providers.metadata import N_UBATCH, KvShape, SwaSource, swa_cells
from modelyard.providers.ollama_parallel import ServerParallel, against_slots
from modelyard.providers.this_machine import on_this_machine

GB = 2**30

#: llama.cpp allocated this much more than plan's weights + KV + compute estimate for the embedded model (1.03×
#: at 2k–32k context, tests/ops/test_plan_measured.py): a context advised to make a model fit leaves that room
LLAMA_CPP_MARGIN = 1.05
RULE_OF_THUMB_KIB_PER_TOKEN_PER_GB = 16
DEFAULT_CONTEXT = 4096  # assumed when a backend does not say what it serves (Ollama's and llama.cpp's default)
FACTS_TIMEOUT = 10.0  # seconds a provider has to state its memory facts
T = TypeVar("T")


def default_headroom(ram_gb: float) -> float:
    return 8.0 if ram_gb >= 32 else max(2.0, ram_gb / 4)


def machine_ram_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / GB


@dataclass
class ModelMemory:
    model: str
    weights_gb: float | None
    weights_source: str
    kv_gb: float
    kv_source: str
    context: int
    parallel: int
    primary_for: list[str] = field(default_factory=list)
    fallback_for: list[str] = field(default_factory=list)
    role: str = ""
    #: the backend's working memory besides weights and KV (llama.cpp's compute buffer), where known
    compute_gb: float = 0.0
    #: how the compute buffer grows with context: the larger of a floor and GB per token of context
    compute_floor_gb: float = 0.0
    compute_per_token_gb: float = 0.0
    #: ``parallel`` is the server's setting taken to be max_concurrent (Ollama's OLLAMA_NUM_PARALLEL)
    parallel_assumed: bool = False
    #: the share its server runs on the CPU, having split the loaded model between GPU and CPU (Ollama /api/ps)
    cpu_share: float | None = None
    #: the part of ``kv_gb`` on sliding-window layers, which stops growing at ``swa_window`` tokens (+ a micro-batch)
    kv_swa_gb: float = 0.0
    swa_window: int = 0
    #: the config's slots, and what its server was found to run at once (Ollama's OLLAMA_NUM_PARALLEL: None unknown
    #: or not asked) and how that is known — ``parallel`` is that value where it is known
    max_concurrent: int = 1
    server_parallel: int | None = None
    server_parallel_how: str = ""
    server_parallel_fixed: bool = False
    #: the server that runs them (ServerParallel.server): "Ollama" or "llama-server"
    server_name: str = "Ollama"

    def at_context(self, context: int) -> float:
        """KV cache + compute buffer at another context (what shrinking the context leaves)."""
        kv = (self.kv_gb - self.kv_swa_gb) * context / self.context if self.context else 0.0
        if self.kv_swa_gb and self.context:
            kv += self.kv_swa_gb * swa_cells(context, self.swa_window) / swa_cells(self.context, self.swa_window)
        compute = max(self.compute_floor_gb, self.compute_per_token_gb * context) if self.compute_gb else 0.0
        return kv + compute

    @property
    def total_gb(self) -> float:
        return (self.weights_gb or 0.0) + self.kv_gb + self.compute_gb

    @property
    def known(self) -> bool:
        return self.weights_gb is not None


@dataclass
class Consequence:
    agent: str
    text: str


@dataclass
class MemoryPlan:
    ram_gb: float
    headroom_gb: float
    models: list[ModelMemory]
    drop: list[str] = field(default_factory=list)
    consequences: list[Consequence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def available_gb(self) -> float:
        return self.ram_gb - self.headroom_gb

    @property
    def total_gb(self) -> float:
        return sum(m.total_gb for m in self.models)

    @property
    def kv_gb(self) -> float:
        return sum(m.kv_gb for m in self.models)

    @property
    def free_gb(self) -> float:
        return self.ram_gb - self.total_gb

    @property
    def unknown(self) -> list[str]:
        """Local models whose size nobody could tell (neither ``memory_gb`` nor their server)."""
        return [m.model for m in self.models if not m.known]

    @property
    def fits(self) -> bool | None:
        """True: everything fits; False: what is known already does not; None: what is known fits, but a model of
        unknown size is left to count (``plan`` said "fits" with a '?' in its total: it could not tell)."""
        if self.total_gb > self.available_gb:
            return False
        return None if self.unknown else True

    @property
    def kept(self) -> list[ModelMemory]:
        return [m for m in self.models if m.model not in self.drop]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ram_gb": self.ram_gb, "headroom_gb": self.headroom_gb, "available_gb": self.available_gb,
            "total_gb": self.total_gb, "kv_gb": self.kv_gb, "free_gb": self.free_gb, "fits": self.fits,
            "models": [{**asdict(m), "total_gb": m.total_gb} for m in self.models],
            "drop": self.drop, "kept_total_gb": sum(m.total_gb for m in self.kept),
            "consequences": [asdict(c) for c in self.consequences], "notes": self.notes,
        }


def gb(value: float) -> str:
    """A size for people: one decimal, none when whole ("5.9 GB", "8 GB", never "5.88514 GB")."""
    text = f"{value:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + " GB"


def role_text(primary_for: list[str], fallback_for: list[str], n_agents: int) -> str:
    """"Primary for 3 agents, fallback for 2", "Fallback for all agents", "Engineer only"."""
    if not primary_for and not fallback_for:
        return "Unused"
    if len(primary_for) == 1 and not fallback_for:
        return f"{primary_for[0].capitalize()} only"

    def count(names: list[str]) -> str:
        if len(names) == n_agents and n_agents > 1:
            return "all agents"
        if len(names) == 1:
            return names[0]
        return f"{len(names)} agents"

    parts = []
    if primary_for:
        parts.append(f"primary for {count(primary_for)}")
    if fallback_for:
        parts.append(f"fallback for {count(fallback_for)}")
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run async provider calls from sync code (in a worker thread if a loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _facts(providers: dict[str, Provider], ask_server: bool) -> dict[str, MemoryFacts]:
    """Every provider's memory facts, asked together, each bounded in time; a failure is "unknown"."""

    async def one(p: Provider) -> MemoryFacts:
        try:
            async with asyncio.timeout(FACTS_TIMEOUT):
                return await p.memory(ask_server=ask_server)
        except Exception:  # a slow backend, or an answer of any shape, must not end the plan
            return MemoryFacts(context=p.config.context, parallel=p.config.max_concurrent)

    try:
        found = await asyncio.gather(*(one(p) for p in providers.values()))
        return dict(zip(providers, found, strict=True))
    finally:
        for p in providers.values():
            await p.aclose()


def _usage(config: Config) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    primary: dict[str, list[str]] = {}
    fallback: dict[str, list[str]] = {}
    for agent_name, agent in config.agents.items():
        for i, m in enumerate(agent.chain):
            (primary if i == 0 else fallback).setdefault(m, []).append(agent_name)
    return primary, fallback


def elsewhere(config: Config) -> dict[str, str]:
    """Local models served by another machine (``endpoint`` on a host that is not this one), by name → host.

    A team's config names its inference hosts' servers; ``plan`` on a laptop or a gateway host counted their
    models against *its own* memory (and asked those servers their sizes to do so)."""
    found = {}
    for name, m in config.models.items():
        host = urlsplit(m.endpoint).hostname if m.is_local and m.endpoint else None
        if host and not on_this_machine(host):
            found[name] = host
    return found


def model_memory(config: Config, query_servers: bool = True) -> list[ModelMemory]:
    """Weights and KV cache of every local model in the config that runs on this machine."""
    away = elsewhere(config)
    providers = {name: build_provider(name, m) for name, m in config.models.items() if m.is_local and name not in away}
    facts = run_sync(lambda: _facts(providers, query_servers))
    primary, fallback = _usage(config)
    return [_memory(name, providers[name].config, facts[name], primary.get(name, []), fallback.get(name, []),
                    len(config.agents)) for name in providers]


def _memory(name: str, m: ModelConfig, facts: MemoryFacts, primary_for: list[str], fallback_for: list[str],
            n_agents: int) -> ModelMemory:
    context, parallel = facts.context or DEFAULT_CONTEXT, facts.parallel
    weights: float | None = None
    source = "unknown: set memory_gb"
    included = None
    if facts.weights_source.startswith("unknown: "):  # why its server told no size: down, or the model not on it
        source = f"{facts.weights_source}; or set memory_gb"
    if m.memory_gb is not None:
        weights, source = m.memory_gb, "config memory_gb"
    elif facts.weights_bytes:
        weights, source, included = facts.weights_bytes / GB, facts.weights_source, facts.kv_included_in
    tokens = context * parallel
    shape = facts.kv_shape
    kv_swa = 0.0
    if included:
        kv, kv_source = 0.0, f"included in {included}"
    elif shape is not None:
        kv = shape.bytes_at(context) * parallel / GB
        kv_source = f"{shape_text(shape)}, {context} ctx × {parallel}"
        kv_source += swa_text(shape, context)
        kv_swa = shape.swa_bytes_at(context) * parallel / GB
    elif weights is not None:
        kv = weights * RULE_OF_THUMB_KIB_PER_TOKEN_PER_GB * 1024 * tokens / GB
        kv_source = f"rule of thumb {RULE_OF_THUMB_KIB_PER_TOKEN_PER_GB} KiB/token/GB, {context} ctx × {parallel}"
    else:
        kv, kv_source = 0.0, "unknown"
    floor, per_token = (facts.compute[0] / GB, facts.compute[1] / GB) if facts.compute and not included else (0, 0)
    compute = max(floor, per_token * context)
    if compute:
        kv_source += f"; + {compute:.2f} GB llama.cpp compute buffer"
    server = facts.server_parallel
    return ModelMemory(name, weights, source, kv, kv_source, context, parallel, primary_for, fallback_for,
                       role_text(primary_for, fallback_for, n_agents), compute, floor, per_token,
                       facts.parallel_assumed, facts.cpu_share, kv_swa, shape.window if shape and kv_swa else 0,
                       m.max_concurrent, server.value if server else None, server.how if server else "",
                       server.fixed if server else False, server.server if server else "Ollama")


def shape_text(shape: KvShape) -> str:
    """The shape plan's KV figure multiplied out: layers (those with a cache of their own) × heads × widths."""
    layers = (f"{shape.kv_layers} of {shape.n_layer} layers (the other {shape.n_layer - shape.kv_layers} reuse their "
              "KV)" if shape.kv_layers != shape.n_layer else f"{shape.n_layer} layers")
    if shape.mla:
        return f"{layers} × {shape.n_head_kv * shape.head_dim}-wide latent (MLA: K only, no V cache)"
    if shape.value_dim is not None:
        return f"{layers} × {shape.n_head_kv} KV heads × {shape.head_dim} K + {shape.value_dim} V dims"
    return f"{layers} × {shape.n_head_kv} KV heads × {shape.head_dim} dims"


def swa_text(shape: KvShape, context: int) -> str:
    """What plan's KV figure assumed about sliding-window attention ('' for a model without it)."""
    if shape.sliding:
        where = ("the pattern in its metadata" if shape.swa_source is SwaSource.METADATA
                 else "llama.cpp's pattern for its architecture")
        return (f"; sliding window: {shape.n_swa_layer} of {shape.kv_layers} layers keep "
                f"{swa_cells(context, shape.window)} tokens (window {shape.window} + a {N_UBATCH}-token batch; "
                f"{where}), the other {shape.kv_layers - shape.n_swa_layer} the full context")
    if shape.window and shape.swa_source is SwaSource.UNKNOWN:
        return (f"; sliding window {shape.window} but which layers slide is unknown: every layer counted at the "
                "full context (an overestimate)")
    return ""


def plan_memory(config: Config, *, ram_gb: float | None = None, headroom_gb: float | None = None,
                query_servers: bool = True) -> MemoryPlan:
    ram = ram_gb if ram_gb is not None else machine_ram_gb()
    headroom = headroom_gb if headroom_gb is not None else default_headroom(ram)
    plan = MemoryPlan(ram, headroom, model_memory(config, query_servers))
    for name, host in elsewhere(config).items():
        plan.notes.append(f"{name}: served by {host}, not this machine (not counted); run `modelyard plan` there")
    for m in plan.models:
        if not m.known:
            why = m.weights_source.removeprefix("unknown: ").removesuffix("; or set memory_gb")
            plan.notes.append(f"{m.model}: size unknown (not counted)" + (
                f": its server told none — {why}; mended, `plan` reads the size from it (or set memory_gb in the "
                "config)" if why != "set memory_gb" else "; set memory_gb in the config"))
    # Ollama allocates num_ctx × OLLAMA_NUM_PARALLEL (a server setting, default 1 in current releases), whatever
    # max_concurrent says: counted at the server's value where it can be told, else taken to be max_concurrent
    for m in plan.models:
        plan.notes += _parallel_notes(m)
    for m in plan.models:
        if m.cpu_share:  # a GPU short of memory: the model runs, slower, and plan's RAM figures do not show it
            plan.notes.append(f"{m.model}: its Ollama runs {m.cpu_share:.0%} of it on the CPU (/api/ps size_vram below "
                              "size): the GPU had no room for all of it, so it answers several times slower — free "
                              "GPU memory (fewer models loaded, a smaller context or quantisation)")
    if plan.fits is False:
        _choose_drops(config, plan)
    return plan


def _parallel_notes(m: ModelMemory) -> list[str]:
    """What plan says of a model's parallel requests at its server beside its ``max_concurrent``: slots past what
    the server runs (ollama_parallel.py), a KV cache counted for more sequences than slots, or the assumption made
    when the server's setting cannot be told."""
    if m.server_parallel is not None:
        server = ServerParallel(m.server_parallel, m.server_parallel_how, m.server_parallel_fixed, m.server_name)
        if said := against_slots(m.model, m.max_concurrent, server):
            return [f"{m.model}: {said}"]
        if m.server_parallel > m.max_concurrent and m.kv_gb:
            return [f"{m.model}: its {m.server_name} runs {m.server_parallel} requests of it at once "
                    f"({m.server_parallel_how}), more than max_concurrent {m.max_concurrent}: it holds a KV cache for "
                    f"each, counted so — models.{m.model}.max_concurrent: {m.server_parallel} would use them"]
        return []
    if m.parallel <= 1 or not m.kv_gb or not m.parallel_assumed:
        return []
    unknown = f", which cannot be told here: {m.server_parallel_how}" if m.server_parallel_how else ""
    return [f"{m.model}: KV cache × {m.parallel} assumes its Ollama server runs OLLAMA_NUM_PARALLEL={m.parallel} "
            f"(max_concurrent{unknown}); with Ollama's default of 1 it allocates 1/{m.parallel} of that and queues "
            "the other requests"]


def _fitting_context(m: ModelMemory, available_gb: float, kept_total: float) -> int:
    """The largest multiple of 1024 of ``m``'s context whose KV cache and compute buffer fit beside the rest of
    ``kept_total`` (which includes ``m``), 0 when none does."""
    # where the compute buffer is estimated, so is the rest of llama.cpp's allocation: keep a margin for what
    # the estimate leaves out (measured: 3% more, a repacked copy of some weights and a few MiB of buffers)
    usable = available_gb / LLAMA_CPP_MARGIN if m.compute_gb else available_gb
    budget = usable - (kept_total - m.kv_gb - m.compute_gb)
    return next((c for c in range(m.context // 1024 * 1024, 0, -1024) if m.at_context(c) <= budget),
                0) if m.kv_gb else 0


def _too_big_alone(m: ModelMemory) -> str:
    return (f"{m.model} does not fit even alone ({m.total_gb:.1f} GB): rely on cloud models or use a smaller "
            "quantization")


def _choose_drops(config: Config, plan: MemoryPlan) -> None:
    """Greedy: drop first what fits in no case, then keep the primaries of the most agents; drop unused, then
    least-used and biggest fallbacks.

    A model too big even alone (and at a 2,048 context) goes first: the greedy order kept a primary of 255 GB on a
    24 GB machine to the end, dropping its 1.6 GB fallback before it — "Drop small, big → 0 GB", no model left,
    where the fallback alone fits. The last model standing is kept if shrinking its context makes it fit: its KV
    cache shrinks with it, and llama.cpp's compute buffer down to its floor."""
    order = sorted((m for m in plan.models if m.known),
                   key=lambda m: (len(m.primary_for), len(m.fallback_for), -m.total_gb))
    kept_total = plan.total_gb
    too_big = [m for m in order if m.total_gb > plan.available_gb
               and _fitting_context(m, plan.available_gb, m.total_gb) < 2048]
    for m in too_big:
        order.remove(m)
        plan.drop.append(m.model)
        plan.notes.append(_too_big_alone(m))
        kept_total -= m.total_gb
    while kept_total > plan.available_gb and len(order) > 1:
        m = order.pop(0)
        plan.drop.append(m.model)
        kept_total -= m.total_gb
    if kept_total > plan.available_gb and order:
        last = order[0]
        context = _fitting_context(last, plan.available_gb, kept_total)
        if context >= 2048:
            shrinks = "KV cache and compute buffer" if last.compute_gb else "KV cache"
            plan.notes.append(f"{last.model} fits only with a smaller {shrinks}: set its context to {context} "
                              f"or less (now {last.context} × {last.parallel})")
        else:
            plan.drop.append(last.model)
            plan.notes.append(_too_big_alone(last))
    elif plan.kv_gb > 0 and len(plan.drop) > len(too_big):  # not when only models too big in any case went
        plan.notes.append(f"KV cache is {plan.kv_gb:.1f} GB of the total: lowering context or max_concurrent "
                          "shrinks it, an alternative to dropping a model")
    dropped = set(plan.drop)
    cloud = [n for n, m in config.models.items() if not m.is_local]
    for agent_name, agent in config.agents.items():
        chain = agent.chain
        lost = [m for m in chain if m in dropped]
        if not lost:
            continue
        left = [m for m in chain if m not in dropped]
        if chain[0] in dropped:
            extra = [c for c in cloud if c not in chain]
            nxt = f"requests go to {left[0]}" if left else "no model left" + (
                f"; consider {extra[0]} as primary" if extra else "")
            text = f"loses its primary {chain[0]}: {nxt}"
        else:
            text = f"loses its fallback {', '.join(lost)}"
            if len(left) == 1:
                text += " (no fallback left"
                extra = [c for c in cloud if c not in chain]
                text += f"; consider {extra[0]} as cloud fallback)" if extra else ")"
        plan.consequences.append(Consequence(agent_name, text))


