"""File tools confined to a workspace directory.

Every path is resolved to its *real* location (``os.path.realpath`` follows symlinks) before
use and must end up inside the real workspace: ``../`` escapes, absolute paths elsewhere and
symlinks pointing out are all refused the same way.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from modelyard.agents.tools.base import Tool, ToolError, cap, schema
from modelyard.types import ToolDefinition

_MAX_ENTRIES = 500


class Workspace:
    def __init__(self, root: str | Path):
        real = Path(os.path.realpath(Path(root).expanduser()))
        if not real.is_dir():
            raise ToolError(f"workspace {root} is not a directory")
        self.root = real

    def resolve(self, path: Any) -> Path:
        """The real path of ``path`` (relative to the workspace, or absolute inside it)."""
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path must be a non-empty string")
        if "\x00" in path:
            raise ToolError("path contains a NUL byte")
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        real = Path(os.path.realpath(candidate))
        if real != self.root and not real.is_relative_to(self.root):
            raise ToolError(f"refused: '{path}' is outside the workspace")
        return real

    def show(self, real: Path) -> str:
        return str(real.relative_to(self.root)) if real != self.root else "."


def file_tools(workspace: Workspace, mode: str, limit: int) -> list[Tool]:
    """``read_file`` and ``list_files`` for mode read; ``write_file`` as well for mode write."""

    async def read_file(args: dict[str, Any]) -> str:
        real = workspace.resolve(args["path"])
        if not real.is_file():
            raise ToolError(f"no such file: {args['path']}")

        def read() -> bytes:
            with real.open("rb") as fh:
                return fh.read(limit + 1)

        data = await asyncio.to_thread(read)
        text = data[:limit].decode(errors="replace")
        return text + (f"\n[file truncated at {limit} bytes]" if len(data) > limit else "")

    async def list_files(args: dict[str, Any]) -> str:
        real = workspace.resolve(args.get("path") or ".")
        if not real.is_dir():
            raise ToolError(f"no such directory: {args.get('path')}")
        entries = sorted(real.iterdir(), key=lambda p: p.name)
        lines = [p.name + ("/" if p.is_dir() else "") for p in entries[:_MAX_ENTRIES]]
        if len(entries) > _MAX_ENTRIES:
            lines.append(f"[{len(entries) - _MAX_ENTRIES} more entries not shown]")
        return cap("\n".join(lines) or "(empty directory)", limit)

    async def write_file(args: dict[str, Any]) -> str:
        real = workspace.resolve(args["path"])
        if real.is_dir():
            raise ToolError(f"'{args['path']}' is a directory")
        workspace.resolve(str(real.parent))  # the parent must be inside too (it is, but say why if not)

        def write() -> int:
            real.parent.mkdir(parents=True, exist_ok=True)
            return real.write_text(args["content"], encoding="utf-8")

        written = await asyncio.to_thread(write)
        return f"wrote {written} characters to {workspace.show(real)}"

    path = {"type": "string", "description": "path relative to the workspace"}
    tools = [
        Tool(ToolDefinition("read_file", "Read a text file from the workspace.", schema({"path": path}, ["path"])),
             read_file),
        Tool(ToolDefinition("list_files", "List a directory of the workspace ('.' is its root).",
                            schema({"path": path})), list_files),
    ]
    if mode == "write":
        tools.append(Tool(ToolDefinition(
            "write_file", "Create or overwrite a text file in the workspace.",
            schema({"path": path, "content": {"type": "string"}}, ["path", "content"])), write_file))
    return tools
