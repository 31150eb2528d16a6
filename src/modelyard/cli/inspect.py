"""Look at the setup and its history: ``models``, ``log``, ``stats``, ``rate``."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli import ollama_host
from modelyard.cli.common import (
    ConfigOption,
    config_said,
    console,
    fail,
    load_or_exit,
    local_log_or_exit,
    log_or_exit,
    log_or_local,
    note,
)
from modelyard.cli.render import Column, fit_table, left_out, ms, p95_cell, plain, share, usd
from modelyard.cli.which_config import embedded_default_note, unread_here_note
from modelyard.config import Config
from modelyard.config.names import did_you_mean, entry_of_provider_id
from modelyard.errors import ConfigError, Reason, says_health
from modelyard.ledger import presence, queries
from modelyard.ledger.cost import Billing, billed_at_zero, log_costs, request_cost, spend_cell
from modelyard.ledger.labels import LabelSource, decision_of
from modelyard.ledger.probes import backend_of
from modelyard.ledger.store import LogConnection, LogStore
from modelyard.ops.reach import BUDGET as reach_budget
from modelyard.ops.reach import unreachable as reach_check
from modelyard.outcomes import AttemptOutcome, RequestKind, RequestOutcome
from modelyard.providers import Provider, build_provider
from modelyard.providers.ollama_parallel import ServerParallel, against_slots
from modelyard.router.pool import ModelPool, state_settings
from modelyard.router.spend import window_start
from modelyard.types import LENGTH


def _unknown_server(row: queries.Row) -> str:
    """`` on an unknown server`` for an attempt logged before the log kept which server it went to."""
    return "" if row["backend"] else " on an unknown server"


def _missing(conn: LogConnection, model: str, backend: str) -> str:
    """From the log: did the model's server (``backend``) say, the last time it was asked, that it lacks the model?"""
    last = queries.last_attempt(conn, model, backend)
    if last is None or last["reason"] != "model_missing":
        return ""
    return f"{last['detail'] or 'not found'}{_unknown_server(last)} ({time.time() - last['ts']:.0f}s ago)"


def _recent_trouble(conn: LogConnection, model: str, backend: str, window: float) -> str:
    """From the log: is this model on its server failing right now (as another process's router sees it)?"""
    rows = conn.execute("SELECT ts, outcome, reason, detail, backend, (SELECT kind FROM requests WHERE requests.id = "
                        f"attempts.request_id) AS kind FROM attempts WHERE {queries.ON_BACKEND} AND ts >= ? "
                        "ORDER BY ts DESC LIMIT 20", (model, backend, time.time() - window)).fetchall()
    streak = 0
    for row in rows:
        if row["outcome"] == AttemptOutcome.OK:
            break
        if says_health(row["reason"] or "", row["kind"] == RequestKind.EMBEDDINGS):  # as the router counts it
            streak += 1
    if not streak:
        return ""
    # a refused key is the setup's, mended by one edit: its words (which variable, what to check) said here too —
    # "last auth_error 2s ago" alone sent a newcomer to `ask` again to read them
    said = f": {rows[0]['detail']}" if rows[0]["reason"] == Reason.AUTH_ERROR and rows[0]["detail"] else ""
    return (f"{streak} recent failure(s), last {rows[0]['reason']}{_unknown_server(rows[0])} "
            f"{time.time() - rows[0]['ts']:.0f}s ago{said}")


#: ``models``' columns in display order; the number is the priority (what a narrow terminal keeps first)
MODEL_COLUMNS = [
    Column("model", 0), Column("state", 1), Column("slots", 2), Column("where", 4),
    Column("used by", 3, flexible=True, min_width=16, wrap=True), Column("price in/out $/M", 5), Column("memory", 7),
    Column("provider", 6),
]
#: a model in one of these states gets a red row; "failing" a yellow one
_BAD_STATES = ("unavailable", "over its spend cap", "unreachable", "not answering", "missing on its server")


def _used_by(agents: list[tuple[str, bool]]) -> str:
    """``chat, orchestrator; fallback for 4 agents``: the agents it is primary for by name, the rest counted
    when there are more than two (the full list is in the config; this is a column, not a report)."""
    primary = [a for a, first in agents if first]
    fallback = [a for a, first in agents if not first]
    parts = [", ".join(primary)] if primary else []
    if fallback:
        parts.append(f"fallback for {', '.join(fallback) if len(fallback) <= 2 else f'{len(fallback)} agents'}")
    return "; ".join(parts) or "–"


def _not_served(providers: dict[str, Provider]) -> dict[str, str]:
    """model → why its server says it does not have it ("" where it lists it), asked of every reachable server at once
    (each listing bounded to 1 s: a server that does not answer in time is left out, to the log's last word)."""
    async def ask() -> dict[str, str]:
        try:
            said = await asyncio.gather(*(p.not_served() for p in providers.values()), return_exceptions=True)
        finally:
            await asyncio.gather(*(p.aclose() for p in providers.values()), return_exceptions=True)
        return {n: why for n, why in zip(providers, said, strict=True) if isinstance(why, str)}

    return asyncio.run(ask()) if providers else {}


#: seconds a server that took the connection has to answer a plain request (its model listing), all at once
SILENCE_TIMEOUT = 2.0


def _silent(providers: dict[str, Provider]) -> dict[str, str]:
    """model → why its server took the connection and answered nothing (a hung server, another program on its port),
    asked of every one at once: `models` called it "available" after a connect alone, Ollama's and an OpenAI-compatible
    server's alike."""
    async def ask() -> dict[str, str]:
        try:
            said = await asyncio.gather(*(p.silence(SILENCE_TIMEOUT) for p in providers.values()),
                                        return_exceptions=True)
        finally:
            await asyncio.gather(*(p.aclose() for p in providers.values()), return_exceptions=True)
        return {n: why for n, why in zip(providers, said, strict=True) if isinstance(why, str) and why}

    return asyncio.run(ask()) if providers else {}


#: seconds in all for every model's server to say how many requests it runs at once (``models``)
PARALLEL_BUDGET = 5.0


def _server_parallel(cfg: Config, names: list[str]) -> dict[str, ServerParallel]:
    """model → how many of its requests its server runs at once, for the models whose backend can tell (Ollama's
    OLLAMA_NUM_PARALLEL: ollama_parallel.py; llama-server's total_slots), asked of every one at once; one that cannot
    say in time is left out."""
    providers = {n: build_provider(n, cfg.models[n]) for n in names}

    async def ask() -> dict[str, ServerParallel]:
        try:
            async with asyncio.timeout(PARALLEL_BUDGET):
                said = await asyncio.gather(*(p.server_parallel() for p in providers.values()),
                                            return_exceptions=True)
        except TimeoutError:
            return {}
        finally:
            await asyncio.gather(*(p.aclose() for p in providers.values()), return_exceptions=True)
        return {n: found for n, found in zip(providers, said, strict=True) if isinstance(found, ServerParallel)}

    return asyncio.run(ask()) if providers else {}


def models(
    config: ConfigOption = None,
    reach: Annotated[bool, typer.Option("--reach/--no-reach", help=(
        f"try to connect to each model's server (all at once, {reach_budget:g}s in all)"))] = True,
    as_json: Annotated[bool, typer.Option("--json", help=(
        "print {\"models\": [...], \"limits\": …}: each model's state and why, for scripts"))] = False,
) -> None:
    """Configured models and their state: available, failing, unreachable, not answering, missing on its server,
    unavailable (a key not set, the GGUF missing), over its spend cap; and where the limits of ask/chat/telegram live
    (Redis, a running serve, or each process).

    Exit status: 0 a model can answer; 1 listed, but the routing log or Redis could not be read; 3 no model can answer
    now."""
    cfg, path = load_or_exit(config)
    conn = log_or_local(cfg)
    users: dict[str, list[tuple[str, bool]]] = {}
    for agent_name, agent in cfg.agents.items():
        for i, model_name in enumerate(agent.chain):
            users.setdefault(model_name, []).append((agent_name, i == 0))
    served = None if (shared := _shared_view(cfg)) else _serve_view(cfg, path)
    # Redis configured but not read: the slots shown are the config's, not what the processes hold (exit 1 below)
    blind = shared[0] if shared is not None and not shared[1] else None
    apart = _limited_apart(cfg, conn) if cfg.log.url else ""
    shared = shared or served
    providers = {name: build_provider(name, m) for name, m in cfg.models.items()}
    unavailable = {name: why for name, p in providers.items() if (why := p.unavailable_reason())}
    unreachable = reach_check({n: p for n, p in providers.items() if n not in unavailable}) if reach else {}
    # a server of one's own (a hosted API keeps the connect alone: its TLS handshake over a slow link may take 2 s)
    hung = _silent({n: p for n, p in providers.items() if n not in unavailable and n not in unreachable
                    and cfg.models[n].is_local}) if reach else {}
    asked = {n: p for n, p in providers.items() if n not in unavailable and n not in unreachable and n not in hung}
    not_served = _not_served(asked) if reach else {}
    parallel = _server_parallel(cfg, [n for n in asked if not not_served.get(n)]) if reach else {}
    now = time.time()
    spent = queries.spend_since(conn, {n: window_start(m.spend_cap.per, now)
                                       for n, m in cfg.models.items() if m.spend_cap})
    rows: list[dict[str, str]] = []
    found: list[dict[str, Any]] = []  # --json: the same facts, typed
    styles: list[str | None] = []
    details: list[str] = []  # the why of each state, under the table: whole at any width
    for name, m in cfg.models.items():
        why = unavailable.get(name)
        backend = backend_of(providers[name])
        trouble = _recent_trouble(conn, name, backend, cfg.defaults.cooldown.max_seconds)
        # the server's own listing, when it gave one, over the log's last failure there (since pulled, or not yet tried)
        listed = not_served.get(name)
        missing = "" if why else listed if listed is not None else _missing(conn, name, backend)
        cap = m.spend_cap
        if why:
            state, detail = "unavailable", why
        elif cap and spent[name] >= cap.usd:
            state, detail = "over its spend cap", f"{usd(spent[name])} spent, cap ${plain(cap.usd)}/{cap.per} (UTC)"
        elif name in unreachable:
            state, detail = "unreachable", unreachable[name]
        elif name in hung:
            state, detail = "not answering", hung[name]
        elif missing:
            state, detail = "missing on its server", missing
        else:
            state, detail = ("failing", trouble) if trouble else ("available", "")
        slots = str(m.max_concurrent)
        if shared and name in shared[1] and state in ("available", "failing"):
            condition, detail, in_flight, waiting = shared[1][name]  # every process's view (Redis, or serve)
            slots = f"{in_flight}/{m.max_concurrent}" + (f" +{waiting} waiting" if waiting else "")
            state = condition.value
        if detail:
            details.append(f"  {name}: {state}: {detail}")
        if state in ("unreachable", "not answering", "missing on its server", "failing"):
            details += ollama_host.notes(cfg, path, [name])
        per_host = _on_each_host(providers[name]) if shared and shared is not served else ""
        if per_host and name not in unavailable:
            # a laptop's `models` showed its own 0/1 for the embedded model while a gateway host's was busy
            details.append(f"  {name}: {per_host}, so its slots are per host: {slots} is this host's "
                           f"({socket.gethostname()}), not the other hosts'")
        server = parallel.get(name)
        if server is not None and (slots_note := against_slots(name, m.max_concurrent, server)):
            details.append(f"  {name}: {slots_note}")
        # beside the config's slots, those its server runs: 4 configured against `llama-server --parallel 1` read "4"
        shown_slots = slots if server is None or server.value is None else f"{slots} (server {server.value})"
        if m.price_unknown:
            details.append(f"  {name}: no price: a billed model, its requests are logged at $0 and `report` says "
                           "'price unknown' — set price: {input: …, output: …} in USD per million tokens")
        if cap and state != "over its spend cap":
            details.append(f"  {name}: spend cap ${plain(cap.usd)}/{cap.per}, {usd(spent[name])} spent this "
                           f"{cap.per} (UTC)")
        rows.append({"model": name, "state": state, "slots": shown_slots, "where": "local" if m.is_local else "cloud",
                     "used by": _used_by(users.get(name, [])),
                     "price in/out $/M": "unknown" if m.price_unknown else f"{m.price.input:g}/{m.price.output:g}",
                     "memory": f"{m.memory_gb:g} GB" if m.memory_gb else "–",
                     "provider": f"{m.provider} {m.model or ''}".strip()})
        styles.append("red" if state in _BAD_STATES else "yellow" if state == "failing" else None)
        found.append({"model": name, "state": state, "why": detail or None, "slots": slots,
                      "local": m.is_local, "primary_for": [a for a, first in users.get(name, []) if first],
                      "fallback_for": [a for a, first in users.get(name, []) if not first],
                      "price": {"input": m.price.input, "output": m.price.output}, "price_known": not m.price_unknown,
                      "memory_gb": m.memory_gb,
                      "provider": m.provider, "provider_model": m.model or None,
                      "slots_per_host": bool(per_host),
                      "server_parallel": ({"value": server.value, "how": server.how} if server is not None
                                          else None),
                      "spend_cap": ({"usd": cap.usd, "per": str(cap.per), "spent_usd": spent[name]} if cap
                                    else None)})
    if not reach:  # a server down read 'available', exit 0, and nothing said that no server had been asked
        details.append("servers not tried (--no-reach): 'available' says only that nothing in the config or the log "
                       "stops a model — without --no-reach, each model's server is connected to")
    if as_json:
        console.out(json.dumps({"models": found, "limits": shared[0] if shared else None,
                                "limited_apart": apart or None, "servers_tried": reach}, indent=2), highlight=False)
    else:
        console.print("models", highlight=False)
        table = fit_table(MODEL_COLUMNS, rows, console.width, styles)
        console.print(table)
        for line in details:  # wrapped at the terminal's width (a word-wrapped line, not one the terminal cuts)
            console.print(line, highlight=False, markup=False, soft_wrap=False)
        if shared:
            console.print(shared[0], highlight=False, markup=False, soft_wrap=False)
        if apart:
            console.print(apart, highlight=False, markup=False, soft_wrap=False)
        if gone := left_out(MODEL_COLUMNS, table):
            console.print(gone, highlight=False, markup=False, soft_wrap=False)
        if default := embedded_default_note(path):
            console.print(default, highlight=False, markup=False, soft_wrap=False)
        if unread := unread_here_note(path):
            console.print(unread, highlight=False, markup=False, soft_wrap=False)
    # every reason said, one line each; the status is the gravest: none answers (3), else the view incomplete (1)
    silent = _none_answers(found)
    said = [fail(silent, code=NONE_ANSWERS)] if silent else []
    if (unread := conn.unread) is not None:
        said.append(fail(unread, code=1))
    elif blind is not None:  # it exited 0, as if the slots shown were every process's; the reason is in the caption
        store = blind.partition("): ")[0] + ")"
        said.append(fail(f"{store} could not be read (why: the line above, or \"limits\" in --json): the slots shown "
                         "are the config's limits, not what the processes sharing them hold", code=1))
    if said:
        raise said[0]


#: ``models``' exit status when no configured model can answer now (every one unreachable, unavailable, missing on
#: its server, over its spend cap or cooling down): it was 0, and a script or a monitor (`modelyard models || alert`)
#: was told all was well with every server down. Not 1, which says the listing is incomplete (the shared log or Redis
#: could not be read) — a monitor pages on this one, and may only warn on that
NONE_ANSWERS = 3
#: the states in which a model takes a request now (``failing``: it did lately, and is still tried)
_ANSWERING = ("available", "failing", "probing", "busy")


def _none_answers(found: list[dict[str, Any]]) -> str:
    """What to say when no model of the config can answer now ("" when one can)."""
    if not found or any(m["state"] in _ANSWERING for m in found):
        return ""
    counts: dict[str, int] = {}
    for m in found:
        counts[m["state"]] = counts.get(m["state"], 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in counts.items())
    return (f"no configured model can answer now ({states}): each one's reason is in the listing — start "
            "its server or fix its endpoint, set its key, or add a model that answers to the config")


def _on_each_host(provider: Any) -> str:
    from modelyard.router.shared.namespaces import on_each_host  # the redis package: only with shared state

    return on_each_host(provider)


def _limited_apart(cfg: Config, conn: LogConnection) -> str:
    """With a PostgreSQL log: the hosts writing to it that use another shared state than this one (another Redis
    server, database or prefix, or none) — they limit the same models apart, and no Redis can show it."""
    settings = state_settings(cfg)
    mine = presence.fingerprint(settings.url if settings else None, settings.prefix if settings else "",
                                socket.gethostname())
    servers: list[str] = []
    if settings is not None:
        from modelyard.router.shared.link import read_server_id  # the redis package: only with shared state

        servers = [run] if (run := asyncio.run(read_server_id(settings))) else []
    try:
        found = presence.look(conn, mine, servers)
    except Exception:  # a courtesy: the listing does not depend on it
        return ""
    return " ".join(f"shared state: {presence.sentence(differ, mine)}"
                    for differ in (found.apart, found.one_at_a_time) if differ)


def _serve_view(cfg: Config, path: Path) -> tuple[str, dict]:
    """Without Redis: where ask/chat/telegram keep their limits — borrowed from the running serve of
    this config (and every model's live state there), or in each process."""
    pool = ModelPool(cfg, providers={}, borrow_from=path)

    async def look() -> tuple[str, dict]:
        await pool.peek()
        try:
            caption = f"limits of ask, chat, telegram: {pool.describe_state()}"
            if pool.serve is None or not pool.serve.up:
                return caption, {}
            return caption, {name: state.snapshot() for name, state in pool.states.items() if name in pool.serve.limits}
        finally:
            await pool.aclose()

    return asyncio.run(look())


def _shared_view(cfg: Config) -> tuple[str, dict] | None:
    """With ``state: redis://…``: a caption about the store, and every model's live state as all
    processes see it (empty when the store cannot be reached: the log's view stays)."""
    try:
        settings = state_settings(cfg)
    except ConfigError as exc:
        raise fail(config_said(exc)) from None
    if settings is None:
        return None
    pool = ModelPool(cfg, providers={}, shared=settings)
    asyncio.run(pool.peek())
    status = pool.state_status()
    assert status is not None
    caption = f"shared state {status.url} (prefix {status.prefix}): {status.detail.split('; on_outage')[0]}"
    if not status.up:
        return caption, {}
    return caption, {name: state.snapshot() for name, state in pool.states.items()}


#: ``log``'s columns in display order; the number is the priority (what a narrow terminal keeps first)
LOG_COLUMNS = [
    Column("id", 0), Column("time", 6), Column("host", 6), Column("agent", 1), Column("model", 2), Column("outcome", 3),
    Column("why", 4), Column("wait", 11, "right"), Column("TTFT", 10, "right"), Column("total", 5, "right"),
    Column("tok in/out", 9, "right"), Column("tok/s", 8, "right"), Column("cost", 12, "right"),
    Column("ok?", 7), Column("prompt", 13, flexible=True),
]
#: below this width ``log`` shows ids by their first 8 characters (``rate`` takes a unique prefix)
FULL_ID_WIDTH = 120


def _time_cell(ts: float, today: bool) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S" if today else "%m-%d %H:%M:%S")


def _outcome_cell(r: Any) -> str:
    """The outcome, plus ``(length)`` for an answer cut off at its token limit: it looks whole otherwise; and
    ``(embeddings)`` for vectors, which have no output tokens nor text (a request of no other kind says nothing)."""
    try:
        cut = r["finish_reason"] == LENGTH
    except (IndexError, KeyError):  # a log from before the column existed
        cut = False
    try:
        kind = r["kind"]
    except (IndexError, KeyError):
        kind = None
    if kind == RequestKind.EMBEDDINGS:
        return f"{r['outcome']} ({RequestKind.EMBEDDINGS})"
    return f"{r['outcome']} ({LENGTH})" if cut else r["outcome"]


def _request_cells(r: Any, today: bool, id_chars: int, unpriced: bool = False) -> dict[str, str]:
    return {"id": r["id"][:id_chars], "time": _time_cell(r["ts"], today), "agent": r["agent"],
            "model": r["model"] or "–", "outcome": _outcome_cell(r), "why": r["fallback_reason"] or "",
            "wait": ms(r["queue_wait_ms"]),
            "TTFT": ms(r["ttft_ms"]), "total": ms(r["total_ms"]), "tok in/out": f"{r['tokens_in']}/{r['tokens_out']}",
            "tok/s": f"{r['tokens_per_s']:.1f}" if r["tokens_per_s"] else "–",
            # a billed model without a price logged $0: 'price unknown', as `report` says it
            "cost": spend_cell(r["cost_usd"], True) if unpriced else request_cost(r["cost_usd"]),
            "ok?": {None: "", 1: "👍", 0: "👎"}[r["acceptable"]], "prompt": " ".join((r["prompt"] or "").split()),
            "host": _host_cell(r)}


def _host_cell(r: Any) -> str:
    try:
        return r["host"] or "–"
    except (IndexError, KeyError):  # a log from before the column existed
        return "–"


def _attempt_cells(a: Any) -> dict[str, str]:
    return {"id": "  ↳", "model": a["model"], "outcome": a["outcome"], "why": a["reason"] or "",
            "wait": ms(a["queue_wait_ms"]), "TTFT": ms(a["ttft_ms"]), "total": ms(a["duration_ms"]),
            "tok in/out": f"{a['tokens_in']}/{a['tokens_out']}", "prompt": " ".join((a["detail"] or "").split())}


def _known(conn: LogConnection, cfg: Config, kind: str, value: str | None) -> None:
    """Refuse an agent/model filter that names nothing the config or the log knows (it would only ever
    show an empty table), listing the ones that exist."""
    if value is None:
        return
    configured = cfg.agents if kind == "agent" else cfg.models
    if value in configured:
        return
    allowed = sorted(set(configured) | set(queries.distinct(conn, kind)))
    if value in allowed:
        return
    # `log --model llama3.2:3b`, as `ollama list` and the server's answers name it: the log keeps the config's name
    entry = entry_of_provider_id(value, {n: m.model for n, m in cfg.models.items()}) if kind == "model" else None
    hint = (f" ('{value}' is the provider's id of '{entry}': the log names models as the config does — "
            f"--model {entry})" if entry else did_you_mean(value, allowed))
    raise fail(f"unknown {kind} '{value}'{hint}: choose from {', '.join(allowed)}")


def _request_outcome(value: str | None) -> RequestOutcome | None:
    """``--outcome``'s value as a RequestOutcome, any case. Parsed here, not by typer's Enum choice: that said
    ``'failure' is not one of 'ok', …`` and no nearest one — ``failure`` and ``error`` are what a newcomer types."""
    if value is None:
        return None
    try:
        return RequestOutcome(value.strip().lower())
    except ValueError:
        names = [str(o) for o in RequestOutcome]
        hint = did_you_mean(value, names) or _OUTCOME_WORDS.get(value.strip().lower(), "")
        raise fail(f"'{value}' is not an outcome{hint}: choose from {', '.join(names)}") from None


#: words for an outcome a request log does not use, and the one it does ("did you mean" cannot see `success` → ok)
_OUTCOME_WORDS = {word: f" (did you mean '{outcome}'?)" for word, outcome in (
    ("success", RequestOutcome.OK), ("succeeded", RequestOutcome.OK), ("answered", RequestOutcome.OK),
    ("error", RequestOutcome.FAILED), ("errors", RequestOutcome.FAILED), ("fail", RequestOutcome.FAILED),
    ("fallbacks", RequestOutcome.FALLBACK), ("canceled", RequestOutcome.CANCELLED))}


def log(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many requests, newest first")] = 20,
    agent: Annotated[str | None, typer.Option("--agent", help="an agent of the config or of the log")] = None,
    model: Annotated[str | None, typer.Option("--model", help="requests a model answered (of the config or of the "
                                                               "log)")] = None,
    outcome: Annotated[str | None, typer.Option(
        "--outcome", metavar="OUTCOME",
        help=f"only requests that ended so: {', '.join(RequestOutcome)}")] = None,
    host: Annotated[str | None, typer.Option("--host", help="requests one host answered (a shared log has "
                                                             "every host's)")] = None,
    attempts: Annotated[bool, typer.Option("--attempts", help="show every attempt under each request")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array of requests, each with its attempts")]
    = False,
) -> None:
    """Recent requests, newest first, with the route each took (the columns that fit the terminal)."""
    cfg, _ = load_or_exit(config)
    conn = log_or_exit(cfg)
    ended = _request_outcome(outcome)
    _known(conn, cfg, "agent", agent)
    _known(conn, cfg, "model", model)
    if host is not None and host not in (hosts := queries.distinct(conn, "host")):
        raise fail(f"unknown host '{host}': the log has rows from {', '.join(sorted(hosts)) or 'no named host'}")
    rows = queries.recent(conn, limit, agent=agent, model=model, outcome=ended.value if ended else None,
                          host=host)
    if as_json:
        out = [{**dict(r), "attempts": [dict(a) for a in queries.attempts_for(conn, r["id"])]} for r in rows]
        console.out(json.dumps(out, indent=2, default=str), highlight=False)
        return
    midnight = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    today = all(r["ts"] >= midnight for r in rows)
    unpriced = queries.unpriced_requests(conn, [r["id"] for r in rows], billed_at_zero, Billing.of(cfg).billed)
    width = console.width
    cells: list[dict[str, str]] = []
    styles: list[str | None] = []
    for r in rows:
        cells.append(_request_cells(r, today, 100 if width >= FULL_ID_WIDTH else 8, r["id"] in unpriced))
        styles.append(None)
        if attempts:
            for a in queries.attempts_for(conn, r["id"]):
                cells.append(_attempt_cells(a))
                styles.append("dim")
    console.print(f"routing log: {LogStore.of(cfg).where}", style="italic", soft_wrap=False, highlight=False,
                  markup=False)
    if not rows:  # not an empty table: what is empty, and how it fills
        said = ("no request matches these filters" if agent or model or outcome else
                "no requests yet: `modelyard ask \"hello\"` makes one")
        if model and (n := queries.tried(conn, model))[0]:  # --model is who answered: one that only failed was tried
            said = (f"no request {model} answered matches these filters (--model is the answering model); it was tried "
                    f"{n[0]} time{'s' if n[0] != 1 else ''} in the log, {n[1]} failed — `modelyard log --attempts` "
                    "shows every attempt")
        console.print(said, highlight=False, markup=False)
        return
    # the host only when the rows come from several (a shared PostgreSQL log): one host's log needs no column
    several = len({c.get("host") for c in cells if c.get("host") not in (None, "–")}) > 1
    console.print(fit_table([c for c in LOG_COLUMNS if several or c.name != "host"], cells, width, styles))


#: stats's columns after the name, in display order, with the priority that keeps them on a narrow terminal
STATS_COLUMNS = (("requests", 1), ("failed", 3), ("p50", 2), ("p95", 5), ("fallback rate", 4), ("local share", 7),
                 ("tok/s", 8), ("tokens in/out", 10), ("cost", 6), ("acceptable", 9))


def stats(
    config: ConfigOption = None,
    days: Annotated[float | None, typer.Option("--days", help="only the last N days (default: all)", min=0.001)]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help='print {"agents": [...], "models": [...]}')] = False,
) -> None:
    """Per agent and per model: requests, latency, fallback rate, local share, tokens/s, cost."""
    cfg, _ = load_or_exit(config)
    conn = log_or_exit(cfg)
    since = time.time() - days * 86400 if days else None
    groups = {by: queries.stats(conn, since, by=by, attempts=True) for by in ("agent", "model")}
    from modelyard.router.shared import log_places

    if elsewhere := log_places.logged_elsewhere_for(cfg, conn, days * 86400 if days else log_places.KEEP):
        note(elsewhere)  # hosts on these slots whose requests this log lacks (two hosts without log.url)
    # who had attempts on a billed model without a price: their cost is 'price unknown', as `report` says it
    costs = log_costs(conn, cfg, since or 0.0, math.inf, 0.0)
    # per model, per server: the cloud's "price unknown" is not the local relay's of the same name
    unpriced = {"agent": lambda g: g.key in costs.unpriced_agents,
                "model": lambda g: costs.unpriced_on(g.key, g.server)}
    if as_json:  # the same names as `report --json`'s agents and models
        out = {f"{by}s": [g.summary() for g in found] for by, found in groups.items()}
        console.out(json.dumps(out, indent=2), highlight=False)
        return
    if not any(groups.values()):  # not two empty tables: what is empty, and how it fills
        console.print(f"no requests in the routing log{f' in the last {days:g} days' if days else ''} "
                      f"({LogStore.of(cfg).where}): `modelyard ask \"hello\"` makes one", highlight=False,
                      markup=False)
        return
    for by, found in groups.items():
        # whole columns that fit the terminal, as `log` does: at 80 columns a squeezed p50 of 3717ms read "371…"
        columns = [Column(by, 0), *(Column(name, rank, "right") for name, rank in STATS_COLUMNS)]
        # per model, failed counts its failed attempts (a failed request has no model: the (none) row counts those)
        cells = [{by: g.label, "requests": str(g.requests), "p50": ms(g.p50),
                  "failed": str(g.failed_attempts if by == "model" and g.key != "(none)" else g.failed),
                  "p95": p95_cell(g.p95, len(g.latencies)), "fallback rate": share(g.fallbacks, g.requests),
                  "local share": share(g.local, g.served),
                  "tok/s": f"{g.tokens_per_s:.1f}" if g.tokens_per_s else "–",
                  "tokens in/out": f"{g.tokens_in}/{g.tokens_out}",
                  "cost": spend_cell(g.spend, unpriced[by](g)),
                  "acceptable": f"{g.acceptable}/{g.rated}" if g.rated else "–"} for g in found]
        table = fit_table(columns, cells, console.width)
        split = " @ server: the name was on several servers" if any(g.server for g in found) else ""
        title = f"by model (failed: its failed attempts; (none): requests no model answered{split})"
        console.print(title if by == "model" else f"by {by}", style="bold", highlight=False)
        console.print(table)
        if left := left_out(columns, table):
            console.print(left, style="dim", highlight=False, soft_wrap=False)


def rate(
    request_id: Annotated[str, typer.Argument(help="Request id (or a unique prefix), as printed by ask/log")],
    verdict: Annotated[str, typer.Argument(help="good or bad")],
    config: ConfigOption = None,
    agent: Annotated[str | None, typer.Option(
        "--agent", help="With bad: the agent that should have answered (a routing correction)")] = None,
) -> None:
    """Record whether an answer was acceptable (feeds the report's recommendations). On an answer the
    orchestrator routed, good confirms its choice and bad --agent X corrects it: both become labels
    for `modelyard routing learn`."""
    if verdict not in ("good", "bad"):
        raise fail("verdict must be 'good' or 'bad'")
    if agent is not None and verdict == "good":
        raise fail("--agent names the agent that should have answered: use it with 'bad'")
    cfg, _ = load_or_exit(config)
    if agent is not None:  # checked before anything is recorded: a wrong name leaves the log as it was
        from modelyard.agents.topology import orchestrator_name, routing_targets  # with the classifier: rate's alone

        name = orchestrator_name(cfg)
        targets = routing_targets(cfg, name) if name else []
        if agent not in targets:
            raise fail(f"'{agent}' is not an agent the orchestrator routes to{did_you_mean(agent, targets)}"
                       f" ({', '.join(targets) or 'none'})")
    conn = log_or_exit(cfg)
    full = queries.rate(conn, request_id, verdict == "good")
    if full is None:
        raise fail(f"'{request_id}' starts several request ids: give more of it (`modelyard log` shows them)"
                   if queries.ambiguous(conn, request_id) else
                   f"no request has the id '{request_id}' (`modelyard log` shows the recent ones)")
    console.print(f"rated {full}: {verdict}")
    if verdict == "good" or agent is not None:
        _label_route(cfg, full, agent)


def _label_route(cfg: Config, request_id: str, agent: str | None) -> None:
    """A rating of a routed answer is a routing label, made from the decision in this host's SQLite file
    (with ``log.url`` forwarded to PostgreSQL like the requests): good confirms the agent chosen, bad
    --agent names the right one."""
    # the routing code (the classifier with it) only here: `log`, `stats` and `models` share this module
    from modelyard.agents.learning import record_correction
    from modelyard.agents.topology import orchestrator_name, routing_targets

    conn = local_log_or_exit(cfg)
    try:
        routed = decision_of(conn, request_id)
        if routed is None:
            if agent is not None:
                note(f"{request_id} was asked of its agent directly, not routed by the orchestrator: "
                     "the rating is kept, no routing label recorded")
            return
        name = orchestrator_name(cfg)
        targets = routing_targets(cfg, name) if name else []
        if record_correction(conn, request_id, agent or routed[1], LabelSource.RATE, targets):
            console.print(f"[dim]routing label recorded: {agent or routed[1]} (see `modelyard routing learn`)[/]")
    finally:
        conn.close()
