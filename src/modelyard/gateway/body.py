"""Read a request body without trusting its size: a body over ``gateway.max_request_mb`` is refused
(413) from its declared length before any of it is read, or as soon as the bytes read pass the
bound (chunked uploads), so one oversized request cannot fill the gateway's memory."""

from __future__ import annotations

from starlette.requests import Request


def _mb(size: float) -> str:
    return f"{size / 2**20:.3g} MB"


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int, *, declared: bool):
        self.size, self.limit, self.declared = size, limit, declared
        size_text = _mb(size) if declared else f"more than {_mb(limit)}"
        super().__init__(f"the request body is {size_text}; this gateway accepts at most {_mb(limit)} "
                         "(gateway.max_request_mb)")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared), limit, declared=True)
    pieces: list[bytes] = []
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise BodyTooLarge(size, limit, declared=False)
        pieces.append(piece)
    # a UTF-8 byte order mark (a file saved by Windows tools, PowerShell) is not part of the JSON text
    return b"".join(pieces).removeprefix(b"\xef\xbb\xbf")
