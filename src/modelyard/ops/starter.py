"""``init --detect``: a starter config from the models this machine's servers already serve.

A newcomer with Ollama (or llama-server, LM Studio, vLLM) running should not have to copy model
names by hand into an example written for someone else's machine. This module asks every backend's
usual address what it serves, then fills the embedded default's agents with those models: the
agents, their routing examples, timeouts and hand-offs stay as shipped; only the models and each
agent's chain are chosen, one small function per choice, and every choice is written into the
file as a comment so the user can see why and change it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from modelyard import registry
from modelyard.config.schema import server_address
from modelyard.errors import ProviderError, Reason
from modelyard.providers.base import Provider
from modelyard.providers.discovery import ServedModel, ServerCapability

BUDGET = 4.0  # seconds for asking every server, all at once
NO_ANSWER = "no answer in time"  # what an address still asked when BUDGET ran out said
EMBEDDED = "qwen-coder-0.5b"  # the default config's in-process model: the last fallback everywhere
CLOUD = "claude-haiku"  # the default config's cloud model (unavailable until its key is set)
#: an orchestrator model this big (billions of parameters) is trusted with the uncertain routing decisions
ORCHESTRATOR_MODEL_B = 7.0
#: the threshold such a model gets: reference-mac64.yaml's calibrated one (the code wrote round 5's 0.96 while
#: its own note said "set 0.92")
ORCHESTRATOR_THRESHOLD = 0.92
LOCAL_CONTEXT = 8192  # tokens of KV cache asked per sequence: Ollama's own default (4096) is small for agents
_CODER = re.compile(r"coder|codestral|devstral|starcoder|codellama|codegemma|deepseek-code|granite-code",
                    re.IGNORECASE)
#: what Ollama's /api/show reports → what a modelyard config declares
_DECLARED = {ServerCapability.TOOLS: "tools", ServerCapability.THINKING: "thinking",
             ServerCapability.VISION: "vision", ServerCapability.JSON: "json"}


@dataclass(frozen=True)
class Found:
    """A served model and the backend (a registry name) that speaks to its server."""

    backend: str
    model: ServedModel


@dataclass(frozen=True)
class Discovery:
    found: list[Found]
    #: every address asked, and what it said ("3 models" or why nothing)
    asked: dict[str, str]
    #: the addresses that answered with their list of models (none in it, maybe), in the order asked
    answered: list[str] = field(default_factory=list)


def _richness(models: list[ServedModel]) -> tuple[int, int]:
    """Which of two answers from one address to keep: one that lists models, then the one saying more."""
    return len(models), sum(bool(m.size_bytes) + bool(m.capabilities) + bool(m.parameters_b) for m in models)


async def _ask(backend: str, endpoint: str) -> tuple[str, str, list[ServedModel] | str]:
    try:
        models = await registry.backend(backend).load().served_models(endpoint)
    except ProviderError as exc:
        if exc.reason is Reason.MALFORMED_RESPONSE:  # something answers there: say what (it said only the tag)
            return backend, endpoint, f"nothing found ({exc.reason}: {exc.message})"
        return backend, endpoint, f"nothing found ({exc.reason})"
    except Exception as exc:  # a plugin's discovery must not stop the others
        return backend, endpoint, f"{type(exc).__name__}"
    return backend, endpoint, models


def _discoverers() -> dict[str, Any]:
    """The backends that can list what a server serves: one that cannot (a cloud API, the in-process
    model) would answer any address with no models, and '0 model(s)' hid why a named one was empty."""
    out = {}
    for name in registry.provider_names():
        try:
            cls = registry.backend(name).load()
        except Exception:
            continue
        if getattr(cls.served_models, "__func__", None) is not getattr(Provider.served_models, "__func__", None):
            out[name] = cls
    return out


#: "every interface" as servers are told to listen (`OLLAMA_HOST=0.0.0.0`), as the host of a URL or host:port
_ANY_ADDRESS = re.compile(r"^((?:[a-z][a-z0-9+.-]*://)?)(?:0\.0\.0\.0|\[::\])(?=$|[:/])", re.IGNORECASE)


def _loopback_for_any(text: str) -> str:
    """``0.0.0.0:11434`` — the address a server is told to listen on, copied from its ``OLLAMA_HOST`` — as this
    machine's loopback address: ``init --endpoint 0.0.0.0:11434`` wrote ``endpoint: http://0.0.0.0:11434``, which
    Linux happens to connect to itself and Windows refuses (WSAEADDRNOTAVAIL); ``OLLAMA_HOST=0.0.0.0`` in the
    environment was already read so (providers/discovery.py, normalised_endpoint)."""
    return _ANY_ADDRESS.sub(lambda m: f"{m.group(1)}127.0.0.1", text)


def asked_at(endpoint: str, usual: Sequence[str]) -> tuple[str, ...]:
    """Where to ask a server named on the command line, by a backend whose servers listen at ``usual``.

    ``host:port`` is ``http://host:port``; a host written alone, without scheme or port (``gpu-box``), is asked at
    each usual port of the backend on that host — Ollama reads ``OLLAMA_HOST=gpu-box`` as port 11434
    (envconfig.getOllamaHost: 80 only after an explicit ``http://``), and ``init --endpoint gpu-box`` asked port 80:
    'nothing found (connect_error)' with Ollama right there. A URL with its scheme is asked as written."""
    text = _loopback_for_any(endpoint.strip().rstrip("/"))
    if "://" in text:
        return (text,)
    try:
        parts = urlsplit(f"//{text}")
        port, host = parts.port, parts.hostname
    except ValueError:  # a port that is no number: asked as written, its failure said
        port, host = None, None
    if port is not None or not host or not usual:
        return (f"http://{text}",)
    shown = f"[{host}]" if ":" in host else host
    ports = dict.fromkeys(p for u in usual if (p := urlsplit(u).port) is not None)
    return tuple(f"http://{shown}:{p}" for p in ports) or (f"http://{text}",)


async def discover(endpoints: Sequence[str] = (), budget: float = BUDGET) -> Discovery:
    """Ask each backend's usual addresses (or ``endpoints``, each as every backend: :func:`asked_at`) at once.

    An address several protocols answer (Ollama also serves ``/v1/models``) keeps the answer with
    the most facts, so a model is listed once, by its native protocol."""
    # a URL named with its request path (`…:11434/v1`, as OpenAI clients are given Ollama; `…/api/chat` from a curl
    # example) was asked as written — 'nothing found (malformed_response)' with Ollama there: each backend asks the
    # server's address, as a config's endpoint is read (config/schema.py, server_address)
    asks = list(dict.fromkeys(
        (name, server_address(name, ep).rstrip("/")) for name, cls in _discoverers().items()
        for given in (endpoints or ("",))
        for ep in (asked_at(given, cls.endpoints_to_try()) if given else cls.endpoints_to_try())))
    tasks = [asyncio.ensure_future(_ask(name, ep)) for name, ep in asks]
    done, pending = await asyncio.wait(tasks, timeout=budget) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    best: dict[str, tuple[str, list[ServedModel]]] = {}
    asked: dict[str, str] = {ep: NO_ANSWER for _, ep in asks}
    for task in done:
        backend, endpoint, result = task.result()
        if isinstance(result, str):
            if endpoint not in best:
                asked[endpoint] = result
            continue
        if endpoint not in best or _richness(result) > _richness(best[endpoint][1]):
            best[endpoint] = (backend, result)
            server = result[0].server if result else backend
            asked[endpoint] = f"{server}: {len(result)} model(s)"
    found = [Found(name, m) for endpoint in sorted(best) for name, models in [best[endpoint]] for m in models]
    return Discovery(found, asked, [endpoint for endpoint in asked if endpoint in best])


# -- the policy: one function per choice --------------------------------------------------------


#: a size in a model's name: "qwen3-14b", "llama3.2:3b", "Llama-3.2-3B-Instruct", "mixtral-8x7b" (7), "phi-3.5"
#: is not one (no "b")
_NAMED_SIZE = re.compile(r"(?<![a-z0-9.])(?:\d+x)?(\d+(?:\.\d+)?)b(?![a-z])", re.IGNORECASE)


def weight(model: ServedModel) -> float:
    """Billions of parameters, or the size its name says (an OpenAI-compatible listing gives no count:
    "qwen3-14b" counted as 0 B — the "smallest" model, put first for chat and called "under 7B"), or the file
    size at ~0.6 bytes per parameter (4-bit quantised: a guess the name, where it says, beats — a 0.5B model's
    Q4_K_M file read as 0.8B); 0 when nothing tells."""
    if model.parameters_b:
        return model.parameters_b
    if found := _NAMED_SIZE.search(model.model_id.rsplit("/", 1)[-1]):
        return float(found.group(1))
    return model.size_bytes / 0.6e9 if model.size_bytes else 0.0


def is_coder(model: ServedModel) -> bool:
    return bool(_CODER.search(model.model_id))


def config_name(model_id: str, taken: set[str]) -> str:
    """A config name from a server's id: "qwen2.5-coder:7b" → "qwen2.5-coder-7b",
    "hf.co/org/Repo-GGUF:Q4_K_M" → "repo-gguf-q4_k_m"; ":latest" dropped; unique."""
    tail = model_id.rsplit("/", 1)[-1].removesuffix(":latest").removesuffix(".gguf")
    base = re.sub(r"[^a-z0-9._-]+", "-", tail.lower()).strip("-._") or "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def slots(model: ServedModel) -> int:
    """``max_concurrent``: as many requests as the server runs of the model at once, where it could be told
    (Ollama's OLLAMA_NUM_PARALLEL, llama-server's ``total_slots``: ServedModel.parallel), else one. More would wait
    inside the server, unseen by modelyard and on the first-token timeout; fewer would leave its slots idle."""
    return model.parallel.value if model.parallel is not None and model.parallel.value else 1


def model_entry(found: Found) -> dict[str, Any]:
    """The config entry: the server's own parallelism (:func:`slots`), memory from the listing, context capped to
    what a laptop-class box holds."""
    m = found.model
    entry: dict[str, Any] = {"provider": found.backend, "model": m.model_id, "endpoint": m.endpoint,
                             "max_concurrent": slots(m)}
    if m.size_bytes:
        entry["memory_gb"] = round(m.size_bytes / 1e9, 1)
    context = m.served_context or (min(m.trained_context, LOCAL_CONTEXT) if m.trained_context else None)
    if context:
        entry["context"] = context
    caps = [_DECLARED[ServerCapability(c)] for c in sorted(m.capabilities) if c in _DECLARED]
    if caps:
        entry["capabilities"] = caps
    return entry


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


def chains(named: dict[str, ServedModel]) -> dict[str, list[str]]:
    """Each agent's chain over the found models (names → models), the embedded model last:
    small and quick for chat, orchestrator and utility; the coder model for engineer; the largest
    general model for research and writer behind the cloud model, as the reference setup does."""
    chat_models = {n: m for n, m in named.items() if not m.embedding_only}
    general = sorted((n for n, m in chat_models.items() if not is_coder(m)), key=lambda n: weight(chat_models[n]))
    coders = sorted((n for n, m in chat_models.items() if is_coder(m)), key=lambda n: weight(chat_models[n]))
    general = general or coders
    if not general:
        return {}
    small, large = general[0], general[-1]
    coder = coders[-1] if coders else large
    quick = _unique([small, large, EMBEDDED])
    return {"chat": quick, "orchestrator": quick, "utility": quick,
            "engineer": _unique([coder, large, EMBEDDED]),
            "research": _unique([CLOUD, large, EMBEDDED]), "writer": _unique([CLOUD, large, EMBEDDED])}


def threshold(orchestrator_model: ServedModel | None) -> float:
    """Ask the orchestrator's model about uncertain routes only when it is big enough to do better
    than the fast path (a 0.5B model measured 29 points worse: benchmarks/README.md)."""
    return ORCHESTRATOR_THRESHOLD if orchestrator_model and weight(orchestrator_model) >= ORCHESTRATOR_MODEL_B else 0.0


def draft(found: Sequence[Found], base: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``base`` (the embedded default, parsed) with the found models and chains; and the notes
    explaining each choice, for the file's header."""
    config = dict(base)
    taken = set(base.get("models", {}))
    named: dict[str, Found] = {config_name(f.model.model_id, taken): f for f in found}
    usable = {n: f for n, f in named.items() if not f.model.embedding_only and not f.model.remote}
    config["models"] = {**{n: model_entry(f) for n, f in usable.items()}, **base.get("models", {})}
    picked = chains({n: f.model for n, f in usable.items()})
    agents = {name: dict(agent) for name, agent in base.get("agents", {}).items()}
    for name, agent in agents.items():
        if name in picked:
            agent["primary"], agent["fallbacks"] = picked[name][0], picked[name][1:]
    config["agents"] = agents
    orchestrator = picked.get("orchestrator", [""])[0]
    config["orchestration"] = {**base.get("orchestration", {}),
                               "threshold": threshold(usable[orchestrator].model if orchestrator in usable else None)}
    notes = [f"found {f.model.model_id} ({f.model.server or f.backend} at {f.model.endpoint})"
             + (f", {weight(f.model):.1f}B" if weight(f.model) else "") + _slots_said(name, f.model)
             for name, f in usable.items()]
    notes += [_embedding_left_out(name, f) for name, f in named.items() if f.model.embedding_only]
    notes += [f"left out {f.model.model_id}: {f.model.server or f.backend} serves it from the cloud, not from "
              "this machine (add it to a chain yourself if you want it)" for f in named.values() if f.model.remote]
    notes += [f"{agent}: {' → '.join(chain)}" for agent, chain in picked.items()]
    if orchestrator in usable:
        cut = config["orchestration"]["threshold"]
        size_known = weight(usable[orchestrator].model) > 0
        notes.append(f"orchestration.threshold {cut}: " + (
            f"{orchestrator} is big enough to decide the routes the fast path is unsure of" if cut else
            f"{orchestrator} is under {ORCHESTRATOR_MODEL_B:.0f}B, so the fast path decides every route "
            "(a 0.5B model made routing worse, benchmarks/README.md)" if size_known else
            f"the size of {orchestrator} is unknown (its server does not say), so the fast path decides every "
            f"route; if it has {ORCHESTRATOR_MODEL_B:.0f}B parameters or more, set {ORCHESTRATOR_THRESHOLD}"))
    return config, notes + _unsaid(usable, picked, config["models"])


def _embedding_left_out(name: str, found: Found) -> str:
    """Why an embedding model is not in the file, and the entry that serves it: the gateway answers /v1/embeddings
    and /api/embed through a model of the config, and "it cannot chat" alone read as "modelyard has no use for it"."""
    m = found.model
    return (f"left out {m.model_id}: an embedding model, it cannot chat — for the gateway's /v1/embeddings add it "
            f"under models: ({name}: {{provider: {found.backend}, model: '{m.model_id}', endpoint: '{m.endpoint}'}}) "
            f"and ask for model:{name}")


def _unsaid(usable: dict[str, Found], picked: dict[str, list[str]], models: dict[str, Any]) -> list[str]:
    """What the newcomer would otherwise find out later: a found model no chain uses (a llama-server started
    for modelyard sat in the file, 'used by –'), and a model whose context its server does not tell — then
    nothing skips it for a prompt too long (python -m llama_cpp.server: 2048 tokens by default), and its
    server's error counts against it (a streamed one ends without a word: connection_dropped, retried)."""
    used = {name for chain in picked.values() for name in chain}
    notes = [f"{name}: in no chain (each agent gets the smallest and the largest general model and the largest "
             "coder model); add it to a chain yourself if you want it" for name in usable if name not in used]
    notes += [f"{name}: context unknown ({f.model.server or f.backend} does not say): set models.{name}.context to "
              f"{_where_context_is_set(f.backend)}, so that a longer prompt skips it instead of failing on it"
              for name, f in usable.items() if "context" not in models[name]]
    return notes


def _slots_said(name: str, model: ServedModel) -> str:
    """Why ``max_concurrent`` is what it is: the server's parallelism and how it was read, or why it is unknown."""
    server = model.parallel
    if server is not None and server.value:
        return f"; max_concurrent {server.value}: {server.how}"
    why = server.how if server is not None else f"{model.server or 'its server'} does not say"
    return (f"; max_concurrent 1: how many of its requests its server runs at once is unknown ({why}) — set "
            f"models.{name}.max_concurrent to the server's parallel setting")


def _where_context_is_set(backend: str) -> str:
    """Where a user sets the context a model runs with, as its own kind of server says (the note named
    llama_cpp.server's --n_ctx for an Ollama model too, a flag that Ollama does not have)."""
    return registry.backend(backend).load().context_hint


def header(notes: Sequence[str], now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"written by `modelyard init --detect` on {stamp} from what this machine's servers serve;",
             "agents, examples and timeouts are the embedded default's. Edit freely. Next:",
             "`modelyard plan` (does it fit in memory?), `modelyard probe` (what each model really does).",
             "Each max_concurrent is its server's own parallel setting where it could be read (notes below).",
             "", *notes]
    return "".join(f"# {line}\n" if line else "#\n" for line in lines) + "\n"
