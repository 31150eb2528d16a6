"""Gateway keys are cleaned as a provider's key is (config.schema.clean_secret): the value of
``gateway.api_keys_env`` read with its newline (``export GW_KEYS=$(cat keys.txt)``), the quotes an env file kept
(Docker's ``--env-file`` keeps them: https://docs.docker.com/reference/cli/docker/container/run/#env), or a
``Bearer `` prefix copied from a curl line. Before, the key kept its quotes or prefix and no client's key matched."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelyard.config.schema import GatewayConfig
from modelyard.gateway.auth import KeyCheck, load_keys


@pytest.mark.parametrize("raw", ['"k1,k2"\n', "'k1, k2'", "Bearer k1, Bearer k2", "k1\n,\"k2\"", " k1 , k2,"])
def test_gateway_keys_are_cleaned_like_provider_keys(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_KEYS_CLEAN", raw)
    keys = load_keys(GatewayConfig(api_keys_env="GW_KEYS_CLEAN"))
    assert keys == (b"k1", b"k2")
    check = KeyCheck(keys)
    assert check.allows("Bearer k1") and check.allows("Bearer k2") and not check.allows("Bearer k3")


def test_a_key_pasted_as_the_variable_name_is_refused_unshown() -> None:
    secret = "sk-my-gateway-key-0123456789abcdef"
    with pytest.raises(ValidationError) as caught:
        GatewayConfig(api_keys_env=secret)
    assert "takes the NAME of an environment variable" in str(caught.value)
    assert secret not in str(caught.value).replace(f"input_value='{secret}'", "")
