"""Load through the real gateway process: misbehaving backends, many clients, and the figures.

The gateway runs as ``python -m modelyard serve`` in its own process (so its memory can be
measured and it can be killed with SIGKILL); the fake backends run in this process, each
drawing a fault for every request from a seeded random mix. Every request gets a unique
marker in its prompt, so the routing log can be checked against what the clients saw.

Used by tests/reliability/test_load.py (short profile, inside pytest) and by
tests/reliability/run_profiles.py (long, soak and crash profiles, one command each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from tests.fakes import Fault
from tests.fakes.faults import FaultScript
from tests.reliability.kit import ANTHROPIC_ENV, ANTHROPIC_KEY, EXHAUSTED, backends, models_for

from modelyard.ledger import connect

AGENT = "chain"
PRIMARY = "fast"
#: bounds of the load chain: every hang ends at one of these
TIMEOUTS = {"queue": 1.0, "connect": 1.0, "first_token": 1.0, "idle": 0.5, "total": 8.0}
#: a client gives up (and counts the request as lost) only well past the gateway's own bound
CLIENT_TIMEOUT = TIMEOUTS["total"] + 20
SLOTS = {"fast_slots": 2, "backup_slots": 4, "cloud_slots": 16}
#: characters of the huge_line / huge_answer shapes: over the shape profile's max_response_mb (~50 KB)
HUGE = 120_000
SHAPES_MAX_RESPONSE_MB = 0.05

#: (weight, fault) — mostly healthy, every kind of misbehaviour present
MIX: list[tuple[float, Fault]] = [
    (80, Fault.ok()), (4, Fault.delay(0.2)), (2, Fault.drip(0.02)), (2, Fault.status(500)), (1, Fault.status(502)),
    (2, Fault.status(529)), (1, Fault.status(503)), (1, Fault.status(429, retry_after=1)),
    (2, Fault.drop_midstream()), (1, Fault.error_midstream()), (1, Fault.invalid_json()),
    (1, Fault.hang_before_headers()), (1, Fault.hang_after_first_token()), (1, Fault.drip(0.8)),
]


#: issue 8's shapes, mixed (``--mix shapes``): what real servers and proxies send that the timing mix does
#: not — an emoji split in two UTF-16 halves, no choices, content as parts, a 200 that is not a stream,
#: one line larger than max_response_mb, a missing model (404, cools the model down), 429 with retry-after
SHAPE_MIX: list[tuple[float, Fault]] = [
    (120, Fault.ok()), (5, Fault.shape("split_surrogate")), (3, Fault.shape("lone_surrogate")),
    (5, Fault.shape("no_choices", "empty")), (3, Fault.shape("no_choices", "missing")),
    (5, Fault.shape("content_parts", "text")), (2, Fault.shape("content_parts", "thinking")),
    (2, Fault.shape("content_parts", "image")), (3, Fault.shape("not_a_stream", "html")),
    (2, Fault.shape("not_a_stream", "json")), (2, Fault.shape("not_a_stream", "json_error")),
    (3, Fault.shape("huge_line", size=HUGE)), (1, Fault.shape("huge_answer", size=HUGE)),
    # a missing model cools down for max_seconds (4 s here): rare, or it would empty the chain for the whole run
    (0.3, Fault.status(404, message="model not found")), (2, Fault.status(429, retry_after=1)),
    (2, Fault.shape("invalid_utf8")), (2, Fault.shape("keepalive")), (1, Fault.shape("gzip")),
    (1, Fault.shape("line_endings", "crlf")), (1, Fault.shape("line_endings", "cr")), (1, Fault.shape("no_space")),
    (1, Fault.shape("odd_usage")), (1, Fault.shape("unknown_events")), (1, Fault.status(502, html=True)),
]
MIXES = {"timing": MIX, "shapes": SHAPE_MIX}


class RandomFaults(FaultScript):
    """A fault per request drawn from a mix (:data:`MIX` by default) with a seeded generator (thread-safe)."""

    def __init__(self, seed: int, mix: list[tuple[float, Fault]] | None = None):
        super().__init__()
        mix = mix or MIX
        self._rng = random.Random(seed)
        self._weights = [w for w, _ in mix]
        self._faults = [f for _, f in mix]

    def next(self) -> Fault:
        with self._lock:
            return self._rng.choices(self._faults, self._weights)[0]


@contextlib.contextmanager
def misbehaving_backends(seed: int, mix: list[tuple[float, Fault]] | None = None) -> Iterator[tuple[Any, Any, Any]]:
    with backends(chunk_interval=0.002) as servers:
        for n, server in enumerate(servers):
            server.faults = RandomFaults(seed * 10 + n, mix)
        yield servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, servers, *, db: Path | None = None, extra: dict[str, Any] | None = None,
                 max_response_mb: float | None = None) -> Path:
    oa, ol, an = servers
    models = models_for(oa.url, ol.url, an.url, **SLOTS)
    if max_response_mb is not None:
        for model in models.values():
            model["max_response_mb"] = max_response_mb
    data: dict[str, Any] = {
        "models": models,
        "agents": {AGENT: {"primary": "fast", "fallbacks": ["backup", "cloud"]}},
        "defaults": {"timeouts": TIMEOUTS, "retries": {"attempts": 0},
                     "cooldown": {"failures": 5, "seconds": 1, "max_seconds": 4}},
        "log": {"path": str(db or directory / "log.db")},
        **(extra or {}),
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class GatewayProcess:
    """``python -m modelyard serve`` as a child process, with its output captured to files."""

    def __init__(self, config: Path, directory: Path, *, host: str = "127.0.0.1", port: int | None = None,
                 env: dict[str, str] | None = None, access_log: bool = False, log_level: str = "warning"):
        self.config, self.directory, self.host = config, directory, host
        self.port = port or free_port()
        self.env = {**os.environ, ANTHROPIC_ENV: ANTHROPIC_KEY, **(env or {})}
        self.args = [sys.executable, "-m", "modelyard", "serve", "--config", str(config), "--host", host,
                     "--port", str(self.port), "--log-level", log_level]
        if not access_log:
            self.args.append("--no-access-log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"  # always connect via loopback, whatever the bind address

    #: only a hang-guard: at load 17 on 2 cores a serve took over 30 s to import and answer /healthz (tests/lending)
    START_TIMEOUT = 180.0

    def start(self, timeout: float = START_TIMEOUT) -> GatewayProcess:
        self.starts += 1
        out = (self.directory / f"gateway-{self.starts}.out").open("wb")
        err = (self.directory / f"gateway-{self.starts}.err").open("wb")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=err, env=self.env)
        out.close()
        err.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()  # one that never answered is not left running (nor its Popen unwaited for)
                raise RuntimeError(f"gateway did not start: {self.output()[-2000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        parts = []
        for f in sorted(self.directory.glob("gateway-*.out")) + sorted(self.directory.glob("gateway-*.err")):
            parts.append(f.read_text(errors="replace"))
        return "\n".join(parts)

    def rss(self) -> int:
        assert self.proc is not None
        try:
            return psutil.Process(self.proc.pid).memory_info().rss
        except psutil.Error:
            return 0

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class MemorySampler:
    """Samples the gateway's RSS in a thread: the peak, and the series over time for the soak."""

    def __init__(self, gateway: GatewayProcess, every: float = 0.25):
        self.gateway, self.every = gateway, every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.gateway.rss()
            if rss:
                self.samples.append((time.monotonic() - self._t0, rss))
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak(self) -> int:
        return max((r for _, r in self.samples), default=0)


@dataclass
class Result:
    index: int
    kind: str  # ok | fallback | error | lost
    latency: float
    status: int = 0
    request_id: str | None = None
    model: str | None = None
    detail: str = ""


def _classify(i: int, stream: bool, r: httpx.Response, latency: float) -> Result:
    rid, model = r.headers.get("x-modelyard-request-id"), r.headers.get("x-modelyard-model")
    if rid is None:
        return Result(i, "lost", latency, r.status_code, detail=f"no request id: {r.text[:200]}")
    if r.status_code in EXHAUSTED:
        err = r.json().get("error", {})
        kind = "error" if err.get("code") == EXHAUSTED[r.status_code] and err.get("message") else "lost"
        return Result(i, kind, latency, r.status_code, rid, None, err.get("message", "")[:200])
    if r.status_code != 200:
        return Result(i, "lost", latency, r.status_code, rid, detail=r.text[:200])
    if stream:
        last = r.text.rstrip().rsplit("\n", 1)[-1]
        if last == "data: [DONE]":
            return Result(i, "ok" if model == PRIMARY else "fallback", latency, 200, rid, model)
        payload = json.loads(last.removeprefix("data: "))
        ok = payload.get("error", {}).get("code") == "stream_interrupted"
        return Result(i, "error" if ok else "lost", latency, 200, rid, model, last[:200])
    content = r.json()["choices"][0]["message"]["content"]
    if not content:
        return Result(i, "lost", latency, 200, rid, model, "empty answer")
    return Result(i, "ok" if model == PRIMARY else "fallback", latency, 200, rid, model)


def _classify_responses(i: int, stream: bool, r: httpx.Response, latency: float) -> Result:
    """``/v1/responses``: errors as for chat; an answer ends in response.completed (or .incomplete), a
    stream that broke off after its commit point in response.failed with a message."""
    if r.status_code != 200 or "x-modelyard-request-id" not in r.headers:
        return _classify(i, stream, r, latency)
    rid, model = r.headers["x-modelyard-request-id"], r.headers.get("x-modelyard-model")
    answered = "ok" if model == PRIMARY else "fallback"
    if stream:
        last = json.loads(r.text.rstrip().rsplit("\n", 1)[-1].removeprefix("data: "))
        if last.get("type") in ("response.completed", "response.incomplete"):
            return Result(i, answered, latency, 200, rid, model)
        failed = last.get("type") == "response.failed" and last["response"]["error"]["message"]
        return Result(i, "error" if failed else "lost", latency, 200, rid, model, str(last)[:200])
    body = r.json()
    texts = [p["text"] for item in body["output"] if item["type"] == "message" for p in item["content"]]
    if body["status"] not in ("completed", "incomplete") or not "".join(texts):
        return Result(i, "lost", latency, 200, rid, model, "empty or unfinished response")
    return Result(i, answered, latency, 200, rid, model)


async def _client_loop(client: httpx.AsyncClient, next_index, n: int, stream_share: float, seed: int,
                       results: list[Result], marker: str, responses_share: float = 0.0) -> None:
    while True:
        i = next_index()
        if i >= n:
            return
        rng = random.Random(seed * 1_000_003 + i)
        stream = rng.random() < stream_share
        prompt = f"{marker}-{i}"
        responses = rng.random() < responses_share
        start = time.perf_counter()
        try:
            if responses:  # the Responses API, on the same router path
                r = await client.post("/v1/responses", json={"model": AGENT, "stream": stream, "input": prompt,
                                                              "max_output_tokens": 32})
                results.append(_classify_responses(i, stream, r, time.perf_counter() - start))
                continue
            r = await client.post("/v1/chat/completions", json={
                "model": AGENT, "stream": stream, "max_tokens": 32, "messages": [{"role": "user", "content": prompt}]})
            results.append(_classify(i, stream, r, time.perf_counter() - start))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            results.append(Result(i, "lost", time.perf_counter() - start, detail=f"{type(exc).__name__}: {exc}"))


async def run_load(url: str, n: int, concurrency: int, *, seed: int = 1, stream_share: float = 0.3,
                   marker: str = "load", results: list[Result] | None = None,
                   responses_share: float = 0.0) -> list[Result]:
    """``n`` requests from ``concurrency`` clients (each one connection, one request at a time);
    ``results`` (if given) fills up while the load runs; ``responses_share`` of them use /v1/responses."""
    results = [] if results is None else results
    counter = iter(range(n + concurrency))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as client:
        await asyncio.gather(*(_client_loop(client, lambda: next(counter), n, stream_share, seed, results, marker,
                                            responses_share) for _ in range(concurrency)))
    return sorted(results, key=lambda r: r.index)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class LogCheck:
    rows: int
    missing_ids: list[str]
    duplicates: int
    integrity: str
    outcomes: dict[str, int] = field(default_factory=dict)
    #: the gateway's own view (routing log total_ms): excludes HTTP accept/parse and client-side delays
    router_ms: tuple[float, float, float] = (0.0, 0.0, 0.0)


def check_log(db: Path, results: list[Result], marker: str = "load") -> LogCheck:
    """Every request id a client saw is in the log; one row per request; the file is sound."""
    conn = connect(db, readonly=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = conn.execute("SELECT id, prompt, outcome, total_ms FROM requests WHERE prompt LIKE ?",
                            (marker + "-%",)).fetchall()
    finally:
        conn.close()
    ids = {r["id"] for r in rows}
    prompts = Counter(r["prompt"] for r in rows)
    missing = [r.request_id for r in results if r.request_id and r.request_id not in ids]
    totals = [r["total_ms"] or 0.0 for r in rows]
    return LogCheck(len(rows), missing, sum(c - 1 for c in prompts.values()), integrity,
                    dict(Counter(r["outcome"] for r in rows)),
                    (percentile(totals, 50), percentile(totals, 99), max(totals, default=0.0)))


@dataclass
class Figures:
    requests: int
    concurrency: int
    seconds: float
    counts: dict[str, int]
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float
    log: LogCheck
    lost_details: list[str] = field(default_factory=list)
    #: clear errors by HTTP status (200: a stream that ended in an error event)
    error_statuses: dict[int, int] = field(default_factory=dict)
    #: lines of the gateway's own output that report an error (should be none)
    gateway_errors: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.counts.get("lost", 0)

    def rows(self) -> list[tuple[str, str]]:
        c = self.counts
        return [
            ("requests / concurrent clients", f"{self.requests} / {self.concurrency}"),
            ("wall time", f"{self.seconds:.1f} s ({self.requests / self.seconds:.0f} req/s)"),
            ("answered by the primary (max_concurrent 2)", str(c.get("ok", 0))),
            ("answered by a fallback", str(c.get("fallback", 0))),
            ("failed with a clear error (4xx/5xx naming the attempts / stream error event)", str(c.get("error", 0))
             + (" — by status " + ", ".join(f"{s}: {k}" for s, k in sorted(self.error_statuses.items()))
                if self.error_statuses else "")),
            ("lost (no HTTP response or unclear answer)", str(self.lost)),
            ("latency p50 / p99, as the clients saw it", f"{self.p50_ms:.0f} ms / {self.p99_ms:.0f} ms"),
            ("latency p50 / p99 / max in the routing log", " / ".join(f"{v:.0f}" for v in self.log.router_ms) + " ms"),
            ("gateway peak RSS", f"{self.peak_rss_mb:.0f} MB"),
            ("log rows vs requests", f"{self.log.rows} / {self.requests} (duplicates {self.log.duplicates})"),
            ("client-seen request ids missing from the log", str(len(self.log.missing_ids))),
            ("PRAGMA integrity_check", self.log.integrity),
        ]

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in self.rows())


def figures(results: list[Result], concurrency: int, seconds: float, peak: int, log: LogCheck) -> Figures:
    latencies = [r.latency * 1000 for r in results]
    counts = dict(Counter(r.kind for r in results))
    lost = [f"#{r.index} {r.status} {r.detail}" for r in results if r.kind == "lost"][:10]
    errors = dict(Counter(r.status for r in results if r.kind == "error"))
    return Figures(len(results), concurrency, seconds, counts, percentile(latencies, 50), percentile(latencies, 99),
                   peak / 2**20, log, lost, errors)


def load_profile(directory: Path, n: int, concurrency: int, *, seed: int = 1, mix: str = "timing") -> Figures:
    """Backends, gateway process, the load, the log check: the figures of one run. ``mix``: ``timing``
    (stalls, drips, statuses, resets) or ``shapes`` (issue 8's odd bodies, with a small max_response_mb)."""
    limit = SHAPES_MAX_RESPONSE_MB if mix == "shapes" else None
    with misbehaving_backends(seed, MIXES[mix]) as servers:
        gateway = GatewayProcess(write_config(directory, servers, max_response_mb=limit), directory).start()
        try:
            with MemorySampler(gateway) as mem:
                t0 = time.perf_counter()
                # the shapes mix also sends a third of its requests through /v1/responses
                share = 0.33 if mix == "shapes" else 0.0
                results = asyncio.run(run_load(gateway.url, n, concurrency, seed=seed, responses_share=share))
                seconds = time.perf_counter() - t0
        finally:
            gateway.stop()
    out = figures(results, concurrency, seconds, mem.peak, check_log(directory / "log.db", results))
    out.gateway_errors = error_lines(gateway.output())
    return out


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "Traceback" in line or "ERROR" in line or "Exception" in line]


@dataclass
class SoakFigures:
    minutes: float
    requests: int
    counts: dict[str, int]
    samples: list[tuple[float, int]]
    log: LogCheck

    def quarter_medians_mb(self) -> tuple[float, float]:
        rss = [r for _, r in self.samples]
        q = max(1, len(rss) // 4)
        return statistics.median(rss[:q]) / 2**20, statistics.median(rss[-q:]) / 2**20

    def table(self) -> str:
        first, last = self.quarter_medians_mb()
        lines = [f"soak: {self.minutes:.1f} min, {self.requests} requests, outcomes {self.counts}",
                 f"RSS median first quarter {first:.1f} MB, last quarter {last:.1f} MB "
                 f"({(last - first) / first * 100:+.1f}%)",
                 f"log rows {self.log.rows} / {self.requests}, missing ids {len(self.log.missing_ids)}, "
                 f"integrity {self.log.integrity}", "memory over time (minute: MB):"]
        per_minute: dict[int, list[int]] = {}
        for t, r in self.samples:
            per_minute.setdefault(int(t // 60), []).append(r)
        lines += [f"  {m:>3}: {statistics.median(v) / 2**20:.1f}" for m, v in sorted(per_minute.items())]
        return "\n".join(lines)


def soak_profile(directory: Path, minutes: float, concurrency: int = 50, *, seed: int = 3,
                 sample_every: float = 5.0) -> SoakFigures:
    """Steady load for ``minutes``: batches of requests back to back, RSS sampled throughout."""
    with misbehaving_backends(seed) as servers:
        gateway = GatewayProcess(write_config(directory, servers), directory).start()
        results: list[Result] = []
        try:
            with MemorySampler(gateway, every=sample_every) as mem:
                end = time.monotonic() + minutes * 60
                batch = 0
                while time.monotonic() < end:
                    got = asyncio.run(run_load(gateway.url, 1000, concurrency, seed=seed + batch,
                                               marker=f"soak{batch}"))
                    results += got
                    batch += 1
        finally:
            gateway.stop()
    conn = connect(directory / "log.db", readonly=True)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM requests WHERE prompt LIKE 'soak%'").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = {r[0] for r in conn.execute("SELECT id FROM requests")}
    finally:
        conn.close()
    missing = [r.request_id for r in results if r.request_id and r.request_id not in ids]
    log = LogCheck(rows, missing, 0, integrity)
    return SoakFigures(minutes, len(results), dict(Counter(r.kind for r in results)), mem.samples, log)


@dataclass
class CrashFigures:
    sent: int
    answered_before_kill: int
    in_log: int
    missing: list[str]
    integrity: str
    served_after_restart: bool

    def table(self) -> str:
        return (f"kill -9 after {self.answered_before_kill} answered responses (of {self.sent} sent); "
                f"after restart: integrity_check {self.integrity}, {self.in_log}/{self.answered_before_kill} "
                f"answered requests in the log, missing {len(self.missing)}, "
                f"serving again: {self.served_after_restart}")


def crash_profile(directory: Path, n: int, concurrency: int, kill_after: int, *, seed: int = 5) -> CrashFigures:
    """Load, ``kill -9`` of the gateway once ``kill_after`` responses arrived, restart, check the log."""
    with misbehaving_backends(seed) as servers:
        gateway = GatewayProcess(write_config(directory, servers), directory).start()

        async def load_and_kill() -> list[Result]:
            live: list[Result] = []
            task = asyncio.ensure_future(run_load(gateway.url, n, concurrency, seed=seed, marker="crash",
                                                  results=live))
            while not task.done() and sum(1 for r in live if r.request_id) < kill_after:
                await asyncio.sleep(0.005)
            gateway.kill9()  # mid-load: many requests are in flight, some mid-stream
            return await task

        try:
            results = asyncio.run(load_and_kill())
            answered = [r for r in results if r.request_id and r.kind != "lost"]
            gateway.start()  # same config, same database, same port
            after = httpx.post(gateway.url + "/v1/chat/completions", timeout=30,
                               json={"model": "model:cloud", "messages": [{"role": "user", "content": "after"}]})
            clear = after.status_code == 200 or after.status_code in EXHAUSTED
            served = clear and "x-modelyard-request-id" in after.headers
        finally:
            gateway.stop()
    check = check_log(directory / "log.db", answered, marker="crash")
    return CrashFigures(n, len(answered), len(answered) - len(check.missing_ids), check.missing_ids, check.integrity,
                        served)
