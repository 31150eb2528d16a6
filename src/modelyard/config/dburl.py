"""The PostgreSQL URL in ``log.url``: checked when the config loads, never shown with its password.

The URL is libpq's (``postgresql://user@host:5432/dbname?sslmode=require``). A password may be
in it, but PGPASSWORD or ``~/.pgpass`` keep it out of the config file; libpq reads both. Every
message that mentions the URL goes through :func:`redact` / :func:`scrub` first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from modelyard.config.hints import url_variable
from modelyard.config.names import did_you_mean

SCHEMES = ("postgresql", "postgres")
HIDDEN = "***"


#: libpq's sslmode values (any other is refused only when a connection is made: "invalid sslmode value")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: other tools' schema parameters, which libpq refuses ('invalid URI query parameter') — Prisma's, JDBC's
_SCHEMA_PARAMS = ("schema", "currentschema", "search_path", "searchpath")
#: what a character that ends the user and password in a URL is written as inside them
_ENCODED = {"@": "%40", "/": "%2F", "?": "%3F", "#": "%23"}


def _userinfo_problem(url: str) -> str | None:
    """Why the user and password before the host cannot be read as written, or None.

    libpq takes them up to the *first* '@' before a '/' (a password 'Secret@2811' sent 'Secret' and looked up the host
    '2811@db…' — part of the password in the error); a '/' in them ends the host part for libpq, and a '?' or '#' ends
    it for Python's reading of the URL (which hides the password in messages): 'the port must be a number' was said."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    head, _, tail = rest.partition("/")  # libpq: user, password and hosts, up to the first '/'
    path = tail.split("?", 1)[0]
    found: list[str] = []
    if "@" in head:
        hosts = head[head.find("@") + 1:].split("?", 1)[0]
        meant = head[:head.rfind("@")] if "@" in hosts else head[:head.find("@")]
        found = [c for c in _ENCODED if c in meant and (c != "@" or "@" in hosts)]
    if "@" in path:  # `user:pa/ss@host/db`: libpq connected to host 'user', port 'pa'
        found = ["/", *(c for c in found if c != "/")]
    if not found:
        return None
    said = ", ".join(f"'{c}'" for c in found)
    written = ", ".join(f"'{c}' as {_ENCODED[c]}" for c in found)
    return (f"the user or password holds {said}, which ends that part of a URL (libpq reads the user and password up "
            f"to the first '@'): write it percent-encoded — {written} — or leave the password out of the URL and set "
            "PGPASSWORD (or ~/.pgpass)")


def _query_problem(query: str) -> str | None:
    """A query parameter libpq would refuse only when connecting, said at load time with what to write."""
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in _SCHEMA_PARAMS:
            return (f"libpq takes no '{key}' parameter (another tool's): write "
                    f"options=-csearch_path%3D{value or 'SCHEMA'} for the schema (it must exist: CREATE SCHEMA "
                    f"{value or 'SCHEMA'}), or give the role a default one: ALTER ROLE … SET search_path = "
                    f"{value or 'SCHEMA'}")
        if key == "sslmode" and value not in SSLMODES:
            return (f"sslmode '{value}' is not one of libpq's: {', '.join(SSLMODES)}"
                    f"{did_you_mean(value, SSLMODES)}")
    return None


def check(url: str) -> str:
    """The URL if it can name a PostgreSQL database; else ValueError with a message free of secrets."""
    if (variable := url_variable(url)) is not None:  # `postgresql://u:${PGPASSWORD}@db/x` went to libpq as written
        raise ValueError(f"'{variable}' is not expanded here (it would be sent as written): write the URL itself, "
                         "without the password — libpq reads PGPASSWORD (or ~/.pgpass) from the environment")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.startswith(("postgresql+", "postgres+")) or scheme == "jdbc:postgresql":
        form = "JDBC's" if scheme.startswith("jdbc") else "SQLAlchemy's"
        raise ValueError(f"'{scheme}://' is {form} form, not libpq's: write postgresql:// and the rest as it is "
                         "(postgresql://user@host:5432/dbname)")
    if (problem := _userinfo_problem(url)) is not None:
        raise ValueError(problem)
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
    if (problem := _query_problem(parts.query)) is not None:
        raise ValueError(problem)
    if (problem := env_problem(parts.query)) is not None:
        raise ValueError(problem)
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


#: the query parameters that say which server libpq reaches (``?host=/var/run/postgresql`` is its unix-socket form)
_SERVER_PARAMS = ("host", "hostaddr", "port")
#: libpq's environment variables with a fixed set of values: the URL's parameter each stands in for, and those values.
#: A bad one failed only when connecting, naming no variable ("invalid sslmode value"), so it is checked at load.
ENV_CHOICES = {"PGSSLMODE": ("sslmode", SSLMODES),
               "PGGSSENCMODE": ("gssencmode", ("disable", "prefer", "require")),
               "PGTARGETSESSIONATTRS": ("target_session_attrs",
                                        ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")),
               "PGSSLNEGOTIATION": ("sslnegotiation", ("postgres", "direct"))}


def where(url: str, env: Mapping[str, str] | None = None) -> str:
    """Which database the URL names, without user, password or options: ``postgresql://host:5432/dbname``
    (processes compare it through the shared store, so it must carry no secret). libpq's ``?host=`` (a unix socket's
    directory), ``hostaddr`` and ``port`` stay: they name the server. A URL naming no host reaches the one PGHOST
    names, or this host's default socket (``env``: os.environ)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://?"
    hosts = parts.netloc.rsplit("@", 1)[-1]
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k in _SERVER_PARAMS]
    environ = os.environ if env is None else env
    if not hosts.split(":", 1)[0] and "host" not in dict(kept) and environ.get("PGHOST"):
        kept.insert(0, ("host", environ["PGHOST"]))
    query = "&".join(f"{k}={v}" for k, v in kept)
    return f"postgresql://{hosts}{parts.path}" + (f"?{query}" if query else "")


def _host_names(target: str) -> list[str]:
    parts = urlsplit(target)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    names = params.get("host") or params.get("hostaddr")
    if names is None:
        netloc = unquote(parts.netloc.rsplit("@", 1)[-1])
        names = ",".join(h[1:h.index("]")] if h.startswith("[") and "]" in h else h.rsplit(":", 1)[0]
                         if h.count(":") == 1 else h for h in netloc.split(","))
    return [h.strip().lower() for h in names.split(",")]


def on_this_host(target: str) -> bool:
    """Whether a :func:`where` target reaches a server through this host alone — loopback, a unix socket, libpq's
    default socket: two hosts that both write ``postgresql://localhost/modelyard`` may well use two servers."""
    try:
        names = _host_names(target)
    except ValueError:
        return False
    return all(not h or h.startswith(("/", "@")) or h == "localhost" or h.endswith(".localhost") or _loopback(h)
               for h in names)


def _loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def env_problem(query: str = "", env: Mapping[str, str] | None = None) -> str | None:
    """A libpq environment variable set to a value libpq refuses; one the URL's own parameter overrides is unread."""
    environ = os.environ if env is None else env
    given = {k for k, _ in parse_qsl(query, keep_blank_values=True)}
    for name, (param, allowed) in ENV_CHOICES.items():
        value = environ.get(name)
        if value is not None and param not in given and value not in allowed:
            return (f"the environment variable {name}={value!r} is not one of libpq's values: {', '.join(allowed)}"
                    f"{did_you_mean(value, allowed)} — libpq reads it for every connection: fix or unset it")
    return None


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
