"""Peak memory of the local models a replay kept busy, from `plan`'s own estimate (weights + KV cache).

Every local model that served during the period is counted as loaded at once: the worst case
the period could reach, and the one that decides whether the candidate fits the machine.
"""

from __future__ import annotations

from modelyard.config.schema import Config
from modelyard.ops.plan import model_memory


def peak_memory_gb(config: Config, served_local: list[str]) -> float | None:
    if not served_local:
        return 0.0
    sizes = {m.model: m for m in model_memory(config, query_servers=False)}
    known = [sizes[name] for name in served_local if name in sizes]
    if not known or any(not m.known for m in known):
        return None
    return sum(m.total_gb for m in known)
