"""The route header of an answer from a billed model without a ``price`` says "price unknown" (ledger/cost.py, the
one cost policy: not free). The route line of ``ask``, ``log``, ``stats`` and ``report`` said it; the gateway's
``x-modelyard-route`` said only ``cloud ok``, so a client reading headers took the answer for free."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from modelyard.config.schema import Price
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config
from tests.gateway.test_openai_sdk import ask


@pytest.fixture
def unpriced(tmp_path, fakes, monkeypatch) -> Iterator[openai.OpenAI]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    # a hosted model someone forgot to price
    config.models["cloud"] = config.models["cloud"].model_copy(update={"price": Price()})
    with GatewayServer(config) as gw:
        yield openai.OpenAI(base_url=gw.url + "/v1", api_key="unused-on-loopback", max_retries=0, timeout=15)


def test_an_unpriced_billed_answer_says_price_unknown_in_its_route(unpriced: openai.OpenAI) -> None:
    raw = unpriced.chat.completions.with_raw_response.create(model="model:cloud", messages=ask(), max_tokens=200)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-modelyard-route"] == "cloud ok (price unknown)"


def test_a_priced_or_local_answer_says_nothing_of_price(client: openai.OpenAI) -> None:
    for model in ("model:cloud", "model:fast", "model:backup"):
        raw = client.chat.completions.with_raw_response.create(model=model, messages=ask(), max_tokens=200)
        assert raw.headers["x-modelyard-route"] == f"{model.split(':')[1]} ok"
