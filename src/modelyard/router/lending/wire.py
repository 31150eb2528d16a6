"""The slot protocol between a running ``serve`` (the lender) and front-ends on the same machine.

One unix-socket connection per front-end process, newline-delimited JSON both ways. Requests that
need an answer carry an ``id`` and get a reply with the same ``id``; verdicts and releases are sent
without one (the connection keeps their order). Everything a front-end holds — slots, waiters,
breaker probes — is tied to its connection: when the connection ends (the front-end exits, or the
kernel closes it after kill -9) the lender gives it all back at once, so no lease is needed.

Messages (front-end → serve):

- ``hello {pid, version}`` → ``{pid, version, limits: {model: max_concurrent}}``; a front-end whose
  :data:`VERSION` differs (serve still runs the code from before an upgrade) uses its own state
- ``acquire {id, model, timeout}`` → ``{id, ok, waited, reason?, message?}``: a slot in serve's own
  FIFO queue, or the queue bound ran out there
- ``release {id}`` (the slot granted to acquire ``id``), ``drop {id}`` (give up a wait, or the slot
  if it was granted meanwhile)
- ``admit {id, model}`` → ``{id, admission: pass|probe|null, generation, detail}``; then
  ``succeeded {id}``, ``failed {id, reason, retry_after}``, ``abandoned {id}`` (always, last)
- ``view {id}`` → ``{id, view: {model: [condition, detail, in_flight, waiting]}}``
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

#: a line longer than this is not ours: the connection is closed
MAX_LINE = 64 * 1024
#: bumped whenever a message changes meaning: both sides must speak the same one
VERSION = 1


class Op(StrEnum):
    HELLO = "hello"
    ACQUIRE = "acquire"
    RELEASE = "release"
    DROP = "drop"
    ADMIT = "admit"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"
    VIEW = "view"


class ProtocolError(Exception):
    """A line that is not a message of this protocol."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("not an object")
    return message
