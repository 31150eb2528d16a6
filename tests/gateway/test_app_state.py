"""The gateway keeps its state on the app (``app.state.gateway``), never in module globals (issue 13.5).

Two apps in one process (tests, an embedding program, a reload) must not share a cache: whatever a
module global held would outlive its app and be shared by the next one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

import modelyard.gateway
from tests.helpers import parse_source

GATEWAY = Path(modelyard.gateway.__file__).parent


def _decorators(node: ast.AST) -> list[str]:
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return []
    return [ast.unparse(d).split("(")[0] for d in node.decorator_list]


def test_no_module_rebinds_a_global_or_caches_at_module_level():
    offenders = []
    for path in sorted(GATEWAY.glob("*.py")):
        for node in ast.walk(parse_source(path)):
            if isinstance(node, ast.Global):
                offenders.append(f"{path.name}:{node.lineno}: global {', '.join(node.names)}")
            caches = [d for d in _decorators(node) if d.rsplit(".", 1)[-1] in ("cache", "lru_cache", "cached_property")]
            if caches and node.col_offset == 0:
                offenders.append(f"{path.name}:{node.lineno}: @{caches[0]}")
    assert offenders == []


def test_the_openapi_document_lives_on_the_app(gateway):
    r = httpx.get(gateway.url + "/openapi.json")
    assert r.status_code == 200 and r.content == gateway.gateway.openapi
    assert r.json()["paths"]["/v1/responses"]["post"]["operationId"] == "createResponse"


def test_the_dashboard_page_lives_on_the_app(gateway):
    r = httpx.get(gateway.url + "/", headers={"accept": "text/html"})  # a browser's (test_ollama_root.py)
    assert r.status_code == 200 and r.content == gateway.gateway.page
    assert b"<html" in gateway.gateway.page.lower()
