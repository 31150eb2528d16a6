"""The Redis URL of ``state:`` / ``MODELYARD_STATE``: what redis-py would misread or refuse, said at load time.

Its other checks (scheme, host, database) quote the URL with its password hidden; that hiding needs the password where
a URL keeps it, so a password that a '/', '?' or '#' cut short is refused first, without quoting the URL at all.
"""

from __future__ import annotations

import re

from modelyard.config.hints import url_variable

#: what a character that ends the password in a URL is written as inside it
_ENCODED = {"/": "%2F", "?": "%3F", "#": "%23"}
_UNEXPECTED = re.compile(r"unexpected keyword argument '([^']+)'")


def _cut_password(url: str) -> str | None:
    """Why the user and password cannot be read as written (a '/', '?' or '#' ends them), or None."""
    from urllib.parse import urlsplit

    rest = url.split("://", 1)[1] if "://" in url else ""
    if "@" not in rest or "@" in urlsplit(url).netloc:
        return None
    found = [c for c in _ENCODED if c in rest[:rest.rfind("@")]]
    if not found:
        return None
    said = ", ".join(f"'{c}'" for c in found)
    written = ", ".join(f"'{c}' as {_ENCODED[c]}" for c in found)
    return (f"the password holds {said}, which ends the password in a URL (what follows was read as the host, "
            f"port or database): write it percent-encoded — {written}")


def _refused_parameter(url: str) -> str | None:
    """A query parameter redis-py passes on to its connection, which refuses it (a TypeError traceback once the
    first command ran: `?ssl_cert_reqs=none` on redis://) — asked of redis-py itself, no connection made."""
    from redis.asyncio import ConnectionPool  # only for a URL with parameters: most have none

    try:
        ConnectionPool.from_url(url).make_connection()
    except TypeError as exc:
        name = m.group(1) if (m := _UNEXPECTED.search(str(exc))) else "?"
        if name.startswith("ssl") and url.startswith("redis://"):
            return f"'{name}' is a TLS setting, which redis:// does not use: write rediss:// for TLS, or take it out"
        return f"redis-py takes no '{name}' parameter in the URL: take it out"
    except ValueError as exc:  # "Invalid value for 'db' in connection URL."
        return str(exc)
    return None


def problem(url: str) -> str | None:
    """What is wrong with the URL, in words that never quote its password; None when redis-py reads it as meant."""
    if (variable := url_variable(url)) is not None:  # docker compose's habit; it was sent as the password
        return (f"'{variable}' is not expanded here (it would be sent as written): write the URL itself — a password "
                "kept out of the config goes in the environment as MODELYARD_STATE=redis://:PASSWORD@HOST:6379/0, "
                "which overrides state.url")
    if (cut := _cut_password(url)) is not None:
        return cut
    return _refused_parameter(url) if "?" in url else None
