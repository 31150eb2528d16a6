"""The PostgreSQL URL in ``log.url``: checked when the config loads, never shown with its password.

The URL is libpq's (``postgresql://user@host:5432/dbname?sslmode=require``). A password may be
in it, but PGPASSWORD or ``~/.pgpass`` keep it out of the config file; libpq reads both. Every
message that mentions the URL goes through :func:`redact` / :func:`scrub` first.
"""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qsl, unquote, urlsplit

SCHEMES = ("postgresql", "postgres")
HIDDEN = "***"


def check(url: str) -> str:
    """The URL if it can name a PostgreSQL database; else ValueError with a message free of secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("not a URL: expected postgresql://user@host:5432/dbname") from None
    if parts.scheme not in SCHEMES:
        shown = f"'{parts.scheme}://'" if parts.scheme else "no scheme"
        raise ValueError(f"must be a postgresql:// URL ({shown} given): postgresql://user@host:5432/dbname")
    if "," not in parts.netloc:  # several hosts (libpq failover) have several ports
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError("the port must be a number, e.g. postgresql://user@host:5432/dbname") from None
    return url


def _password(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    return next((v for k, v in parse_qsl(parts.query) if k == "password"), None)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs, /healthz, titles)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://" + HIDDEN
    if _password(url) is None:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{HIDDEN}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(f"{k}={HIDDEN if k == 'password' else v}" for k, v in parse_qsl(parts.query))
    return parts._replace(netloc=netloc, query=query).geturl()


def where(url: str) -> str:
    """Which database the URL names, without user, password or options: ``postgresql://host:5432/dbname``
    (processes compare it through the shared store, so it must carry no secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://?"
    hosts = parts.netloc.rsplit("@", 1)[-1]
    return f"postgresql://{hosts}{parts.path}"


def scrub(text: str, url: str | None) -> str:
    """``text`` (an error message, say) with the URL's password removed, however it was quoted."""
    if not url:
        return text
    secret = None
    with contextlib.suppress(ValueError):
        secret = _password(url)
    for form in {secret, unquote(secret or ""), url.split("@", 1)[0].split(":", 2)[-1]} - {None, ""}:
        if form and len(form) >= 2 and "/" not in form:
            text = text.replace(form, HIDDEN)
    return text
