"""Processes on one Redis server that limit the same backend but count their slots apart — said, not silent.

Processes share a model's slots only when they use the same database number and the same ``state.prefix``. A
host left on ``redis://…/0`` beside one on ``/1``, or one that set ``prefix: team`` beside one on the default,
each hand out the whole ``max_concurrent`` of the same GPU server, and nothing shows it: each sees only its half.

So every process also registers, under one fixed key in database 0 (whatever its own database and prefix), which
namespace it uses and which backends it limits (endpoint and model id; a loopback endpoint is named with its host,
since each host's ``127.0.0.1`` is another machine). A process that finds the same backend limited from another
namespace says so (a warning, ``/healthz``, ``models``). Priced (cloud) models are left out: their limits belong to
an API key, and two teams may well share one Redis with prefixes of their own. Where an ACL forbids database 0 or
the key, nothing is checked — the registry is a courtesy and never takes the store down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from modelyard.router.shared import wire

if TYPE_CHECKING:
    from modelyard.providers.base import Provider

log = logging.getLogger("modelyard.state")

#: the registry's keys, the same for every prefix (in database 0)
REGISTRY = "modelyard-namespaces"
ALIVE = "modelyard-namespaces:alive"
#: how often a process registers again, and how long its entry outlives that
EVERY = 5.0
TTL_MS = 30_000
#: the registry's keys outlive the last process that registered by this much (each registration renews it): a server
#: whose modelyard processes are all gone keeps nothing of theirs for good
KEY_TTL_MS = 24 * 3600 * 1000

#: KEYS registry alive; ARGV instance ttl_ms entry (JSON; '-' only looks, '' leaves) key_ttl_ms → (id, entry) of the
#: others
REGISTER = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local unpack = table.unpack or unpack  -- Lua 5.1 (Redis) and 5.4 (Dragonfly)
for i = 1, #gone, 500 do redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 499, #gone))) end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1]); redis.call('HDEL', KEYS[1], ARGV[1])
  return {}
end
if ARGV[3] ~= '-' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1]); redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4]); redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if id ~= ARGV[1] then
    local e = redis.call('HGET', KEYS[1], id)
    if e then out[#out + 1] = id; out[#out + 1] = e end
  end
end
return out
"""

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def loopback(endpoint: str) -> str:
    """``endpoint``'s loopback address as written (``127.0.0.1:11434``), '' when it names another machine."""
    parts = urlsplit(endpoint)
    if not endpoint or parts.hostname not in _LOOPBACK:
        return ""
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def on_each_host(provider: Provider) -> str:
    """Why a model's slots and breaker belong to each host, not the team ('' : they are shared by every host): it runs
    inside each process (the embedded llama.cpp model), or its endpoint is this host's loopback — the same config on
    two hosts names two servers there, each host's own (``init --detect`` writes ``http://127.0.0.1:11434`` for the
    Ollama it found). A priced model is left shared: its limit belongs to an API key, whatever proxy it goes through."""
    if provider.runs_in_process:
        return "runs inside each process"
    config = provider.config
    if config.price.input or config.price.output:
        return ""
    where = loopback(str(getattr(provider, "endpoint", "") or ""))
    return f"is served by each host's own {where}" if where else ""


def backend_key(provider: Provider, host: str) -> str | None:
    """What identifies the machine a model's slots protect: its endpoint (a loopback one named with ``host``) and
    model id. None: nothing to compare (an in-process model, no endpoint, a priced cloud model)."""
    config = provider.config
    endpoint = str(getattr(provider, "endpoint", "") or "")
    if provider.runs_in_process or not endpoint or config.price.input or config.price.output:
        return None
    parts = urlsplit(endpoint)
    if (parts.hostname or "") in _LOOPBACK or parts.hostname is None:
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"{host}{port}")
    return f"{urlunsplit(parts).rstrip('/')} {config.model or provider.name}"


def splits(mine: Mapping[str, str], namespace: str, others: list[Any]) -> list[str]:
    """``others``: (instance, entry JSON) pairs. What this process limits that another process counts apart: in
    another namespace, or under another model name — a model's slots are keyed by its name, so a host that names the
    server otherwise hands out its whole max_concurrent there beside this one's. (Two entries of one config on one
    server are left alone: one config's author sized both — as a host whose config also has this one's name.)"""
    names: dict[str, list[str]] = {}
    for model, key in sorted(mine.items()):
        names.setdefault(key, []).append(model)
    found: list[str] = []
    for raw_id, raw in zip(others[::2], others[1::2], strict=True):
        try:
            entry = json.loads(raw)
            theirs, where = dict(entry["backends"]), str(entry["namespace"])
        except (ValueError, KeyError, TypeError):
            continue
        who = wire.text(raw_id)
        for their_model, key in sorted(theirs.items()):
            if key not in names:
                continue
            if where != namespace:
                found.append(f"{names[key][0]} ({key}) is limited here under {namespace} and as {their_model} under "
                             f"{where} at {who}")
            elif not any(theirs.get(name) == key for name in names[key]):
                found.append(f"{names[key][0]} ({key}) is limited here and as {their_model} at {who}: one backend "
                             "under two model names")
    return sorted(set(found))


def describe(db: int, prefix: str) -> str:
    return f"db {db} prefix '{prefix}'"
