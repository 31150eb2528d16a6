"""Two ``modelyard serve`` processes sharing one Redis and one PostgreSQL log, under mixed clients and scheduled faults.

    .venv/bin/python benchmarks/soak_shared.py --minutes 6 --clients 24 --json /tmp/soak.json

Why: each of the day's changes (request bounds, provider faults, shared state in Redis, the PostgreSQL log) is
tested alone; this runs them together for minutes and checks what only shows there. Loopback only, bounded counts.

* backends: the reliability suite's fakes (OpenAI-compatible ``fast`` 2 slots → Ollama ``backup`` 4 → Anthropic
  ``cloud`` 16), each drawing a fault per request from ``loadgen.MIX`` (5xx, 429 + Retry-After, drops and errors
  mid-stream, stalls, drips, hangs); the OpenAI one is also stopped for 2 s every 45 s (a restart). For the last
  ``--calm`` seconds all faults stop.
* clients, alternating between the two gateways: the official ``openai`` SDK (streamed and not), the
  ``anthropic`` SDK on ``/v1/messages`` (streamed and not), a client that hangs up after the first bytes, a slow
  reader, a body past ``max_request_mb`` (413), and a few bodies left silent or trickled (408 in ``serve``'s
  75 s / 300 s bounds).
* checked at the end: one PostgreSQL row per routed request (matched by the marker in its prompt) and none for the
  refused ones, each row's outcome against what its client saw; no 500 and no traceback in either stderr; RSS and
  open fds of each serve sampled every 10 s from /proc; the most requests each fake saw at once vs
  ``max_concurrent``; every model back to ``ok`` in /healthz within its cooldown once faults stop; /metrics'
  request counts against the rows; SIGTERM, then every row in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.faults import FaultScript  # noqa: E402
from tests.reliability.loadgen import (  # noqa: E402
    AGENT,
    SLOTS,
    GatewayProcess,
    misbehaving_backends,
    write_config,
)

PG_DB = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/9"
LIMITS = {"fast": SLOTS["fast_slots"], "backup": SLOTS["backup_slots"], "cloud": SLOTS["cloud_slots"]}
#: (weight, kind)
KINDS = [(30, "oa"), (22, "oa_stream"), (12, "an"), (12, "an_stream"), (8, "hangup"), (8, "slow_reader"),
         (3, "oversize")]
#: client outcomes that must have exactly one row; the others (refused before routing) none
ROUTED = {"ok", "error", "hung_up", "stream_error"}


@dataclass
class Seen:
    marker: str
    kind: str
    gateway: int
    outcome: str  # ok | error (status given) | hung_up | stream_error | refused (413/408…) | transport
    status: int = 0


@dataclass
class Run:
    seen: list[Seen] = field(default_factory=list)
    samples: dict[int, list[tuple[float, int, int]]] = field(default_factory=dict)
    restarts: int = 0
    faults_drawn: int = 0


def proc_sample(pid: int) -> tuple[int, int]:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def sampler(pids: list[int], run: Run, stop: threading.Event, t0: float) -> None:
    while not stop.is_set():
        for n, pid in enumerate(pids):
            try:
                rss, fds = proc_sample(pid)
            except OSError:
                continue
            run.samples.setdefault(n, []).append((time.monotonic() - t0, rss, fds))
        stop.wait(10)


async def one(i: int, kind: str, marker: str, url: str, gw: int, oa: openai.AsyncOpenAI,
              an: anthropic.AsyncAnthropic, raw: httpx.AsyncClient) -> Seen:
    msgs = [{"role": "user", "content": f"{marker} say hi"}]
    try:
        if kind == "oa":
            r = await oa.chat.completions.create(model=AGENT, messages=msgs, max_tokens=32)  # type: ignore[arg-type]
            return Seen(marker, kind, gw, "ok" if r.choices[0].message.content else "empty")
        if kind == "oa_stream":
            text = ""
            stream = await oa.chat.completions.create(model=AGENT, messages=msgs, max_tokens=32,  # type: ignore[arg-type]
                                                      stream=True)
            async for chunk in stream:  # type: ignore[union-attr]
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
            return Seen(marker, kind, gw, "ok" if text else "empty")
        if kind == "an":
            m = await an.messages.create(model=AGENT, max_tokens=32, messages=msgs)  # type: ignore[arg-type]
            return Seen(marker, kind, gw, "ok" if m.content else "empty")
        if kind == "an_stream":
            async with an.messages.stream(model=AGENT, max_tokens=32, messages=msgs) as s:  # type: ignore[arg-type]
                async for _ in s:
                    pass
                final = await s.get_final_message()
            return Seen(marker, kind, gw, "ok" if final.content else "empty")
        if kind in ("hangup", "slow_reader"):
            body = {"model": AGENT, "stream": True, "max_tokens": 32, "messages": msgs}
            async with raw.stream("POST", url + "/v1/chat/completions", json=body) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    return Seen(marker, kind, gw, "error", resp.status_code)
                last = ""
                async for line in resp.aiter_lines():
                    if kind == "hangup":
                        return Seen(marker, kind, gw, "hung_up")
                    await asyncio.sleep(0.05)
                    if line:
                        last = line
                return Seen(marker, kind, gw, "ok" if last == "data: [DONE]" else "stream_error")
        if kind == "oversize":
            text = marker + " " + "x" * 1_300_000
            big = json.dumps({"model": AGENT, "messages": [{"role": "user", "content": text}]})
            big_r = await raw.post(url + "/v1/chat/completions", content=big,
                                   headers={"content-type": "application/json"})
            return Seen(marker, kind, gw, "refused" if big_r.status_code in (413, 503)
                        else f"unexpected {big_r.status_code}", big_r.status_code)
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        return Seen(marker, kind, gw, "error", exc.status_code)
    except (openai.APIConnectionError, anthropic.APIConnectionError) as exc:  # refused or cut: no answer came
        return Seen(marker, kind, gw, f"transport {type(exc).__name__}")
    except (openai.APIError, anthropic.APIError) as exc:  # a stream's error event after its commit point
        return Seen(marker, kind, gw, "stream_error", 0) if "stream" in kind else Seen(
            marker, kind, gw, f"transport {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Seen(marker, kind, gw, f"transport {type(exc).__name__}")
    raise AssertionError(kind)


async def silent_bodies(urls: list[str], tag: str, run: Run, bounced: bool) -> None:
    """Two bodies left silent halfway, two trickled a byte per 5 s: serve answers 408 (75 s; 4-5 bounds: 300-375 s)."""

    async def client(n: int, url: str, trickle: bool) -> None:
        marker = f"{tag}-quiet-{n}"
        u = httpx.URL(url)
        reader, writer = await asyncio.open_connection(u.host, u.port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: 1000\r\n\r\n" + f'{{"model": "{AGENT}", "x": "{marker}'.encode())
        head = b""
        try:
            async with asyncio.timeout(420):
                while not head:
                    try:
                        head = await asyncio.wait_for(reader.read(200), 5 if trickle else 420)
                    except TimeoutError:
                        writer.write(b"y")
                        await writer.drain()
        except (TimeoutError, OSError):
            pass
        status = int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0
        # 408; or, on the gateway the SIGTERM bounces, its 503 "shutting down" or the connection closed
        refused = status == 408 or (n % 2 == 1 and bounced and status in (503, 0))
        run.seen.append(Seen(marker, "trickle" if trickle else "silent", n % 2, "refused" if refused
                             else f"unexpected {status}", status))
        writer.close()

    await asyncio.gather(*(client(n, urls[n % 2], n >= 2) for n in range(4)))


async def load(urls: list[str], seconds: float, clients: int, tag: str, seed: int, run: Run, bounced: bool) -> None:
    kinds, weights = [k for _, k in KINDS], [w for w, _ in KINDS]
    oas = [openai.AsyncOpenAI(base_url=u + "/v1", api_key="soak", max_retries=0, timeout=60) for u in urls]
    ans = [anthropic.AsyncAnthropic(base_url=u, api_key="soak", max_retries=0, timeout=60) for u in urls]
    raw = httpx.AsyncClient(timeout=60)
    counter = iter(range(10**9))
    end = time.monotonic() + seconds

    async def worker() -> None:
        for i in counter:
            if time.monotonic() > end:
                return
            rng = random.Random(seed * 1_000_003 + i)
            kind = rng.choices(kinds, weights)[0]
            gw = i % 2
            run.seen.append(await one(i, kind, f"{tag}-{i}", urls[gw], gw, oas[gw], ans[gw], raw))

    quiet = asyncio.create_task(silent_bodies(urls, tag, run, bounced))
    await asyncio.gather(*(worker() for _ in range(clients)))
    await quiet
    await raw.aclose()
    for o in oas:
        await o.close()
    for a in ans:
        await a.close()


def healthz(url: str) -> dict[str, Any]:
    return httpx.get(url + "/healthz", timeout=5).json()


def metric_requests(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    return sum(float(m[1]) for m in re.finditer(r"^modelyard_requests_total\{[^}]*\} ([0-9.e+]+)$", text, re.M))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=6.0, help="load time, faults included (≤ 15)")
    ap.add_argument("--calm", type=float, default=40.0, help="seconds of load at the end with no faults")
    ap.add_argument("--clients", type=int, default=24)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sigterm-at", type=float, default=0.0,
                    help="SIGTERM the second serve this many seconds in, under load, and start it again (0: never)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    tag = f"soak{secrets.token_hex(3)}"
    schema = f"soak_{tag}"
    run = Run()
    report: dict[str, Any] = {"tag": tag, "load_start": os.getloadavg()}
    with psycopg.connect(PG_DB, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    pg_url = f"{PG_DB}?options=-csearch_path%3D{schema}"
    with tempfile.TemporaryDirectory(prefix="modelyard-soak2-") as tmp, misbehaving_backends(args.seed) as servers:
        gateways: list[GatewayProcess] = []
        for n in range(2):
            d = Path(tmp) / f"gw{n}"
            d.mkdir()
            config = write_config(d, servers, extra={
                "state": {"url": REDIS, "prefix": tag}, "gateway": {"max_request_mb": 1.0, "max_bodies_mb": 8.0}})
            data = yaml.safe_load(config.read_text())
            data["log"]["url"] = pg_url
            config.write_text(yaml.safe_dump(data))
            gateways.append(GatewayProcess(config, d, env={"MODELYARD_DATA_DIR": str(d / "data"),
                                                           "PYTHONPATH": str(ROOT / "src")}))
        try:
            for g in gateways:
                g.start(timeout=120)
            pids = [g.proc.pid for g in gateways if g.proc is not None]
            t0 = time.monotonic()
            stop = threading.Event()
            threading.Thread(target=sampler, args=(pids, run, stop, t0), daemon=True).start()
            load_s = args.minutes * 60
            loop_done = threading.Event()

            def schedule() -> None:  # restarts of the OpenAI fake, then calm
                oa = servers[0]
                while not loop_done.wait(45):
                    if time.monotonic() - t0 > load_s - args.calm:
                        break
                    oa.stop()
                    time.sleep(2)
                    oa.start()
                    run.restarts += 1
                calm_at = t0 + load_s - args.calm
                while time.monotonic() < calm_at and not loop_done.is_set():
                    time.sleep(0.5)
                for s in servers:
                    s.faults = FaultScript()
                calm = time.monotonic()
                report["calm_at_s"] = round(calm - t0, 1)
                while time.monotonic() - calm < 20:  # no model cooling down on either gateway any more
                    states = [m["state"] for g in gateways for m in healthz(g.url)["models"]]
                    if "cooling_down" not in states:
                        break
                    time.sleep(0.25)
                report["cooling_over_after_calm_s"] = round(time.monotonic() - calm, 2)
                report["states_at_calm_end"] = states

            def bounce() -> None:  # SIGTERM under load: in-flight requests end with an error and a row, then back
                time.sleep(args.sigterm_at)
                g = gateways[1]
                assert g.proc is not None
                report["sigterm"] = {"at_s": round(time.monotonic() - t0, 1)}
                g.proc.send_signal(signal.SIGTERM)
                report["sigterm"]["exit"] = g.proc.wait(60)
                report["sigterm"]["down_s"] = round(time.monotonic() - t0, 1)
                g.start(timeout=120)
                pids[1] = g.proc.pid
                report["sigterm"]["up_again_s"] = round(time.monotonic() - t0, 1)

            threading.Thread(target=schedule, daemon=True).start()
            if args.sigterm_at:
                threading.Thread(target=bounce, daemon=True).start()
            asyncio.run(load([g.url for g in gateways], load_s, args.clients, tag, args.seed, run,
                             bool(args.sigterm_at)))
            loop_done.set()
            report["load_seconds"] = round(time.monotonic() - t0, 1)
            # every model serves again once faults stopped: one request to each model on each gateway
            back: dict[str, float] = {}
            for n, g in enumerate(gateways):
                t = time.monotonic()
                states: list[Any] = []
                while time.monotonic() - t < 15:
                    for name in LIMITS:
                        httpx.post(g.url + "/v1/chat/completions", timeout=30, json={
                            "model": name, "max_tokens": 8, "messages": [{"role": "user", "content": "after"}]})
                    states = [m["state"] for m in healthz(g.url)["models"]]
                    if all(s == "available" for s in states):
                        break
                    time.sleep(0.2)
                back[f"gw{n}"] = round(time.monotonic() - t, 2) if all(s == "available" for s in states) else -1.0
                report.setdefault("healthz_states", {})[f"gw{n}"] = states
            report["back_within_s"] = back
            time.sleep(3)
            report["metrics_requests"] = [metric_requests(g.url) for g in gateways]
            report["healthz_log"] = [healthz(g.url)["log"] for g in gateways]
            stop.set()
            report["max_in_flight"] = {name: max((s.max_in_flight_by_model or {}).values() or [s.max_in_flight])
                                       for name, s in zip(LIMITS, servers, strict=True)}
            report["faults_drawn"] = sum(len(s.requests) for s in servers)
        finally:
            for g in gateways:
                if g.proc is not None and g.proc.poll() is None:
                    g.proc.send_signal(signal.SIGTERM)
            report["exit_codes"] = [g.proc.wait(60) if g.proc else None for g in gateways]
        errs = [g.output() for g in gateways]
        report["tracebacks"] = [e.count("Traceback") for e in errs]
        report["error_lines"] = [[ln for ln in e.splitlines() if "ERROR" in ln or "Traceback" in ln][:5] for e in errs]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT prompt, outcome, host FROM requests WHERE prompt LIKE %s", (tag + "-%",)).fetchall()
    by_marker: dict[str, list[str]] = {}
    for prompt, outcome, _host in rows:
        by_marker.setdefault(prompt.split()[0], []).append(outcome)
    problems = []
    for s in run.seen:
        got = by_marker.get(s.marker, [])
        want = 1 if s.outcome in ROUTED else 0
        if s.outcome.startswith("transport") and s.gateway == 1 and args.sigterm_at and len(got) <= 1:
            continue  # cut by the SIGTERM: a connection refused has no row, one accepted then closed has its row
        if len(got) != want:
            problems.append(f"{s.marker} {s.kind} gw{s.gateway} client={s.outcome}/{s.status} rows={got}")
        elif got and s.outcome == "ok" and got[0] not in ("ok", "fallback"):
            problems.append(f"{s.marker} {s.kind} client ok but row {got[0]}")
        elif got and s.outcome == "error" and got[0] in ("ok", "fallback"):
            problems.append(f"{s.marker} {s.kind} client {s.status} but row {got[0]}")
        if s.status == 500:
            problems.append(f"{s.marker} {s.kind} status {s.status}")
        if s.outcome.startswith(("transport", "unexpected", "empty")):
            problems.append(f"{s.marker} {s.kind} {s.outcome}")
    report.update(
        requests=len(run.seen), kinds=Counter(s.kind for s in run.seen),
        client_outcomes=Counter(f"{s.outcome}/{s.status}" for s in run.seen), rows=len(rows),
        row_outcomes=Counter(o for _, o, _ in rows), restarts=run.restarts, problems=problems[:40],
        problem_count=len(problems), limits=LIMITS, load_end=os.getloadavg(),
        rss_fd={n: {"first_after_warmup": s[min(2, len(s) - 1)], "last": s[-1], "max_rss": max(x[1] for x in s),
                    "max_fd": max(x[2] for x in s), "series": s} for n, s in run.samples.items()})
    with psycopg.connect(PG_DB, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    text = json.dumps(report, indent=1, default=str)
    if args.json:
        args.json.write_text(text)
    print(json.dumps({k: v for k, v in report.items() if k != "rss_fd"}, indent=1, default=str))
    for n, f in report["rss_fd"].items():
        print(f"gw{n}: (t, RSS kB, fds) after warm-up {f['first_after_warmup']} -> end {f['last']}, "
              f"max RSS {f['max_rss']} kB, max fds {f['max_fd']}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
