"""Tools served by MCP servers, through the official ``mcp`` SDK: over stdio (a subprocess), streamable
HTTP (the current remote transport) or legacy SSE.

Each configured server is connected for the duration of one agent loop, its tools are listed and offered
to the model, and calls go through ``session.call_tool``. A tool whose name clashes with one already in the
toolbox is offered as ``server_tool``.

Servers are other people's code, so nothing they do may reach the user as a traceback, and nothing they do
may take the turn down with them:

- each connection lives in a task of its own: the SDK's task groups (a transport that fails tears its group
  down) cancel that task, never the agent loop;
- a server that dies at start (or lists tools the SDK refuses) is a clear start error; one that dies mid-call
  gives the model an error result, and is started again (``tools.mcp[].restarts``, default once per request,
  after a back-off of 0.5 s, doubled) — never in a loop, and said in the result and the log;
- an HTTP session the server no longer knows (404, as after the server restarted) is replaced by a new one and
  the call sent again, as the spec requires (the SDK only reports "Session terminated");
- ``notifications/tools/list_changed`` marks the list stale: it is listed again before the next model step;
- a call past its timeout is cancelled (the SDK tells the server) and the connection kept — unless the
  server does not answer a ping either: then it is wedged, and started again as a dead one;
- what a stdio server last wrote to stderr is kept (its last 4 KB) and quoted when it cannot start or dies: an
  ``npx`` package that does not exist or a Python import error says so, instead of the SDK's "Connection closed";
- names providers refuse (dots, over 64 characters) are offered under a valid name and called by the real
  one; a tool whose schema is no JSON schema is left out; non-text content is described rather than dropped;
- credentials for remote servers come from the environment (``bearer_token_env``, ``headers_env``); logs and
  messages name a remote server by its URL without the query.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from modelyard.agents.tools.base import Tool, Toolbox, ToolError
from modelyard.config.schema import McpServer
from modelyard.errors import redact
from modelyard.types import ToolDefinition

log = logging.getLogger("modelyard.agents.tools")

#: what OpenAI, Anthropic and Ollama's OpenAI-compatible API accept as a function name
_VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_NAME = 64


class _QuietSdkLog(logging.Filter):
    """The SDK logs each line a server prints to stdout that is no JSON-RPC with a traceback quoting the
    line — which may be the server printing its environment. Keep a one-line warning without the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(error).__name__}; the line is not shown)"
            record.args = ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


for _name in ("mcp.client.stdio", "mcp.client.streamable_http", "mcp.client.sse"):
    _sdk_log = logging.getLogger(_name)
    if not any(isinstance(f, _QuietSdkLog) for f in _sdk_log.filters):
        _sdk_log.addFilter(_QuietSdkLog())
# the HTTP transports log each session id at INFO: a session id lets its holder act in the session
logging.getLogger("mcp.client.streamable_http").setLevel(logging.WARNING)
# httpx2 (the SDK's HTTP client) logs every request's full URL at INFO: a key in a query would reach the log
logging.getLogger("httpx2").setLevel(logging.WARNING)

#: how long a stdio server that failed may take to finish writing to stderr before its error is told
_LAST_WORDS_WAIT = 0.5

#: first back-off before a server is started again, doubled for each further restart in one request
RESTART_BACKOFF = 0.5
_MAX_BACKOFF = 5.0
#: after a call past its timeout, how long a ping may take before the server is taken for wedged (restarted)
PING_TIMEOUT = 5.0
#: pages of tools/list followed at most
MAX_TOOL_PAGES = 50
#: how long closing a connection (a stdio server's exit, an HTTP session's DELETE) may take
_CLOSE_TIMEOUT = 10.0
try:
    from mcp.types import CONNECTION_CLOSED as _CONNECTION_CLOSED
except ImportError:  # pragma: no cover - older SDKs
    _CONNECTION_CLOSED = -32000


def _field(obj: Any, *names: str) -> Any:
    """mcp 1.x uses camelCase attributes, 2.x snake_case."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's (nested) task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class StderrTail(asyncio.Protocol):
    """The last bytes a stdio server wrote to stderr, read as they come (a pipe nobody reads would stall a chatty
    server once the pipe's buffer is full; a file would grow for as long as the server runs)."""

    KEEP = 4096

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        if len(self.data) > 2 * self.KEEP:
            del self.data[:-self.KEEP]

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended.set()

    async def settled(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for the server's stderr to end, so its last words are read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), timeout)

    def said(self, limit: int = 400) -> str:
        """The last non-empty lines (a traceback's last line is its error), at most ``limit`` characters."""
        lines = [line.strip() for line in self.data[-self.KEEP:].decode("utf-8", "replace").splitlines()]
        text = " | ".join([line for line in lines if line][-3:])
        return text if len(text) <= limit else "…" + text[-limit:]


@asynccontextmanager
async def _stdio_with_tail(params: StdioServerParameters, tail: StderrTail) -> AsyncIterator[Any]:
    """The SDK's stdio transport with the server's stderr going to ``tail`` (the SDK hands ``errlog`` to the
    process at spawn only: our end of the pipe is closed once it has started, so the tail ends with the server)."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=0)
    try:
        pipe, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: tail, reader)
    except BaseException:
        reader.close()
        os.close(write_fd)
        raise
    errlog = os.fdopen(write_fd, "w")
    try:
        async with stdio_client(params, errlog=errlog) as streams:
            errlog.close()  # the server holds its own copy
            yield streams
    finally:
        errlog.close()
        pipe.close()


def _describe(exc: BaseException) -> str:
    leaf = _leaf(exc)
    first = str(leaf).strip().splitlines()[0] if str(leaf).strip() else ""
    return f"{type(leaf).__name__}: {first[:300]}" if first else type(leaf).__name__


def provider_name(remote: str, taken: set[str], label: str) -> str:
    """A name every provider accepts (``^[a-zA-Z0-9_-]{1,64}$``) and no other tool has."""
    name = remote if remote not in taken else f"{label}_{remote}"
    if not _VALID_NAME.match(name):
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:_MAX_NAME] or "tool"
    base, n = name, 2
    while name in taken:
        suffix = f"_{n}"
        name, n = base[:_MAX_NAME - len(suffix)] + suffix, n + 1
    return name


def _item_text(item: Any) -> str:
    kind = getattr(item, "type", "content")
    text = getattr(item, "text", None)
    if isinstance(text, str):
        return text
    resource = getattr(item, "resource", None)
    if resource is not None:  # embedded resource: its text, or what it is
        inner = getattr(resource, "text", None)
        uri = getattr(resource, "uri", "")
        return inner if isinstance(inner, str) else f"[resource {uri}: binary content not shown]"
    if kind == "resource_link":
        return f"[resource_link {getattr(item, 'uri', '')}]"
    mime = _field(item, "mime_type", "mimeType")
    return f"[{kind}{' ' + mime if mime else ''}: not shown to the model]"


def _result_text(result: Any) -> tuple[bool, str]:
    parts = [_item_text(item) for item in _field(result, "content") or []]
    structured = _field(result, "structured_content", "structuredContent")
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, default=str))
    return bool(_field(result, "is_error", "isError")), "\n".join(parts)


def _valid_schema(schema: Any) -> bool:
    try:
        Draft202012Validator.check_schema(schema)
    except Exception:
        return False
    return isinstance(schema, dict)


def _error_code(exc: BaseException) -> int | None:
    code = getattr(getattr(_leaf(exc), "error", None), "code", None)
    return code if isinstance(code, int) else None


async def list_all_tools(session: ClientSession) -> list[Any]:
    """Every page of ``tools/list`` (a server pages it as it likes; the SDK returns one page). A cursor seen
    before (servers that hand back the same one on the last page) or more than MAX_TOOL_PAGES pages end it."""
    from mcp.types import PaginatedRequestParams

    tools: dict[str, Any] = {}
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_TOOL_PAGES):
        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        for spec in page.tools:
            tools.setdefault(spec.name, spec)  # a name listed twice: the first stands
        cursor = _field(page, "next_cursor", "nextCursor")
        if not cursor:
            return list(tools.values())
        if cursor in seen:
            log.warning("MCP tools/list: the server gave a cursor it had given before; %d tools taken", len(tools))
            return list(tools.values())
        seen.add(cursor)
    log.warning("MCP tools/list: more than %d pages; the first %d tools taken", MAX_TOOL_PAGES, len(tools))
    return list(tools.values())


class _Lost(Exception):
    """The connection ended under a call: whether the call took effect is unknown."""


class _Refused(ToolError):
    """A URL that refused streamable HTTP's initialize with 400/404/405: under ``transport: auto``, try SSE."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Expired(Exception):
    """The server no longer knows the HTTP session (404): the call never ran."""


class _Connection:
    """One session with a server, held open by a task of its own until :meth:`close`."""

    def __init__(self, server: McpServer, headers: dict[str, str], cwd: Path | None,
                 on_change: Callable[[], None], transport: str = "streamable-http") -> None:
        self.server = server
        self.transport = transport
        self.headers = headers
        self.cwd = cwd
        self.on_change = on_change
        self.session: ClientSession | None = None
        self.ended = asyncio.Event()  # the connection is gone (the server died, the transport failed, closed)
        self.error: BaseException | None = None
        self.stderr = StderrTail()  # a stdio server's last words
        self.statuses: list[int] = []  # HTTP statuses of the POSTs the server answered, newest last
        self.expired = False  # the last POST carried a session id and got 404: the server forgot the session
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def dead(self) -> bool:
        if self.ended.is_set():
            return True
        # the SDK gives no public word for "the server closed the connection": a stdio server's exit shows only
        # as its dispatcher closed (then every request fails at once with "Connection closed", never sent)
        dispatcher = getattr(self.session, "_dispatcher", None)
        return bool(getattr(dispatcher, "_closed", False))

    async def open(self) -> Any:
        """Connect, initialize and list the tools, within ``start_timeout``; the listing."""
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved" after a timeout
        self._task = asyncio.create_task(self._hold(ready), name=f"mcp {self.server.label}")
        try:
            done, _ = await asyncio.wait({ready}, timeout=self.server.start_timeout)
        except BaseException:  # the turn was cancelled while the server started
            self._task.cancel()
            raise
        if not done:
            await self.close(at_once=True)
            raise TimeoutError
        return ready.result()

    async def _hold(self, ready: asyncio.Future[Any]) -> None:
        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport(stack))
                session = await stack.enter_async_context(
                    ClientSession(read, write, message_handler=self._on_message))
                await session.initialize()
                listed = await list_all_tools(session)
                self.session = session
                if not ready.done():
                    ready.set_result(listed)
                await self._stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.set_exception(TimeoutError())
            raise
        except BaseException as exc:  # the server died, the transport failed: an ExceptionGroup out of the SDK
            self.error = exc
            if not ready.done():  # whoever waits gets an Exception, never a BaseExceptionGroup it would not catch
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(_describe(exc)))
        finally:
            self.ended.set()

    def _transport(self, stack: AsyncExitStack) -> AbstractAsyncContextManager[Any]:
        server = self.server
        if server.command is not None:
            params = StdioServerParameters(command=server.command, args=list(server.args),
                                           env=dict(server.env) or None, cwd=str(self.cwd) if self.cwd else None)
            return _stdio_with_tail(params, self.stderr)
        import httpx2
        from mcp.client.sse import sse_client
        from mcp.client.streamable_http import streamable_http_client

        async def seen(response: Any) -> None:
            # POSTs carry the calls; a GET (streamable HTTP's optional stream: a 405 there is normal) or the closing
            # DELETE only when it refuses the credentials; SSE's GET is its connection: every refusal
            if (response.request.method == "POST" or response.status_code in (401, 403)
                    or (self.transport == "sse" and response.status_code >= 400)):
                self.statuses = [*self.statuses[-7:], response.status_code]
                self.expired = response.status_code == 404 and "mcp-session-id" in response.request.headers

        def client(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None) -> Any:
            return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks={"response": [seen]})

        assert server.url is not None
        if self.transport == "sse":
            return sse_client(server.url, headers=self.headers, timeout=30, httpx_client_factory=client)
        http = client(self.headers, httpx2.Timeout(30.0, read=300.0))
        stack.push_async_callback(http.aclose)
        return streamable_http_client(server.url, http_client=http)

    async def _on_message(self, message: Any) -> None:
        root = getattr(message, "root", message)  # mcp 1.x wraps notifications in ServerNotification
        if getattr(root, "method", None) == "notifications/tools/list_changed":
            self.on_change()

    async def close(self, *, at_once: bool = False) -> None:
        """End the connection: gracefully (a stdio server's exit, an HTTP session's DELETE) within
        _CLOSE_TIMEOUT, else — or ``at_once`` — by cancelling its task."""
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            if not at_once:
                _, pending = await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
                if not pending:
                    return
            task.cancel()
            await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
        except BaseException:  # our caller was cancelled: the connection must not outlive it
            task.cancel()
            raise


class McpServerTools:
    """The tools of one configured server for one agent loop: offered in ``box``, kept current when the
    server says its list changed, and the server started again (within bounds) when it dies."""

    def __init__(self, server: McpServer, box: Toolbox, *, timeout: float, cwd: Path | None = None) -> None:
        self.server = server
        self.box = box
        self.timeout = server.call_timeout or timeout
        self.cwd = cwd
        self.agent = box.agent
        if server.command is not None:
            self.prefix = Path(server.command).stem if not server.args else Path(server.args[-1]).stem
        else:
            self.prefix = re.sub(r"[^a-zA-Z0-9]", "_", (server.label.split("//", 1)[-1].split(":")[0]
                                                         .split("/")[0])) or "mcp"
        self.transport: str = server.transport if server.url else "stdio"
        self.names: dict[str, str] = {}  # the server's tool name -> the name offered to the model
        self.restarted = 0
        self.renewed = 0  # new HTTP sessions for forgotten ones (404): the spec's rule, not counted as restarts
        self.stale = False
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def label(self) -> str:
        return self.server.label

    @property
    def connected(self) -> bool:
        """False once the server is known to have gone (it is started again at the next call, within bounds)."""
        return self._conn is not None and not self._conn.dead()

    def _headers(self) -> dict[str, str]:
        server = self.server
        headers = dict(server.headers)
        wanted = dict(server.headers_env)
        if server.bearer_token_env:
            wanted["Authorization"] = server.bearer_token_env
        for name, env in wanted.items():
            value = os.environ.get(env)
            if not value:
                key = "bearer_token_env" if name == "Authorization" and env == server.bearer_token_env \
                    else f"headers_env.{name}"
                raise ToolError(f"MCP server '{self.label}' could not start: the environment variable {env} "
                                f"(tools.mcp[].{key}) is not set")
            headers[name] = f"Bearer {value}" if env == server.bearer_token_env and name == "Authorization" \
                else value
        return headers

    def _mark_stale(self) -> None:
        self.stale = True

    def _unrunnable(self, leaf: BaseException) -> str | None:
        """A stdio server's program that is not there, or that this user may not run, said with what to do — it
        said "FileNotFoundError: [Errno 2] No such file or directory: 'x'" alone. `modelyard check` says it before
        any request (ops/check.py)."""
        command = self.server.command
        if command is None or not isinstance(leaf, (FileNotFoundError, PermissionError)):
            return None
        if leaf.filename is not None and os.path.basename(str(leaf.filename)) != os.path.basename(command):
            return None  # another file (its working directory gone): the error's own words name it
        if isinstance(leaf, PermissionError):
            return (f"the program '{command}' is not executable: make it executable (chmod +x), or start it through "
                    "its interpreter (tools.mcp[].command: python3, args: [the script])")
        return (f"the program '{command}' is not found ({'not on PATH' if '/' not in command else 'no such file'}): "
                "install it, or correct tools.mcp[].command (a relative path is read from the config file's "
                "directory)")

    def _problem(self, exc: BaseException, conn: _Connection | None) -> str:
        """What went wrong, in words: an HTTP status the server answered with says more than the SDK's error."""
        status = conn.statuses[-1] if conn and conn.statuses else None
        if isinstance(_leaf(exc), TimeoutError):
            return f"no answer within {self.server.start_timeout:g} s (tools.mcp[].start_timeout)"
        if conn is not None and conn.expired:
            return "HTTP 404 for the session the server had just given"
        if (unrunnable := self._unrunnable(_leaf(exc))) is not None:
            return unrunnable
        if status in (401, 403):
            which = ("the token in the variable named by tools.mcp[].bearer_token_env or headers_env"
                     if self.server.bearer_token_env or self.server.headers_env
                     else "no credentials are configured: set tools.mcp[].bearer_token_env or headers_env")
            return f"HTTP {status}: the server refused the credentials ({which})"
        if status == 404 and (_error_code(exc) is not None or conn is None or conn.session is None):
            return ("HTTP 404: nothing answers MCP at this URL (streamable-HTTP servers usually serve /mcp, "
                    "SSE ones /sse)")
        if status == 405 and conn is not None and conn.transport == "streamable-http":
            return "HTTP 405: the URL refuses POST (a legacy SSE server? set tools.mcp[].transport: sse)"
        text = _describe(exc)
        if self.server.url:
            text = text.replace(self.server.url, self.label)
            if status is not None and status >= 400 and f"{status}" not in text:
                text = f"HTTP {status}: {text}"
        return redact(text)

    async def _last_words(self, conn: _Connection) -> str:
        """``; it said on stderr: …`` for a stdio server that wrote anything there (redacted, bounded), else ""."""
        if self.server.command is None:
            return ""
        await conn.stderr.settled(_LAST_WORDS_WAIT)
        said = conn.stderr.said()
        for value in self.server.env.values():  # what we gave it may be a token it prints back
            if len(value) >= 6:
                said = said.replace(value, "…")
        return f"; it said on stderr: {redact(said)}" if said else ""

    async def _connect(self) -> tuple[_Connection, Any]:
        if self.transport != "auto":
            return await self._connect_by(self.transport)
        try:  # the spec's backwards compatibility: POST initialize; a 400/404/405 there, then SSE's GET
            found = "streamable-http", await self._connect_by("streamable-http", fallback=True)
        except _Refused as refused:
            try:
                found = "sse", await self._connect_by("sse")
            except ToolError as exc:
                sse = str(exc).split(": ", 1)[-1]
                raise ToolError(f"{refused}; nor over SSE ({sse.split(':')[0] if sse.startswith('HTTP ') else sse})"
                                ) from None
            log.info("agent %s: MCP server '%s' speaks the legacy SSE transport (streamable HTTP refused with "
                     "HTTP %s)", self.agent, self.label, refused.status)
        self.transport = found[0]  # restarts use what worked
        return found[1]

    async def _connect_by(self, transport: str, *, fallback: bool = False) -> tuple[_Connection, Any]:
        conn = _Connection(self.server, self._headers() if self.server.url else {}, self.cwd, self._mark_stale,
                           transport)
        try:
            listed = await conn.open()
        except Exception as exc:  # died at start, closed the connection, listed tools the SDK refuses...
            problem = self._problem(exc, conn)
            await conn.close()
            problem += await self._last_words(conn)
            status = conn.statuses[-1] if conn.statuses else None
            if fallback and conn.session is None and status in (400, 404, 405):
                raise _Refused(f"MCP server '{self.label}' could not start: {problem}", status) from None
            raise ToolError(f"MCP server '{self.label}' could not start: {problem}") from None
        return conn, listed

    async def start(self) -> None:
        self._conn, listed = await self._connect()
        self._offer(listed)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    def _offer(self, listed: list[Any]) -> None:
        """Offer the listed tools in the box: new ones added, gone ones removed, changed ones replaced."""
        wanted: dict[str, Any] = {}
        for spec in listed:
            parameters = _field(spec, "input_schema", "inputSchema") or {"type": "object", "properties": {}}
            if not _valid_schema(parameters):
                log.warning("MCP server '%s': tool '%s' left out: its input schema is not a valid JSON schema",
                            self.label, spec.name[:100])
                continue
            wanted[spec.name] = (spec, parameters)
        gone = [remote for remote in self.names if remote not in wanted]
        for remote in gone:
            self.box.remove(self.names.pop(remote))
        added = []
        for remote, (spec, parameters) in wanted.items():
            name = self.names.get(remote)
            if name is None:
                name = provider_name(remote, set(self.box.tools), self.prefix)
                self.names[remote] = name
                added.append(name)

            async def run(args: dict[str, Any], remote: str = remote) -> str:
                return await self.call(remote, args)

            self.box.put(Tool(ToolDefinition(name, spec.description or "", parameters), run))
        if self.restarted or self.renewed or self.stale or gone:
            log.info("agent %s: MCP server '%s' tools now: %d (added: %s; removed: %s)", self.agent, self.label,
                     len(self.names), ", ".join(added) or "none", ", ".join(gone) or "none")

    async def refresh(self) -> None:
        """List the tools again if the server said they changed (``notifications/tools/list_changed``)."""
        if not self.stale or self._conn is None or self._conn.dead():
            return
        conn = self._conn
        try:
            async with asyncio.timeout(self.timeout):
                listed = await list_all_tools(conn.session)  # type: ignore[arg-type]
        except Exception as exc:
            log.warning("agent %s: MCP server '%s' said its tools changed but listing them failed (%s); the "
                        "previous list stays", self.agent, self.label, self._problem(exc, conn))
            self.stale = False
            return
        self._offer(listed)
        self.stale = False

    async def call(self, remote: str, args: dict[str, Any]) -> str:
        async with self._lock:
            note = ""
            if self._conn is None or self._conn.dead():
                note = f"[the MCP server had stopped and was {await self._restart('had stopped')}]\n"
            try:
                return note + await self._call(remote, args)
            except _Expired as exc:  # nothing ran: a new session and the call again (the spec's MUST), once
                await self._renew(str(exc))
                try:
                    return note + await self._call(remote, args)
                except (_Expired, _Lost) as again:
                    raise ToolError(f"the MCP server failed again on a new session ({again}); call the tool "
                                    "again later") from None
            except _Lost as exc:
                restarted = await self._restart("failed during this call", str(exc))  # raises when it cannot
                raise ToolError(f"the MCP server failed during this call ({exc}); whether the call took effect "
                                f"is unknown. It was {restarted}: call the tool again if it is still needed"
                                ) from None

    async def _renew(self, problem: str) -> None:
        """A new HTTP session for one the server forgot (restarted, expired it): not a restart of anything."""
        self.renewed += 1
        log.warning("agent %s: MCP server '%s' no longer knew its session (%s); starting a new session and "
                    "sending the call again (%d in this request)", self.agent, self.label, problem, self.renewed)
        old, self._conn = self._conn, None
        if old is not None:
            await old.close()
        try:
            self._conn, listed = await self._connect()
        except ToolError as exc:
            log.warning("agent %s: %s", self.agent, exc)
            raise ToolError(f"the MCP server no longer knew its session and a new one could not be started "
                            f"({str(exc).split(': ', 1)[-1]})") from None
        self._offer(listed)

    async def _call(self, remote: str, args: dict[str, Any]) -> str:
        conn = self._conn
        assert conn is not None and conn.session is not None
        try:
            async with asyncio.timeout(self.timeout):
                result = await conn.session.call_tool(remote, args)
        except TimeoutError:
            if conn.dead():
                raise _Lost(self._problem(conn.error or ConnectionError("connection closed"), conn)) from None
            late = f"no answer within {self.timeout:g} s (TimeoutError; tools.mcp[].call_timeout)"
            if not await self._answers_ping(conn):  # wedged, not just slow at this one call
                raise _Lost(f"{late}, nor to a ping") from None
            log.warning("agent %s: MCP server '%s': tool %s gave no answer within %g s; cancelled (the server "
                        "still answers a ping)", self.agent, self.label, remote[:100], self.timeout)
            raise ToolError(f"{late}; the call was cancelled") from None
        except Exception as exc:  # the server died, broke the protocol, or answered with an error
            leaf = _leaf(exc)
            code = _error_code(exc)
            status = conn.statuses[-1] if conn.statuses else None
            if conn.expired:  # the SDK says "Session terminated" (or passes the server's 404 error on)
                raise _Expired(f"HTTP 404: {str(leaf)[:200]}") from None
            if status in (401, 403):
                raise ToolError(f"the MCP server refused the call: {self._problem(exc, conn)}") from None
            if conn.dead() or code is None or code == _CONNECTION_CLOSED:
                with contextlib.suppress(TimeoutError):  # its task holds the cause (a dropped HTTP connection...)
                    await asyncio.wait_for(conn.ended.wait(), 1.0)
                raise _Lost(self._problem(conn.error or exc, conn)) from None
            raise ToolError(f"the MCP server answered with an error: {self._problem(exc, conn)}") from None
        is_error, text = _result_text(result)
        if is_error:
            raise ToolError(text or "the MCP tool reported an error")
        return text

    async def _answers_ping(self, conn: _Connection) -> bool:
        try:
            async with asyncio.timeout(min(PING_TIMEOUT, self.timeout)):
                await conn.session.send_ping()  # type: ignore[union-attr]
        except Exception as exc:  # an error answer is an answer: alive (a server may not know "ping")
            return _error_code(exc) not in (None, _CONNECTION_CLOSED) and not conn.dead()
        return True

    async def _restart(self, why: str, problem: str = "") -> str:
        """Start the server again (a new connection for a remote one), within ``restarts``; "restarted (n of m
        …)" for the model. Raises :class:`ToolError` when the budget is spent or the start fails."""
        limit = self.server.restarts
        what = f"the MCP server {why}{f' ({problem})' if problem else ''}"
        if self.restarted >= limit:
            log.warning("agent %s: MCP server '%s' %s%s; not restarted (restarted %d of tools.mcp[].restarts=%d "
                        "times in this request)", self.agent, self.label, why, f" ({problem})" if problem else "",
                        self.restarted, limit)
            raise ToolError(f"{what}, and it was already restarted {self.restarted} time(s) in this request "
                            "(tools.mcp[].restarts): its tools are unavailable until the next request")
        self.restarted += 1
        delay = min(RESTART_BACKOFF * 2 ** (self.restarted - 1), _MAX_BACKOFF)
        old, self._conn = self._conn, None
        said = ""
        if old is not None:
            await old.close()
            said = await self._last_words(old)  # the operator's clue (a traceback's last line), not the model's
        log.warning("agent %s: MCP server '%s' %s%s%s; restarting it in %.1f s (restart %d of %d in this request)",
                    self.agent, self.label, why, f" ({problem})" if problem else "", said, delay, self.restarted,
                    limit)
        await asyncio.sleep(delay)
        try:
            self._conn, listed = await self._connect()
        except ToolError as exc:
            log.warning("agent %s: %s", self.agent, exc)
            raise ToolError(f"{what}; restarting it failed ({str(exc).split(': ', 1)[-1]}): its tools are "
                            "unavailable for the rest of this request") from None
        self._offer(listed)
        log.warning("agent %s: MCP server '%s' restarted (%d of %d in this request)", self.agent, self.label,
                    self.restarted, limit)
        return f"restarted ({self.restarted} of {limit} restarts in this request)"


@asynccontextmanager
async def mcp_server_tools(server: McpServer, box: Toolbox, *, timeout: float,
                           cwd: Path | None = None) -> AsyncIterator[McpServerTools]:
    """Connect ``server``, offer its tools in ``box`` and keep them current until the context ends."""
    tools = McpServerTools(server, box, timeout=timeout, cwd=cwd)
    await tools.start()
    box.refreshers.append(tools.refresh)
    try:
        yield tools
    finally:
        await tools.close()
