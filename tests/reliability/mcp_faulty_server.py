"""An MCP server over stdio, speaking raw JSON-RPC, that misbehaves as its first argument says.

Modes: ``crash_at_start`` (exits before answering), ``no_module`` (a Python traceback on stderr, exit 1),
``chatty`` (280 KB on stderr before it answers), ``crash_mid_call`` (exits when a tool is
called), ``junk`` (prints log lines to stdout among its messages), ``slow_start`` (sleeps
``START_DELAY`` s first), ``notype`` (a
tool schema without ``type``, which the SDK's client refuses), ``odd`` (tool names and
schemas a provider refuses, non-text content, a secret in its environment), ``crash_once`` (exits on its
first call ever: a marker file, ``CRASH_MARKER``, remembers it across restarts), ``die_idle`` (exits right
after answering a call, as a server killed between calls), ``changing`` (its ``grow`` tool adds a tool
``extra``, removes ``secret`` and sends ``notifications/tools/list_changed``), ``paged`` (lists its tools
three to a page, with ``nextCursor``), ``stuck_cursor`` (its last page names itself as the next one),
``mute`` (never answers), ``wedge_once`` (its first call ever stops it answering anything, pings included,
though it stays alive).
With ``START_LOG`` set, each start appends a line to that file; with ``REFUSE_RESTART`` set too, a start
after the first exits at once.
"""

from __future__ import annotations

import json
import os
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "odd"
LONG = "fs." + "x" * 70

TOOLS = [
    {"name": "grow", "description": "changes the tool list", "inputSchema": {"type": "object"}},
    {"name": "read.file", "description": "dotted name", "inputSchema": {"type": "object", "properties": {}}},
    {"name": LONG, "description": "too long", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "badschema", "description": "schema that is no schema", "inputSchema": {"type": "object",
                                                                                     "properties": {"q": {"type": 5}}}},
    {"name": "danglingref", "description": "a $ref to nowhere", "inputSchema": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}, "b": {"$ref": "https://example.invalid/s"}}}},
    {"name": "huge", "description": "5 MB of text", "inputSchema": {"type": "object"}},
    {"name": "image", "description": "returns an image", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "resource", "description": "returns an embedded resource", "inputSchema": {"type": "object"}},
    {"name": "link", "description": "returns a resource link", "inputSchema": {"type": "object"}},
    {"name": "structured", "description": "structured content only", "inputSchema": {"type": "object"}},
    {"name": "fails", "description": "isError", "inputSchema": {"type": "object"}},
    {"name": "secret", "description": "echoes", "inputSchema": {"type": "object"}},
]

if MODE == "notype":  # the SDK's client refuses the whole list
    TOOLS.append({"name": "notype", "description": "no type", "inputSchema": {"properties": {"q": {"type": "string"}}}})

CONTENT = {
    "image": {"content": [{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}]},
    "resource": {"content": [{"type": "resource", "resource": {"uri": "file:///notes.txt", "mimeType": "text/plain",
                                                               "text": "the notes"}}]},
    "link": {"content": [{"type": "resource_link", "uri": "file:///big.csv", "name": "big.csv"}]},
    "structured": {"content": [], "structuredContent": {"rows": 3, "ok": True}},
    "huge": {"content": [{"type": "text", "text": "x" * 5_000_000}]},
    "fails": {"content": [{"type": "text", "text": "no such city"}], "isError": True},
}


def send(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    if os.environ.get("START_LOG"):
        started_before = os.path.exists(os.environ["START_LOG"])
        with open(os.environ["START_LOG"], "a") as f:
            f.write(f"{os.getpid()}\n")
        if started_before and os.environ.get("REFUSE_RESTART"):
            sys.exit(4)
    grown = False
    if MODE == "crash_at_start":
        sys.stderr.write("Traceback: cannot start, token=" + os.environ.get("MCP_TOKEN", "") + "\n")
        sys.exit(3)
    if MODE == "no_module":  # what `uvx`/`python -m` print for a server package that is not installed
        sys.stderr.write("Traceback (most recent call last):\n"
                         '  File "<frozen runpy>", line 189, in _run_module_as_main\n'
                         "ModuleNotFoundError: No module named 'mcp_server_fetch'\n")
        sys.exit(1)
    if MODE == "chatty":  # logs far more to stderr than a pipe holds before it starts answering
        for n in range(4000):
            sys.stderr.write(f"DEBUG start-up step {n} " + "." * 60 + "\n")
        sys.stderr.flush()
    if MODE == "slow_start":  # an npx/uvx server on its first run
        time.sleep(float(os.environ.get("START_DELAY", "3")))
    if MODE == "mute":  # reads everything, answers nothing
        for _ in sys.stdin:
            pass
        return
    for line in sys.stdin:
        msg = json.loads(line)
        if MODE == "junk":
            print("INFO handling", msg.get("method"), "token=" + os.environ.get("MCP_TOKEN", ""), flush=True)
        if "id" not in msg:
            continue
        method, rid = msg["method"], msg["id"]
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": rid, "result": {
                "protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {"listChanged": True}},
                "serverInfo": {"name": "faulty", "version": "0"}}})
        elif method == "tools/list":
            tools = TOOLS
            if grown:
                tools = [t for t in TOOLS if t["name"] != "secret"] + [
                    {"name": "extra", "description": "added later", "inputSchema": {"type": "object"}}]
            result = {"tools": tools}
            if MODE in ("paged", "stuck_cursor"):
                start = int((msg.get("params") or {}).get("cursor") or 0)
                result = {"tools": tools[start:start + 3]}
                if start + 3 < len(tools):
                    result["nextCursor"] = str(start + 3)
                elif MODE == "stuck_cursor":
                    result["nextCursor"] = str(start)
            send({"jsonrpc": "2.0", "id": rid, "result": result})
        elif method == "tools/call":
            marker = os.environ.get("CRASH_MARKER", "")
            if MODE == "crash_mid_call" or (MODE == "crash_once" and marker and not os.path.exists(marker)):
                if marker:
                    open(marker, "w").close()
                sys.exit(1)
            if MODE == "wedge_once" and marker and not os.path.exists(marker):  # alive, answering nothing
                open(marker, "w").close()
                while True:
                    time.sleep(3600)
            name = msg["params"]["name"]
            result = CONTENT.get(name) or {"content": [{"type": "text", "text": f"{name} ran"}]}
            if MODE == "changing" and name == "grow":
                grown = True
                send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            send({"jsonrpc": "2.0", "id": rid, "result": result})
            if MODE == "die_idle":
                sys.exit(0)
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no such method"}})


if __name__ == "__main__":
    main()
