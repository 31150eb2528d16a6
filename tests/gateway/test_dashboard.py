"""The dashboard in headless Chromium: it loads, shows the requests made here, and its filters work."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.fakes import Fault

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                reason="Debian's chromium package is not installed (apt-get install chromium)")


def chat(gateway, model: str) -> str:
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": model, "messages": [
        {"role": "user", "content": "hello"}]})
    assert r.status_code == 200
    return r.headers["x-modelyard-request-id"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


def test_dashboard_shows_requests_and_filters(gateway, fakes, browser):
    plain = chat(gateway, "coder")
    fakes[0].push(Fault.status(500))
    fell_back = chat(gateway, "coder")
    cloud = chat(gateway, "writer")
    direct = chat(gateway, "model:backup")

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(gateway.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    for request_id in (plain, fell_back, cloud, direct):
        page.wait_for_selector(f"#log tbody tr[data-id='{request_id}']", timeout=5_000)
    ids = page.eval_on_selector_all("#log tbody tr", "rows => rows.map(r => r.dataset.id)")
    assert ids[:4] == [direct, cloud, fell_back, plain]  # newest first
    assert page.inner_text(f"#log tr[data-id='{fell_back}']").count("server_error") == 1

    states = page.eval_on_selector_all("#models tbody tr",
                                       "rows => rows.map(r => [r.dataset.model, r.cells[1].innerText])")
    assert dict(states) == {"fast": "available", "backup": "available", "cloud": "available"}
    assert page.inner_text("#cost-actual").startswith("$")
    assert "claude-sonnet-4.5" in page.text_content("#cost-chart")
    assert page.locator("#latency-chart rect").count() >= 4  # p50 + p95 bars for two agents
    assert "coder" in page.text_content("#fallback-chart")

    page.select_option("#f-outcome", "fallback")
    page.wait_for_function("() => [...document.querySelectorAll('#log tbody tr')]"
                           ".every(r => r.dataset.outcome === 'fallback')", timeout=5_000)
    assert page.eval_on_selector_all("#log tbody tr", "rows => rows.map(r => r.dataset.id)") == [fell_back]

    page.select_option("#f-outcome", "")
    page.select_option("#f-agent", "writer")
    page.wait_for_function("() => [...document.querySelectorAll('#log tbody tr')]"
                           ".every(r => r.dataset.agent === 'writer')", timeout=5_000)
    assert page.eval_on_selector_all("#log tbody tr", "rows => rows.map(r => r.dataset.id)") == [cloud]

    page.select_option("#f-agent", "")
    page.select_option("#f-model", "backup")
    page.wait_for_function("() => [...document.querySelectorAll('#log tbody tr')]"
                           ".every(r => r.dataset.model === 'backup')", timeout=5_000)
    assert sorted(page.eval_on_selector_all("#log tbody tr", "rows => rows.map(r => r.dataset.id)")) == \
        sorted([fell_back, direct])

    # live: a request made while the page is open shows up without a reload
    page.select_option("#f-model", "")
    later = chat(gateway, "solo")
    page.wait_for_selector(f"#log tbody tr[data-id='{later}']", timeout=5_000)
    assert errors == []


def test_why_a_model_is_unavailable_is_in_view(gateway, browser, monkeypatch):
    """A model over its spend cap or without its key read 'unavailable' with the reason only in a tooltip."""
    monkeypatch.delenv("GATEWAY_TEST_ANTHROPIC_KEY")
    page = browser.new_page()
    page.goto(gateway.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    states = dict(page.eval_on_selector_all("#models tbody tr",
                                            "rows => rows.map(r => [r.dataset.model, r.cells[1].innerText])"))
    assert states["cloud"].split("\n") == ["unavailable",
                                           "environment variable GATEWAY_TEST_ANTHROPIC_KEY is not set: `export "
                                           "GATEWAY_TEST_ANTHROPIC_KEY=<the key>` in the shell that runs modelyard "
                                           "(models.cloud.api_key_env names it; modelyard reads no .env file)"], states
    assert states["fast"] == "available"
