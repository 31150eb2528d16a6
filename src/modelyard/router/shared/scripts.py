"""modelyard's Lua scripts run by their SHA1, one round trip a call, and loaded all at once when the server lacks them.

redis-py's ``Script`` objects cost round trips the calls cannot spare: a pipeline holding one first asks ``SCRIPT
EXISTS`` for every script in it and waits for the answer (redis-py's ``Pipeline.load_scripts``), so each heartbeat —
one pipeline — was two round trips; and after a Redis restart (its script cache empty) each script was loaded by its
own first use, one ``SCRIPT LOAD`` round trip at a time (plus the refused ``EVALSHA`` before it). Here a call is one
``EVALSHA``; a ``NOSCRIPT`` reply loads every script of the link in one pipeline, and the call is sent again — safe
for any script, as Redis ran nothing of it; a pipeline is sent again whole, so only calls that may run twice go in one
(:data:`.link.REPEATABLE`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


@dataclass(frozen=True, slots=True)
class Script:
    """A script's text and the SHA1 Redis names it by (of its UTF-8 bytes, as redis-py encodes it)."""

    text: str
    sha: str

    @classmethod
    def of(cls, text: str) -> Script:
        return cls(text, hashlib.sha1(text.encode()).hexdigest())


#: one call of a pipeline: the script's name, its keys and its arguments
Call = tuple[str, Sequence[Any], Sequence[Any]]


class Scripts:
    """Every script one client runs, by name."""

    def __init__(self, texts: Mapping[str, str]):
        self.scripts = {name: Script.of(text) for name, text in texts.items()}
        #: how many times the server lacked them and they were loaded (a restart, SCRIPT FLUSH, another server)
        self.loads = 0

    def __contains__(self, name: str) -> bool:
        return name in self.scripts

    async def load(self, client: Redis) -> None:
        """Every script in one round trip (``SCRIPT LOAD`` of each, pipelined)."""
        async with client.pipeline(transaction=False) as pipe:
            for script in self.scripts.values():
                pipe.script_load(script.text)
            await pipe.execute()
        self.loads += 1

    async def run(self, client: Redis, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """``EVALSHA``; on ``NOSCRIPT`` (nothing ran) every script is loaded and the call sent again."""
        script = self.scripts[name]
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(client)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    async def run_all(self, client: Redis, calls: Sequence[Call]) -> list[Any]:
        """The calls in one pipeline, one round trip (no ``SCRIPT EXISTS`` before it); on ``NOSCRIPT`` every script
        is loaded and the pipeline sent again whole — so every call in it must be one that may run twice."""
        try:
            return await self._pipeline(client, calls)
        except NoScriptError:
            await self.load(client)
            return await self._pipeline(client, calls)

    async def _pipeline(self, client: Redis, calls: Sequence[Call]) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for name, keys, args in calls:
                pipe.evalsha(self.scripts[name].sha, len(keys), *keys, *args)
            return list(await pipe.execute())
