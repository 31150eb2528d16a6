""""No model could answer", as the official SDKs meet it (issue 14.7).

The ``openai`` SDK retries 408/409/429/5xx twice by default. A blanket 503 made one call to a
model with a revoked key three failed rows (and a deadline that much longer for the caller); now a
failure a retry cannot fix is a status the SDK does not retry, and a transient one says when to
retry. Each test counts what reached the backend and what reached the routing log.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes import Fault
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config
from tests.helpers import make_config
from tests.reliability.kit import read_db

#: the SDK clients the running test made, closed when it ends (see ``_close_clients``)
_clients: list[openai.OpenAI] = []


def sdk(gw: GatewayServer, retries: int = 2) -> openai.OpenAI:
    """The SDK as users run it: its default two retries."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused-on-loopback", max_retries=retries, timeout=30)
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """A client held by a ``pytest.raises`` traceback went to the collector, which could finalize its keep-alive
    socket before the client's own ``__del__`` closed it: an unclosed-socket ResourceWarning. Closed here."""
    yield
    while _clients:
        _clients.pop().close()


def ask(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": text}]


def rows(gw: GatewayServer) -> int:
    gw.gateway.log.flush()
    conn = read_db(gw.runtime.log_path)
    try:
        return conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    finally:
        conn.close()


def model_calls(server) -> int:
    return len([r for r in server.requests if r.path.endswith(("/chat/completions", "/api/chat", "/v1/messages"))])


@pytest.fixture
def gw_no_key(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.delenv("GATEWAY_TEST_ANTHROPIC_KEY", raising=False)
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url)) as gw:
        yield gw


def test_missing_key_is_424_not_retried_one_row(gw_no_key, fakes):
    with pytest.raises(openai.APIStatusError) as err:
        sdk(gw_no_key).chat.completions.create(model="model:cloud", messages=ask())
    assert err.value.status_code == 424
    assert err.value.body["code"] == "no_model_available" and err.value.body["retryable"] is False
    assert err.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in err.value.response.headers
    assert [a["reason"] for a in err.value.body["attempts"]] == ["missing_credentials"]
    assert rows(gw_no_key) == 1, "one call, one row: the SDK must not retry a missing key"


@pytest.mark.parametrize(("fault", "reason"), [
    (Fault.status(401), "auth_error"),
    (Fault.status(404, message="model 'fast-model' not found"), "model_missing"),
])
def test_refused_key_or_missing_model_is_424_and_the_backend_is_asked_once(gateway, fakes, fault, reason):
    fakes[0].push(fault)
    with pytest.raises(openai.APIStatusError) as err:
        sdk(gateway).chat.completions.create(model="solo", messages=ask())
    assert err.value.status_code == 424 and err.value.body["code"] == "no_model_available"
    assert [a["reason"] for a in err.value.body["attempts"]] == [reason]
    assert model_calls(fakes[0]) == 1 and rows(gateway) == 1
    # the model now cools down for max_seconds; asking again is still not worth a retry
    with pytest.raises(openai.APIStatusError) as again:
        sdk(gateway).chat.completions.create(model="solo", messages=ask())
    assert again.value.status_code == 424
    assert [a["reason"] for a in again.value.body["attempts"]] == ["cooling_down"]
    assert model_calls(fakes[0]) == 1 and rows(gateway) == 2


def test_a_request_every_model_refuses_is_400(gateway, fakes):
    fakes[0].push(Fault.status(400, message="prompt is too long for the context window"))
    with pytest.raises(openai.BadRequestError) as err:
        sdk(gateway).chat.completions.create(model="solo", messages=ask())
    assert err.value.status_code == 400 and err.value.body["code"] == "rejected_by_models"
    assert model_calls(fakes[0]) == 1 and rows(gateway) == 1


def test_transient_failure_is_503_with_retry_after_and_the_sdk_retry_then_succeeds(gateway, fakes):
    fakes[0].push(Fault.status(500))
    fakes[1].push(Fault.status(500))
    raw = sdk(gateway, retries=1).chat.completions.with_raw_response.create(model="coder", messages=ask())
    assert raw.parse().choices[0].message.content == "Hello from fast."
    assert model_calls(fakes[0]) == 2 and rows(gateway) == 2  # the failed call and the retry that worked

    fakes[0].push(Fault.status(500))
    fakes[1].push(Fault.status(500))
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "coder", "messages": ask()}, timeout=30)
    assert r.status_code == 503 and r.json()["error"]["code"] == "chain_exhausted"
    assert r.headers["x-should-retry"] == "true" and r.json()["error"]["retryable"] is True
    assert int(r.headers["retry-after"]) == 1  # neither model is cooling down: a slot or a retry away


def test_retry_after_is_the_soonest_cooldown_of_the_chain(gateway, fakes):
    fakes[0].push(Fault.status(429, retry_after=7))  # the breaker opens for the server's 7 s
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "solo", "messages": ask()}, timeout=30)
    assert r.status_code == 503 and 6 <= int(r.headers["retry-after"]) <= 7
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "solo", "messages": ask()}, timeout=30)
    assert r.status_code == 503 and [a["reason"] for a in r.json()["error"]["attempts"]] == ["cooling_down"]
    assert 1 <= int(r.headers["retry-after"]) <= 7


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_deadline_spent_is_504_not_retried(tmp_path, fakes, monkeypatch, stream):
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    base = fake_config(tmp_path, oa.url, ol.url, an.url).model_dump(mode="json", exclude_none=True)
    base["defaults"]["timeouts"] = {"queue": 0.5, "connect": 2, "first_token": 5, "idle": 5, "total": 1.0}
    oa.set_default(Fault.hang_before_headers())
    with GatewayServer(make_config(base["models"], base["agents"], defaults=base["defaults"],
                                   log=base["log"])) as gw:
        with pytest.raises(openai.APIStatusError) as err:
            sdk(gw).chat.completions.create(model="solo", messages=ask(), stream=stream)
        assert err.value.status_code == 504 and err.value.body["code"] == "deadline_exceeded"
        assert err.value.response.headers["x-should-retry"] == "false"
        assert model_calls(oa) == 1 and rows(gw) == 1


@pytest.fixture
def gw_small_fast(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    """``fast`` declares a 1024-token context, ``backup`` 32768."""
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    config.models["fast"] = config.models["fast"].model_copy(update={"context": 1024})
    config.models["backup"] = config.models["backup"].model_copy(update={"context": 32768})
    with GatewayServer(config) as gw:
        yield gw


def test_a_prompt_too_long_for_one_model_goes_to_the_next_and_for_all_is_400_without_a_call(gw_small_fast, fakes):
    """router/fit.py: too long for ``fast`` (declared context) is a skip, not the request's failure; the
    upstream used to get it anyway (and a real one would refuse it or silently cut it)."""
    long = "abc " * 3000  # ~3,000 tokens
    answer = sdk(gw_small_fast).chat.completions.create(model="coder", messages=ask(long))
    assert answer.choices[0].message.content == "Hello from backup."
    assert model_calls(fakes[0]) == 0 and model_calls(fakes[1]) == 1
    with pytest.raises(openai.BadRequestError) as err:
        sdk(gw_small_fast).chat.completions.create(model="solo", messages=ask(long))
    assert err.value.body["code"] == "rejected_by_models" and err.value.response.headers["x-should-retry"] == "false"
    assert [(a["model"], a["reason"]) for a in err.value.body["attempts"]] == [("fast", "bad_request")]
    assert "context of 1024 tokens" in err.value.body["attempts"][0]["detail"]
    assert model_calls(fakes[0]) == 0 and rows(gw_small_fast) == 2
    assert sdk(gw_small_fast).chat.completions.create(model="solo", messages=ask()).choices[0].message.content \
        == "Hello from fast."
