"""A client's stop sequences on the real embedded model, through the gateway: a non-streamed request for a list
with a newline stop (a one-line answer, as an autocomplete's). Two cases (``--case``):

- ``sent``: chat completions' ``stop=["\\n"]``, which the model is sent (llama.cpp's ``stop``) and stops at itself;
- ``unsent``: the Messages API's ``stop_sequences=["\\n"]``, which no backend is sent (the answer must name the one
  met): the gateway cuts the text, and since 2026-12-01 the router closes the model's stream there
  (router/stop_watch.py) — before, the model wrote on to ``max_tokens``. The same holds for a chat ``stop`` past
  the 4 an OpenAI-compatible server is sent.

Wall time, completion tokens and the time the model's slot was held (the routing log's attempt duration), medians
over ``--runs``; ``--src`` picks the source tree (an old checkout's for the figure before).

    flock /work/team/bench.lock .venv/bin/python benchmarks/bench_stop_sequences.py [--src OLD/src] [--runs 5]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASK = "Write a numbered list of 30 fruits, one fruit per line."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=str(ROOT / "src"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--case", choices=("sent", "unsent", "both"), default="both")
    args = parser.parse_args()
    sys.path[:0] = [args.src, str(ROOT)]
    import anthropic
    import openai
    from tests.gateway.harness import GatewayServer
    from tests.helpers import make_config

    from modelyard.ops.default_model import model_path

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.db"
        config = make_config({"qwen": {"provider": "llamacpp", "path": str(model_path()), "context": 1024}},
                             {"chat": {"primary": "qwen"}}, log={"path": str(log)})
        with GatewayServer(config) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=600)
            claude = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, timeout=600)

            def sent() -> tuple[int, str]:
                done = client.chat.completions.create(
                    model="chat", max_tokens=args.max_tokens, temperature=0, stop=["\n"],
                    messages=[{"role": "user", "content": ASK}])
                assert done.usage is not None
                return done.usage.completion_tokens, done.choices[0].message.content or ""

            def unsent() -> tuple[int, str]:
                # the SDK's create() has no ``temperature`` (its newer models take none): the body carries it
                done = claude.messages.create(model="chat", max_tokens=args.max_tokens, stop_sequences=["\n"],
                                              messages=[{"role": "user", "content": ASK}],
                                              extra_body={"temperature": 0})
                text = "".join(b.text for b in done.content if b.type == "text")
                return done.usage.output_tokens, f"{text!r} stop_reason={done.stop_reason}"

            cases = {"sent": sent, "unsent": unsent}
            chosen = list(cases) if args.case == "both" else [args.case]
            cases[chosen[0]]()  # warm: the model loaded, its prompt cache primed
            for name in chosen:
                runs = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    tokens, answer = cases[name]()
                    runs.append((time.perf_counter() - start, tokens, answer, _last_held_ms(log)))
                _show(name, args, runs)


def _last_held_ms(log: Path) -> float:
    """The last answer's attempt duration in the routing log: how long the model's slot was held (its row is
    committed before the answer is sent: gateway/completions.py)."""
    conn = sqlite3.connect(log)
    try:
        row = conn.execute("SELECT a.duration_ms FROM attempts a JOIN requests r ON r.id = a.request_id "
                           "ORDER BY r.ts DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return float(row[0])


def _show(name: str, args: argparse.Namespace, runs: list[tuple[float, int, str, float]]) -> None:
    walls, tokens, held = [r[0] for r in runs], [r[1] for r in runs], [r[3] for r in runs]
    print(f"case={name} src={args.src} runs={args.runs} max_tokens={args.max_tokens} answer={runs[0][2]}")
    print(f"  wall s: median {statistics.median(walls):.2f} (min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"  completion tokens: median {statistics.median(tokens):.0f} (all {tokens})")
    print(f"  slot held (attempt duration) s: median {statistics.median(held) / 1000:.2f}")


if __name__ == "__main__":
    main()
