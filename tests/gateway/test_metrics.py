"""/metrics in Prometheus text format and /healthz, fed by real requests through the gateway."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import Fault


def samples(gateway) -> dict[tuple[str, tuple], float]:
    text = httpx.get(gateway.url + "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def chat(gateway, model: str) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/chat/completions", json={"model": model, "messages": [
        {"role": "user", "content": "count these words please"}]})


def test_metrics_count_requests_fallbacks_tokens_and_cost(gateway, fakes):
    assert chat(gateway, "coder").status_code == 200
    fakes[0].push(Fault.status(429))
    assert chat(gateway, "coder").json()["model"] == "backup"
    assert chat(gateway, "writer").json()["model"] == "cloud"
    m = samples(gateway)
    assert m[("modelyard_requests_total", (("agent", "coder"), ("model", "fast"), ("outcome", "ok")))] == 1
    assert m[("modelyard_requests_total", (("agent", "coder"), ("model", "backup"), ("outcome", "fallback")))] == 1
    assert m[("modelyard_fallbacks_total", (("agent", "coder"), ("model", "fast"), ("reason", "rate_limited")))] == 1
    assert m[("modelyard_tokens_total", (("agent", "coder"), ("direction", "out"), ("model", "fast")))] > 0
    assert m[("modelyard_cost_usd_total", (("agent", "writer"), ("model", "cloud")))] > 0
    assert m[("modelyard_queue_wait_seconds_count", (("model", "fast"),))] == 2
    assert m[("modelyard_request_duration_seconds_count", (("agent", "coder"),))] == 2
    assert m[("modelyard_in_flight", (("model", "fast"),))] == 0
    assert m[("modelyard_queue_depth", (("model", "backup"),))] == 0
    assert m[("modelyard_slots", (("model", "cloud"),))] == 2
    assert m[("modelyard_model_state", (("model", "fast"), ("state", "available")))] == 1


def test_healthz_reports_model_states(gateway, monkeypatch):
    monkeypatch.delenv("GATEWAY_TEST_ANTHROPIC_KEY")
    r = httpx.get(gateway.url + "/healthz")
    assert r.status_code == 200
    states = {m["name"]: m["state"] for m in r.json()["models"]}
    assert states == {"fast": "available", "backup": "available", "cloud": "unavailable"}


def test_unknown_path_is_openai_shaped_404(gateway):
    r = httpx.get(gateway.url + "/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
