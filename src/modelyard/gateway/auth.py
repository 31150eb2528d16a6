"""Who may call the gateway: open on loopback, bearer keys required anywhere else.

Keys come from the environment variable named by ``gateway.api_keys_env`` (comma-separated),
never from the config file, and are compared with :func:`hmac.compare_digest` against every
configured key so the time taken says nothing about which key (or how much of one) matched.
No message built here ever contains a key.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from modelyard.config.schema import GatewayConfig, clean_secret
from modelyard.paths import embedded_default_config, service_env_file


class InsecureBind(Exception):
    """Binding beyond loopback without API keys: refused, the router would be open to the network."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: assume it resolves beyond loopback


def load_keys(gateway: GatewayConfig) -> tuple[bytes, ...]:
    """The keys, each cleaned as a provider's key is (:func:`clean_secret`: a newline from ``$(cat file)``, quotes
    an env file kept, a ``Bearer `` prefix) — else a key set as ``"k1,k2"`` or ``Bearer k1`` matched no client's."""
    if not gateway.api_keys_env:
        return ()
    raw = clean_secret(os.environ.get(gateway.api_keys_env)) or ""
    return tuple(key.encode() for k in raw.split(",") if (key := clean_secret(k)))


#: the variable the refusal suggests when the config names none (any name will do)
SUGGESTED_KEYS_ENV = "MODELYARD_API_KEYS"


def check_bind(host: str, gateway: GatewayConfig, keys: tuple[bytes, ...], config_path: Path | None = None) -> None:
    """Raise :class:`InsecureBind` (with what to do about it) when ``host`` needs keys and there are none.

    It said "set gateway.api_keys_env in the config to the name of an environment variable holding the keys": which
    file (a newcomer's is the one `init` wrote, out of sight), what to write there, what a key is (any string of
    one's own: the gateway issues none) and how a client sends it were each left to find — LiteLLM's users meet the
    same wall with its master_key. Now the file, the lines and the client's side."""
    if keys or is_loopback(host):
        return
    bearer = "clients send one as their API key (Authorization: Bearer KEY)"
    if gateway.api_keys_env:
        how = (f"set {gateway.api_keys_env} to one or more comma-separated keys — it is unset or empty here "
               f"(a service reads it from {service_env_file()}); {bearer}")
    else:
        where = ("a config file of your own (`modelyard init` writes one; this is the embedded default)"
                 if config_path is None or config_path.resolve() == embedded_default_config().resolve()
                 else str(config_path))
        how = (f"set gateway.api_keys_env in {where} — gateway: {{api_keys_env: {SUGGESTED_KEYS_ENV}}} — and "
               f"export {SUGGESTED_KEYS_ENV}=KEY, one or more comma-separated keys you make up (e.g. `openssl rand "
               f"-hex 24`); {bearer}")
    raise InsecureBind(f"refusing to listen on {host}: beyond loopback the gateway requires API keys; {how} "
                       "(or bind to 127.0.0.1)")


def who_may_call(keys: tuple[bytes, ...], gateway: GatewayConfig) -> str:
    """For serve's start: whether keys are asked for, and a keyless gateway's public names (``allowed_hosts``) — a
    proxy's name left out of them is every request refused, the first thing to check when a proxied client gets 403."""
    if keys:
        return f"required ({len(keys)} configured)"
    if gateway.allowed_hosts:
        return f"not required (loopback only, and requests addressed to {', '.join(gateway.allowed_hosts)})"
    return "not required (loopback only)"


class KeyCheck:
    """Validates ``Authorization: Bearer <key>`` headers; no keys configured = everyone allowed."""

    def __init__(self, keys: tuple[bytes, ...]):
        self.keys = keys

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def allows(self, authorization: str | None) -> bool:
        if not self.keys:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        presented = token.strip().encode()
        matched = False
        for key in self.keys:  # no early exit: constant work whichever key matches
            matched |= hmac.compare_digest(presented, key)
        return matched and scheme.lower() == "bearer"
