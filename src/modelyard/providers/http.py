"""What the HTTP providers share: one pooled client each, and one mapping from wire failures
(status codes, transport errors, bad JSON) to :class:`ProviderError` reasons.

The transport is aiohttp: per call it costs ~0.25 ms against ~1.2 ms for httpx's own
transport on this class of machine (benchmarks/README.md), and a gateway hop is mostly that
call. Everything aiohttp-specific stays in this module; providers see :class:`HttpClient`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from time import time
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.base import Provider
from modelyard.types import ToolDefinition

Extract = Callable[[Any], tuple[str, str]]


class StreamResponse:
    """A response whose body is read as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse):
        self._response = response
        self.status_code = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Lines without their ending; no length limit (one SSE line can hold a whole answer)."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        async for piece in self._response.content.iter_any():
            pending += decoder.decode(piece)
            if "\n" not in pending:
                continue
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line.removesuffix("\r")
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending.removesuffix("\r")


class HttpClient:
    """One keep-alive connection pool per provider, created lazily inside the running loop."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.headers = headers or {}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session._loop is not loop:
            # The router's slots, not the pool, cap concurrency per model: keep the pool generous.
            connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(headers=self.headers, connector=connector,
                                                  auto_decompress=True)
        return self._session

    @asynccontextmanager
    async def stream(self, path: str, body: dict[str, Any], timeouts: Timeouts, extract: Extract,
                     headers: dict[str, str] | None = None) -> AsyncIterator[StreamResponse]:
        """POST JSON and hand over the streaming response, with transport failures translated.

        Read timeouts are left to the router (first-token and idle bounds); only connect is bounded here.
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect, connect=None, sock_read=None)
        try:
            response = await self.session().post(self.base_url + path, json=body, headers=headers,
                                                 timeout=timeout)
        except (aiohttp.ConnectionTimeoutError, TimeoutError) as exc:
            raise ProviderError(Reason.CONNECT_TIMEOUT, f"connect to {self.base_url} timed out") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(Reason.CONNECT_ERROR, f"cannot reach {self.base_url}: {type(exc).__name__}") from exc
        complete = False
        try:
            if response.status >= 400:
                raise error_from_body(response.status, await _read_capped(response), response.headers, extract)
            yield StreamResponse(response)
            complete = response.content.at_eof()
        except aiohttp.ClientError as exc:  # the stream broke after headers
            raise ProviderError(Reason.CONNECTION_DROPPED, f"stream broke: {type(exc).__name__}") from exc
        finally:
            # An abandoned or broken body must not go back to the pool half-read.
            if complete:
                response.release()
            else:
                response.close()

    async def request_json(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
        """A small control-plane call (warm-up, model listing): (status, parsed JSON or None)."""
        try:
            async with self.session().request(method, self.base_url + path, json=body,
                                              timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(Reason.CONNECT_ERROR, f"cannot reach {self.base_url}: {type(exc).__name__}") from exc
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, None

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # its loop is gone: nothing left to close cleanly
                await self._session.close()
        self._session = None


def make_client(base_url: str, headers: dict[str, str] | None = None) -> HttpClient:
    return HttpClient(base_url, headers)


class HttpProvider(Provider):
    """A provider that talks HTTP to ``endpoint``: owns one lazily created :class:`HttpClient`."""

    default_endpoint = ""

    def __init__(self, name: str, config: ModelConfig):
        super().__init__(name, config)
        self.endpoint = (config.endpoint or self.default_endpoint).rstrip("/")
        self._client: HttpClient | None = None

    def client_headers(self) -> dict[str, str]:
        """Headers sent with every request (auth, API version)."""
        return {}

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = make_client(self.endpoint, self.client_headers())
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def openai_tools(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    """Tool definitions in the OpenAI shape that Ollama, OpenAI-compatible servers and llama.cpp share."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools]


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time())
        except (TypeError, ValueError):
            return None


def reason_for_status(status: int, error_type: str = "") -> Reason:
    if status == 429 or error_type == "rate_limit_error":
        return Reason.RATE_LIMITED
    if status in (503, 529) or error_type == "overloaded_error":
        return Reason.OVERLOADED
    if status in (401, 403):
        return Reason.AUTH_ERROR
    if status >= 500:
        return Reason.SERVER_ERROR
    return Reason.BAD_REQUEST


def error_from_body(status: int, body: bytes, headers: Any, extract: Extract) -> ProviderError:
    """Build the error for a non-2xx answer; ``extract`` pulls (type, message) from the JSON body."""
    error_type, message = "", ""
    try:
        error_type, message = extract(json.loads(body))
    except (ValueError, TypeError, AttributeError, KeyError):
        message = body[:200].decode("utf-8", "replace")
    return ProviderError(
        reason_for_status(status, error_type),
        f"HTTP {status}" + (f" {error_type}" if error_type else "") + (f": {message}" if message else ""),
        status=status,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


async def _read_capped(response: aiohttp.ClientResponse, limit: int = 65536) -> bytes:
    data = b""
    async for piece in response.content.iter_any():
        data += piece
        if len(data) >= limit:
            break
    return data


def loads(line: str | bytes, what: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise ProviderError(Reason.MALFORMED_RESPONSE, f"{what} is not valid JSON: {line[:80]!r}") from None


def parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Tool arguments arrive as an object (Ollama) or a JSON string (OpenAI); always return a dict."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    value = loads(raw, "tool call arguments")
    if not isinstance(value, dict):
        raise ProviderError(Reason.MALFORMED_RESPONSE, "tool call arguments are not a JSON object")
    return value
