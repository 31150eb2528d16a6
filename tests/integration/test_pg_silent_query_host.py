"""The server a silent PostgreSQL connection is said to be (``pg.PgConnection.silent``) when the log's URL names it
in its query: libpq's URI form ``postgresql:///mydb?host=…&port=…`` ("Any of the connection parameters … can also be
given as a query parameter", postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS; its example
``postgresql:///mydb?host=localhost&port=5433``), which modelyard's own URL handling reads (config/dburl.py
``where``: "libpq's ?host= …, hostaddr and port stay: they name the server").

The line said the network to "the server PGHOST names (or this host's socket)" was at fault — neither was asked: the
server is the one the URL names, and the line is the one thing the person reads to know which to check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.integration.test_pg_partition import _through
from tests.integration.test_pg_reads_silent import BOUND, CHILD, QUERY, log_config, proxy  # noqa: F401 - fixture
from tests.shared.fault_proxy import FaultProxy


def test_a_silent_server_named_in_the_urls_query_is_named(tmp_path: Path, pg_url: str,
                                                          proxy: FaultProxy) -> None:  # noqa: F811
    through = urlsplit(_through(pg_url, proxy.port))
    query = "&".join(q for q in (through.query, f"host=127.0.0.1&port={proxy.port}") if q)
    url = urlunsplit(through._replace(netloc=f"{through.username or 'postgres'}@", query=query))
    config = log_config(tmp_path, url)
    proxy.silence_on(QUERY)
    out = subprocess.run([sys.executable, "-c", CHILD, str(BOUND), "log", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    said = [line for line in out.stderr.splitlines() if "no answer from PostgreSQL" in line]
    assert out.returncode == 1 and len(said) == 1, (out.returncode, out.stderr)
    assert f"the network to 127.0.0.1:{proxy.port} " in said[0] and "PGHOST" not in said[0], said[0]
