"""Small builders shared by tests: configs from dicts, and a scripted in-process provider.

The scripted provider stands in for a *backend* (never for modelyard code): it lets the
router's timing rules be tested to the millisecond without network noise.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.config import Config
from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.base import Provider
from modelyard.types import ChatRequest, Chunk, Usage


def make_config(models: dict[str, dict[str, Any]], agents: dict[str, dict[str, Any]], **extra: Any) -> Config:
    data: dict[str, Any] = {"models": models, "agents": agents}
    data.update(extra)
    return Config.model_validate(data)


class ScriptedProvider(Provider):
    """Answers from a script of behaviours: "ok", "hang", "slow:SECONDS", "error:REASON", "die_after_first"."""

    def __init__(self, name: str, config: ModelConfig | None = None, script: list[str] | None = None,
                 text: str = "hello world", default: str = "ok"):
        super().__init__(name, config or ModelConfig(provider="openai"))
        self.script = list(script or [])
        self.default = default
        self.text = text
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        self.calls += 1
        behaviour = self.script.pop(0) if self.script else self.default
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            kind, _, arg = behaviour.partition(":")
            if kind == "hang":
                await asyncio.sleep(3600)
            if kind == "slow":
                await asyncio.sleep(float(arg))
            if kind == "error":
                raise ProviderError(Reason(arg), f"scripted {arg}",
                                    retry_after=None)
            words = self.text.split(" ")
            for i, word in enumerate(words):
                yield Chunk("text", text=word if i == 0 else " " + word)
                if kind == "die_after_first":
                    raise ProviderError(Reason.CONNECTION_DROPPED, "scripted drop")
                if kind == "idle":
                    await asyncio.sleep(float(arg))
            yield Chunk("usage", usage=Usage(3, len(words)))
            yield Chunk("done", stop_reason="stop")
        finally:
            self.in_flight -= 1


def orchestrated_config(tmp_path: Path, specialists: Iterable[str]) -> Path:
    """A config file of one unreachable model and an orchestrator over ``specialists``, for what routing decides
    without a model answering (`route`, `--fast-only`)."""
    agents = list(specialists)
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  local: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                    f"agents:\n  orchestrator: {{primary: local, consumers: [{', '.join(agents)}]}}\n"
                    + "".join(f"  {a}: {{primary: local}}\n" for a in agents)
                    + f"orchestration: {{agent: orchestrator}}\nlog: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    return path


def parse_source(path: Path) -> ast.Module:
    """``ast.parse`` a file with the garbage collector held off. On Python 3.11 a finalizer that runs inside the AST
    constructor (an earlier test's leftover object collected just then, reporting an unraisable exception) makes
    ``ast.parse`` raise "SystemError: AST constructor recursion depth mismatch" — a CPython bug, not the file's
    (clean-clone CI of 2026-11-29: test_layers failed so after a leaked Redis listener was collected)."""
    source = path.read_text()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source, filename=str(path))
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """A real tmpfs at ``mount`` (made here) with ``options`` (root only: elsewhere the test is skipped)."""
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def arrival_waves(times: Iterable[float], gap: float) -> list[int]:
    """How many requests arrived together, wave by wave: one arriving within ``gap`` s of a wave's first joins it
    (a fake server's ``received_at`` times; calls sent side by side arrive within milliseconds)."""
    waves: list[list[float]] = []
    for t in sorted(times):
        if waves and t - waves[-1][0] < gap:
            waves[-1].append(t)
        else:
            waves.append([t])
    return [len(w) for w in waves]
