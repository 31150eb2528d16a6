"""The gateway keeps its state on the app (``app.state.gateway``), never in module globals (issue 13.5).

Two apps in one process (tests, an embedding program, a reload) must not share a cache: whatever a
module global held would outlive its app and be shared by the next one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

import modelyard.gateway

GATEWAY = Path(modelyard.gateway.__file__).parent


def test_no_module_rebinds_a_global():
    offenders = []
    for path in sorted(GATEWAY.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Global):
                offenders.append(f"{path.name}:{node.lineno}: global {', '.join(node.names)}")
    assert offenders == []


def test_the_dashboard_page_lives_on_the_app(gateway):
    r = httpx.get(gateway.url + "/")
    assert r.status_code == 200 and r.content == gateway.gateway.page
    assert b"<html" in gateway.gateway.page.lower()
