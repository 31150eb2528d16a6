"""``modelyard serve`` with tracemalloc on and a SIGUSR1 handler that dumps a snapshot (bench_soak.py --tracemalloc).

    python -X tracemalloc=12 -m benchmarks.soak_serve DIRECTORY serve --config ... --port ...

Each SIGUSR1 writes DIRECTORY/snapshot-N.pickle (N counting from 1). Only for finding what grows: tracemalloc
slows the gateway several times over and adds its own memory, so RSS figures come from runs without it.
"""

from __future__ import annotations

import gc
import itertools
import signal
import sys
import tracemalloc
from pathlib import Path


def main() -> None:
    directory = Path(sys.argv[1])
    count = itertools.count(1)

    def dump(signum: int, frame: object) -> None:
        n = next(count)
        gc.collect()
        tracemalloc.take_snapshot().dump(str(directory / f"snapshot-{n}.pickle"))
        (directory / "snapshot.done").write_text(str(n))

    if not tracemalloc.is_tracing():
        tracemalloc.start(12)
    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["modelyard", *sys.argv[2:]]
    from modelyard.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
