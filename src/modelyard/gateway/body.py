"""Read a request body without trusting its size: a body over ``gateway.max_request_mb`` is refused
(413) from its declared length before any of it is read, or as soon as the bytes read pass the
bound (chunked uploads), so one oversized request cannot fill the gateway's memory."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request


def _mb(size: float) -> str:
    return f"{size / 2**20:.3g} MB"


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int, *, declared: bool):
        self.size, self.limit, self.declared = size, limit, declared
        size_text = _mb(size) if declared else f"more than {_mb(limit)}"
        super().__init__(f"the request body is {size_text}; this gateway accepts at most {_mb(limit)} "
                         "(gateway.max_request_mb)")


def header(request: Request, name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase: ASGI servers give names in lowercase), as Starlette's
    ``request.headers.get`` reads it, without building its ``Headers`` (issue #15: a model request asks for two)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(request: Request, limit: int) -> bytes:
    declared = header(request, b"content-length") or ""
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared), limit, declared=True)
    pieces: list[bytes] = []
    size = 0
    receive = request.receive
    while True:  # what request.stream() does, without its async generator (issue #15)
        message = await receive()
        if message["type"] == "http.request":
            piece = message.get("body", b"")
            size += len(piece)
            if size > limit:
                raise BodyTooLarge(size, limit, declared=False)
            pieces.append(piece)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    request._stream_consumed = True  # as stream() leaves it: a second read says so instead of waiting
    # a UTF-8 byte order mark (a file saved by Windows tools, PowerShell) is not part of the JSON text
    return b"".join(pieces).removeprefix(b"\xef\xbb\xbf")
