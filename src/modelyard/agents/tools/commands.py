"""Run an allowlisted program: argument list only (never a shell), in the workspace, bounded.

The allowlist names programs exactly as the config lists them; the arguments are passed as
a list to ``execve``, so nothing is interpreted by a shell. The process gets a minimal
environment (no API keys), a time limit (its whole process group is killed on expiry) and an
output cap; the rest of its output is read and discarded so it never blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from typing import Any

from modelyard.agents.tools.base import Tool, ToolError, schema
from modelyard.agents.tools.files import Workspace
from modelyard.types import ToolDefinition

_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER")


def command_tool(workspace: Workspace, allowlist: list[str], timeout: float, limit: int) -> Tool:
    allowed = list(dict.fromkeys(allowlist))

    async def run_command(args: dict[str, Any]) -> str:
        command, argv = args["command"], [str(a) for a in args.get("args") or []]
        if command not in allowed:
            raise ToolError(f"command '{command}' is not on the allowlist ({', '.join(allowed)})")
        executable = shutil.which(command)
        if executable is None:
            raise ToolError(f"command '{command}' is allowlisted but not installed")
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
        proc = await asyncio.create_subprocess_exec(
            executable, *argv, cwd=workspace.root, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        kept = bytearray()
        total = 0

        async def drain() -> None:
            nonlocal total
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                total += len(chunk)
                if len(kept) < limit:
                    kept.extend(chunk[: limit - len(kept)])
            await proc.wait()

        try:
            async with asyncio.timeout(timeout):
                await drain()
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            return f"timed out after {timeout:g}s (killed)\n" + kept.decode(errors="replace")
        finally:
            if proc.returncode is None:
                _kill(proc)
        text = f"exit code {proc.returncode}\n" + kept.decode(errors="replace")
        return text + (f"\n[output truncated at {limit} bytes of {total}]" if total > limit else "")

    return Tool(ToolDefinition(
        "run_command",
        f"Run a program in the workspace (no shell). Allowed programs: {', '.join(allowed)}.",
        schema({"command": {"type": "string", "enum": allowed},
                "args": {"type": "array", "items": {"type": "string"}}}, ["command"])), run_command)


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
