"""End-to-end Telegram latency with the real local model.

A Telegram update is pushed into the fake Bot API (tests/fakes, loopback); the bot long-polls
it, runs the turn on the embedded default model and streams the answer by editing its
placeholder. Measured from the moment the update is queued on the fake server to the bot's
first editMessageText carrying answer text (also: to the placeholder, and to the final edit
with the rating buttons). The first run loads the model and is reported apart.

    .venv/bin/python benchmarks/bench_telegram.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import TelegramServer

from modelyard.config import Config
from modelyard.frontends.telegram import TelegramBot
from modelyard.runtime import open_runtime

PROMPT = "Say hello to the team in one short sentence."
PAUSE = 1.0


def first_after(tg: TelegramServer, method: str, since: float, chat_id: int, final: bool = False) -> float | None:
    for r in tg.requests:
        params = r.json or {}
        if (r.received_at >= since and r.path.endswith("/" + method) and str(params.get("chat_id")) == str(chat_id)
                and params.get("text") not in (None, "…") and (not final or params.get("reply_markup"))):
            return r.received_at
    return None


async def one_run(tg: TelegramServer, user: int) -> tuple[float, float, float]:
    pushed = time.monotonic()
    tg.push_message(user, text=PROMPT)
    placeholder = first = final = None
    while final is None:
        await asyncio.sleep(0.005)
        placeholder = placeholder or next((r.received_at for r in tg.requests if r.received_at >= pushed
                                           and r.path.endswith("/sendMessage")), None)
        first = first or first_after(tg, "editMessageText", pushed, user)
        final = first_after(tg, "editMessageText", pushed, user, final=True)
        if time.monotonic() - pushed > 300:
            raise TimeoutError("no answer within 300 s")
    assert placeholder is not None
    return (placeholder - pushed) * 1000, ((first or final) - pushed) * 1000, (final - pushed) * 1000


async def main(runs: int) -> None:
    users = list(range(1001, 1002 + runs))
    with TelegramServer() as tg, tempfile.TemporaryDirectory() as tmp:
        config = Config.model_validate({
            "default_agent": "chat",
            "log": {"path": str(Path(tmp) / "log.sqlite")},
            "telegram": {"base_url": tg.base_url, "allowed_users": users, "edit_interval": 1.0},
            "models": {"qwen-coder-0.5b": {"provider": "llamacpp", "context": 4096, "max_concurrent": 1}},
            "agents": {"chat": {"description": "Talks with the user.", "primary": "qwen-coder-0.5b",
                                "max_tokens": 32}},
        })
        runtime = open_runtime(config=config)
        bot = TelegramBot(runtime, tg.token, poll_timeout=10)
        await bot.start()
        try:
            cold = await one_run(tg, users[0])
            results = []
            for user in users[1:]:
                await asyncio.sleep(PAUSE)  # a person reads the answer before writing again
                results.append(await one_run(tg, user))
        finally:
            await bot.stop()
            await runtime.aclose()
    print(f"cold run (model load included): placeholder {cold[0]:.0f} ms, first edit {cold[1]:.0f} ms, "
          f"final {cold[2]:.0f} ms")
    for label, index in (("update → placeholder", 0), ("update → first edit", 1), ("update → final edit", 2)):
        values = [r[index] for r in results]
        print(f"{label:22s} median {statistics.median(values):7.0f} ms   "
              f"min {min(values):6.0f}   max {max(values):6.0f}   (n={len(values)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
