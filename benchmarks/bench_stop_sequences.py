"""A client's stop sequences on the real embedded model, through the gateway: a non-streamed request for a list
with ``stop=["\\n"]`` (a one-line answer, as an autocomplete's). Wall time and completion tokens, medians over
``--runs``; ``--src`` picks the source tree (an old checkout's for the figure before).

    flock /work/team/bench.lock .venv/bin/python benchmarks/bench_stop_sequences.py [--src OLD/src] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=str(ROOT / "src"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    sys.path[:0] = [args.src, str(ROOT)]
    import openai
    from tests.gateway.harness import GatewayServer
    from tests.helpers import make_config

    from modelyard.ops.default_model import model_path

    with tempfile.TemporaryDirectory() as tmp:
        config = make_config({"qwen": {"provider": "llamacpp", "path": str(model_path()), "context": 1024}},
                             {"chat": {"primary": "qwen"}}, log={"path": str(Path(tmp) / "log.db")})
        with GatewayServer(config) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=600)

            def ask() -> tuple[float, int, str]:
                start = time.perf_counter()
                done = client.chat.completions.create(
                    model="chat", max_tokens=args.max_tokens, temperature=0, stop=["\n"],
                    messages=[{"role": "user", "content": "Write a numbered list of 30 fruits, one fruit per line."}])
                assert done.usage is not None
                return time.perf_counter() - start, done.usage.completion_tokens, done.choices[0].message.content or ""

            ask()  # warm: the model loaded, its prompt cache primed
            runs = [ask() for _ in range(args.runs)]
    walls = [r[0] for r in runs]
    tokens = [r[1] for r in runs]
    print(f"src={args.src} runs={args.runs} max_tokens={args.max_tokens} answer={runs[0][2]!r}")
    print(f"wall s: median {statistics.median(walls):.2f} (min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"completion tokens: median {statistics.median(tokens):.0f} (all {tokens})")


if __name__ == "__main__":
    main()
