"""`modelyard serve` behind a reverse proxy under a path prefix (https://host/modelyard/).

nginx's proxy_pass replaces the part of the URI matching the location only when the directive has a URI
(`proxy_pass http://127.0.0.1:8080/;`); without one (`proxy_pass http://127.0.0.1:8080;`) the request is passed on
as the client sent it, prefix and all (http://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_pass).
Caddy's `handle_path` and Traefik's StripPrefix strip it."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx

PREFIX = "/modelyard"


def test_a_prefix_the_proxy_passes_on_is_named_with_how_to_strip_it(gateway):
    """`POST /modelyard/v1/chat/completions` said "no endpoint POST /modelyard/v1/chat/completions; this gateway
    serves: …" — every endpoint, nothing of the proxy in front that kept its location."""
    r = httpx.post(gateway.url + PREFIX + "/v1/chat/completions", json={"model": "coder", "messages": []}, timeout=15)
    assert r.status_code == 404
    said = r.json()["error"]["message"]
    assert said.startswith(f"no endpoint POST {PREFIX}/v1/chat/completions (that is POST /v1/chat/completions "
                           f"behind the prefix {PREFIX}: a reverse proxy passing its location on"), said
    assert "proxy_pass http://127.0.0.1:PORT/;" in said and f"handle_path {PREFIX}/*" in said
    page = httpx.get(gateway.url + PREFIX + "/", headers={"Accept": "text/html"}, timeout=15)
    assert page.status_code == 404 and f"that is GET / behind the prefix {PREFIX}" in page.text


def test_the_dashboard_reads_its_data_under_the_prefix_it_was_opened_at(gateway):
    """Behind a proxy that strips /modelyard, the page at https://host/modelyard/ asked for /api/log and
    /api/summary at the host's root — the proxy's, not the gateway's: an empty dashboard saying HTTP 404. Every URL
    the page fetches, resolved as a browser does against where the page was opened, stays under the prefix and,
    stripped as the proxy would, is answered."""
    page = httpx.get(gateway.url + "/", headers={"Accept": "text/html"}, timeout=15)
    assert page.status_code == 200 and "<html" in page.text.lower()
    fetched = re.findall(r'getJSON\("([^"]+)"', page.text)
    assert len(fetched) >= 2, fetched
    for opened in (f"https://host{PREFIX}/", f"https://host{PREFIX}/dashboard"):
        for url in fetched:
            path = urlsplit(urljoin(opened, url)).path
            assert path.startswith(PREFIX + "/"), (opened, url, path)
            r = httpx.get(gateway.url + path.removeprefix(PREFIX), timeout=15)
            assert r.status_code == 200 and isinstance(r.json(), dict | list), (path, r.text[:200])
