"""The dashboard page in headless Chromium with long agent and model names: no label runs into another
label or a bar, and a cancelled request is not shown as a failure. The page's own API is stubbed with
what /api/summary and /api/log answer, so only the page is under test (test_dashboard.py runs it live)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from modelyard.gateway.dashboard import OUTCOMES

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                reason="Debian's chromium package is not installed (apt-get install chromium)")
PAGE = Path(__file__).parents[2] / "src" / "modelyard" / "gateway" / "static" / "dashboard.html"
AGENTS = ["research-assistant-for-quarterly-reports-and-board-decks", "engineer", "customer-support-triage-bot",
          "utility-formatting-and-summaries", "w"]
CLOUD = ["claude-sonnet-4-5-20250929-with-extended-thinking", "gpt-4.1-mini-2025-04-14"]


def summary() -> dict:
    now = time.time()
    return {
        "since": now - 86400,
        "agents": [{"agent": a, "requests": 10, "failed": 1 if a == "engineer" else 0,
                    "cancelled": 4 if a == "engineer" else 0, "fallbacks": i, "fallback_rate": i / 10,
                    "p50_ms": 400.0 * (i + 1), "p95_ms": 900.0 * (i + 1), "local_share": 1.0,
                    "reasons": {"server_error": i} if i else {}} for i, a in enumerate(AGENTS)],
        "latency": [{"agent": a, "ts": now - 100 + i * 5 + j, "total_ms": 300 + 50 * i} for i, a in
                    enumerate(AGENTS) for j in range(3)],
        "cost": {"requests": 50, "local_requests": 45, "tokens_in": 1000, "tokens_out": 2000, "actual_usd": 0.01,
                 "extra_usd": 0, "local_cost_usd": 0.0, "total_usd": 0.01,
                 "text": {"spend": "$0.0100", "local": "not set", "total": "$0.0100+?",
                          "warnings": ["local cost not set"]},
                 "counterfactual": [{"name": n, "usd": 0.5, "savings_pct": 98.0, "requests": 45,
                                     "savings_text": "at most $0.49 (98%)"} for n in CLOUD]},
        "models": [{"name": "qwen2.5-coder-7b-instruct-q4_k_m", "provider": "ollama", "state": "available",
                    "detail": "", "in_flight": 0, "waiting": 0, "limit": 2, "is_local": True}],
        "options": {"agents": AGENTS, "models": ["qwen2.5-coder-7b-instruct-q4_k_m"], "outcomes": list(OUTCOMES)},
    }


def log_rows() -> dict:
    now = time.time()
    return {"rows": [{"id": f"r{i}", "ts": now - i, "agent": "engineer", "model": None, "outcome": outcome,
                      "fallback_reason": None, "n_attempts": 1, "queue_wait_ms": 0, "ttft_ms": None, "total_ms": 5,
                      "tokens_in": 0, "tokens_out": 0, "cost_usd": 0, "error": None}
                     for i, outcome in enumerate(("cancelled", "failed"))]}


OVERLAPS = """(svgId) => {
  const svg = document.getElementById(svgId);
  const boxes = [...svg.querySelectorAll("text, rect")].filter((e) => e.textContent !== "" || e.tagName === "rect")
    .map((e) => ({tag: e.tagName, text: e.textContent, b: e.getBBox()}))
    .filter((x) => x.b.width > 0 && x.b.height > 0);
  const hit = (p, q) => p.x < q.x + q.width - 0.5 && q.x < p.x + p.width - 0.5 &&
                        p.y < q.y + q.height - 0.5 && q.y < p.y + p.height - 0.5;
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, c] = [boxes[i], boxes[j]];
    if (a.tag === "rect" && c.tag === "rect") continue;  // bars may touch bars
    if (hit(a.b, c.b)) out.push(`${a.tag} '${a.text}' × ${c.tag} '${c.text}'`);
  }
  const width = svg.getBoundingClientRect().width;
  for (const x of boxes) if (x.b.x < -0.5 || x.b.x + x.b.width > width + 0.5) out.push(`outside: '${x.text}'`);
  return out;
}"""


@pytest.mark.parametrize("width", [1400, 700])
def test_long_names_do_not_overlap_and_cancelled_is_not_failed(width: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route("http://dashboard.test/", lambda r: r.fulfill(body=PAGE.read_text(), content_type="text/html"))
            page.route("http://dashboard.test/api/summary*",
                       lambda r: r.fulfill(body=json.dumps(summary()), content_type="application/json"))
            page.route("http://dashboard.test/api/log*",
                       lambda r: r.fulfill(body=json.dumps(log_rows()), content_type="application/json"))
            page.goto("http://dashboard.test/")
            page.wait_for_selector("body[data-ready='1']", timeout=10_000)
            for svg in ("cost-chart", "latency-chart", "fallback-chart", "latency-timeline"):
                assert page.evaluate(OVERLAPS, svg) == [], svg
            # a shortened label keeps its full name as a tooltip
            assert AGENTS[0] in page.text_content("#latency-chart")
            assert "1 failed, 4 cancelled by the caller" in page.inner_text("#unanswered")
            # attempts, not fallbacks: 'first_token_timeout ×31' under a chart of 15 such fallbacks read as a mistake
            assert page.inner_text("#fallback-reasons").startswith("failed attempts by reason — engineer: server_error")
            # the cost as `report` words it (ledger/cost.py): a bound says so on the bar, the savings and below
            assert "$0.0100+?" in page.text_content("#cost-chart")
            assert page.inner_text("#cost-savings").startswith("at most $0.49 (98%) saved vs all")
            assert "local cost not set" in page.inner_text("#cost-warnings")
            colors = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#log td')]
                .filter((td) => td.className).map((td) => [td.className, getComputedStyle(td).color]))""")
            assert colors["cancelled"] != colors["failed"]
            assert errors == []
        finally:
            browser.close()
