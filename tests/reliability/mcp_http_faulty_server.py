"""An MCP server over streamable HTTP, speaking raw JSON-RPC in a thread on loopback, that misbehaves as told.

Answers are ``application/json`` (a server may choose that over SSE); ``GET`` is 405 (no server stream),
``DELETE`` ends a session. What it does wrong is set on the object while it runs:

- ``token``: requests without ``Authorization: Bearer <token>`` get 401;
- ``forget_sessions()``: the sessions it gave are gone, as after a restart: 404 to each (the spec's signal
  to start a new session); ``keep_sessions = False``: the new ones are forgotten at once too;
- ``drop_calls``: that many ``tools/call`` requests get the connection closed with no answer (mid-call);
- its ``slow`` tool sleeps ``seconds`` before answering.

``requests`` records (method, session id, Authorization header) of every POST.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOOLS = [
    {"name": "echo", "description": "echoes", "inputSchema": {"type": "object",
                                                              "properties": {"text": {"type": "string"}}}},
    {"name": "slow", "description": "answers late", "inputSchema": {"type": "object",
                                                                    "properties": {"seconds": {"type": "number"}}}},
]


class FaultyHttpMcp:
    def __init__(self) -> None:
        self.token: str | None = None
        self.drop_calls = 0
        self.keep_sessions = True
        self.sessions: set[str] = set()
        self.requests: list[tuple[str, str | None, str | None]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
                      ) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authorized(self) -> bool:
                if outer.token and self.headers.get("Authorization") != f"Bearer {outer.token}":
                    data = b"unauthorized"
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", "Bearer")
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return False
                return True

            def do_GET(self) -> None:
                self.reply(405, headers={"Allow": "POST, DELETE"})

            def do_DELETE(self) -> None:
                with outer.lock:
                    outer.sessions.discard(self.headers.get("Mcp-Session-Id", ""))
                self.reply(200)

            def do_POST(self) -> None:
                msg = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                sid = self.headers.get("Mcp-Session-Id")
                method = msg.get("method", "")
                with outer.lock:
                    outer.requests.append((method, sid, self.headers.get("Authorization")))
                if not self.authorized():
                    return
                rid = msg.get("id")
                if method == "initialize":
                    new = uuid.uuid4().hex
                    with outer.lock:
                        if outer.keep_sessions:
                            outer.sessions.add(new)
                    self.reply(200, {"jsonrpc": "2.0", "id": rid, "result": {
                        "protocolVersion": msg["params"]["protocolVersion"],
                        "capabilities": {"tools": {"listChanged": False}},
                        "serverInfo": {"name": "faulty-http", "version": "0"}}}, {"Mcp-Session-Id": new})
                    return
                if sid not in outer.sessions:
                    self.reply(404, {"jsonrpc": "2.0", "id": "server-error",
                                     "error": {"code": -32600, "message": "Session not found"}})
                    return
                if rid is None:  # a notification
                    self.reply(202)
                    return
                if method == "tools/list":
                    self.reply(200, {"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
                elif method == "tools/call":
                    with outer.lock:
                        drop = outer.drop_calls > 0
                        outer.drop_calls -= drop
                    if drop:  # mid-call: the connection goes, no answer
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    name, args = msg["params"]["name"], msg["params"].get("arguments") or {}
                    if name == "slow":
                        time.sleep(float(args.get("seconds", 1)))
                    text = args.get("text", "") if name == "echo" else f"{name} ran"
                    self.reply(200, {"jsonrpc": "2.0", "id": rid,
                                     "result": {"content": [{"type": "text", "text": text}]}})
                else:
                    self.reply(200, {"jsonrpc": "2.0", "id": rid,
                                     "error": {"code": -32601, "message": "no such method"}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mcp"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def forget_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def count(self, method: str) -> int:
        with self.lock:
            return sum(1 for m, _, _ in self.requests if m == method)

    def __enter__(self) -> FaultyHttpMcp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
