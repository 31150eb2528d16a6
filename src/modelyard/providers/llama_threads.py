"""How many CPU threads the in-process llama.cpp model generates with.

llama.cpp (built with OpenMP, as llama-cpp-python builds it) makes its threads spin at a barrier
after every step of every token. When it has a thread per core, any other runnable thread — the
gateway's event loop streaming the answer, the routing-log writer, another model, the rest of the
machine — takes a core from one of them, and the others spin until the scheduler gives it back:
measured on a 2-core machine with other work running, the embedded model fell from ~20–26 tokens/s
with one thread to 2.7–11 tokens/s with two, and burned more CPU doing it (benchmarks/README.md,
"Embedded model: generation threads"). With nothing else running, two threads were faster (~44 vs ~27 tokens/s).
A machine that runs agents is rarely idle, so the default leaves one core to everything else;
``threads:`` on the model sets it explicitly. Prompt evaluation keeps every core: it is one large
batch per step, where the barrier costs little.
"""

from __future__ import annotations

import os


def generation_threads(configured: int | None, cores: int | None = None) -> int:
    """``configured`` when set; otherwise every core but one, and at least one."""
    if configured is not None:
        return configured
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, cores - 1)
