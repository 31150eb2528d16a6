"""What the HTTP providers share: one pooled client each, and one mapping from wire failures
(status codes, transport errors, bad JSON) to :class:`ProviderError` reasons."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from time import time
from typing import Any

import httpx

from modelyard.config.schema import Timeouts
from modelyard.errors import ProviderError, Reason


def make_client(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    # Read timeout is left to the router (first-token / idle bounds); the pool is generous
    # because the router's slots, not httpx, are what cap concurrency per model.
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers or {},
        timeout=httpx.Timeout(connect=5.0, read=None, write=30.0, pool=None),
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
    )


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


def error_from_body(status: int, body: bytes, headers: httpx.Headers,
                    extract: Callable[[Any], tuple[str, str]]) -> ProviderError:
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


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, path: str, body: dict[str, Any], timeouts: Timeouts,
                      extract: Callable[[Any], tuple[str, str]],
                      headers: dict[str, str] | None = None) -> AsyncIterator[httpx.Response]:
    """POST and hand over the streaming response, with transport failures already translated."""
    timeout = httpx.Timeout(connect=timeouts.connect, read=None, write=30.0, pool=None)
    request = client.build_request("POST", path, json=body, headers=headers, timeout=timeout)
    try:
        response = await client.send(request, stream=True)
    except httpx.ConnectTimeout as exc:
        raise ProviderError(Reason.CONNECT_TIMEOUT, f"connect to {client.base_url} timed out") from exc
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise ProviderError(Reason.CONNECT_ERROR, f"cannot reach {client.base_url}: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise ProviderError(Reason.CONNECT_ERROR, f"{type(exc).__name__} talking to {client.base_url}") from exc
    try:
        if response.status_code >= 400:
            raise error_from_body(response.status_code, await _read_capped(response), response.headers, extract)
        yield response
    except httpx.HTTPError as exc:  # the stream broke after headers
        raise ProviderError(Reason.CONNECTION_DROPPED, f"stream broke: {type(exc).__name__}") from exc
    finally:
        await response.aclose()


async def _read_capped(response: httpx.Response, limit: int = 65536) -> bytes:
    data = b""
    async for piece in response.aiter_bytes():
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
