"""A synthetic month of routing log for the replay benchmark: N requests written through the real
log writer. Arrivals are Poisson with a daily cycle; qwen (local, 2 slots) serves chat and engineer,
haiku (cloud) serves writer and research with qwen as fallback; haiku has two outages, qwen 1% errors."""

from __future__ import annotations

import math
import random
from pathlib import Path

from modelyard.errors import Reason
from modelyard.ledger import LogWriter
from modelyard.outcomes import AttemptOutcome, RequestOutcome
from modelyard.router.records import Attempt, RequestRecord

CONFIG = """
log: {{path: {log}}}
defaults:
  timeouts: {{queue: 10, first_token: 30, idle: 15, total: 120}}
  cooldown: {{failures: 2, seconds: 30, max_seconds: 300}}
models:
  qwen: {{provider: ollama, max_concurrent: {slots}, memory_gb: 6.6}}
  gemma: {{provider: ollama, max_concurrent: 1, memory_gb: 16}}
  haiku: {{provider: openai, endpoint: "http://127.0.0.1:9/v1", max_concurrent: 8, price: {{input: 1, output: 5}}}}
agents:
  chat: {{primary: qwen, fallbacks: [gemma]}}
  engineer: {{primary: qwen, fallbacks: [gemma]}}
  writer: {{primary: haiku, fallbacks: [qwen]}}
  research: {{primary: haiku, fallbacks: [qwen]}}
"""


def write_config(path: Path, log: Path, slots: int = 2) -> Path:
    path.write_text(CONFIG.format(log=log, slots=slots))
    return path


def write_log(log: Path, n: int, start: float, days: float = 30.0, seed: int = 7) -> None:
    rng = random.Random(seed)
    writer = LogWriter(log, local_models=["qwen", "gemma"])
    rate = n / (days * 86400)
    outages = [(start + days * 86400 * f, start + days * 86400 * f + 1800) for f in (0.3, 0.7)]
    t = start
    for i in range(n):
        t += rng.expovariate(rate * (1 + 0.8 * math.sin(2 * math.pi * (t - start) / 86400)))
        agent = rng.choice(("chat", "chat", "engineer", "writer", "research"))
        cloud = agent in ("writer", "research")
        attempts = []
        down = cloud and any(a <= t < b for a, b in outages)
        if down:
            attempts.append(Attempt("haiku", "openai", AttemptOutcome.FALLBACK, Reason.SERVER_ERROR, started_at=t,
                                    queue_wait_ms=0.0, duration_ms=200.0))
        model = "qwen" if (not cloud or down) else "haiku"
        if model == "qwen" and rng.random() < 0.01:
            attempts.append(Attempt("qwen", "ollama", AttemptOutcome.FALLBACK, Reason.CONNECTION_DROPPED,
                                    started_at=t, queue_wait_ms=0.0, duration_ms=500.0))
            model = "gemma"
        ttft = rng.uniform(300, 900) if model != "haiku" else rng.uniform(400, 700)
        tps = {"qwen": 25.0, "gemma": 12.0, "haiku": 80.0}[model] * rng.uniform(0.8, 1.2)
        tokens = rng.randint(20, 200)
        total = ttft + tokens / tps * 1000
        price = (1, 5) if model == "haiku" else (0, 0)
        attempts.append(Attempt(model, "openai" if model == "haiku" else "ollama", AttemptOutcome.OK, started_at=t,
                                queue_wait_ms=0.0, ttft_ms=ttft, duration_ms=total, tokens_in=300, tokens_out=tokens,
                                tokens_per_s=tps, cost_usd=(300 * price[0] + tokens * price[1]) / 1e6))
        outcome = RequestOutcome.OK if len(attempts) == 1 else RequestOutcome.FALLBACK
        writer.submit(RequestRecord(f"r{i:08d}", agent, ts=t, outcome=outcome, model=model, attempts=attempts,
                                    total_ms=total, tokens_in=300 * len(attempts), tokens_out=tokens,
                                    cost_usd=sum(a.cost_usd for a in attempts)))
        if i % 50_000 == 0:
            writer.flush(60)
    writer.close()
