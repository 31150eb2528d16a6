"""llama.cpp's own log lines while the embedded model loads: nothing a person running the bot must read."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelyard.providers.llama_quiet import quiet_load


@pytest.mark.model
def test_loading_the_embedded_model_says_nothing_at_info(default_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`modelyard telegram` logs at INFO: after a person's first message its terminal read 'load: control-looking
    token: 128247 '</s>' was not control-type; this is probably a bug in the model' — about the model modelyard
    ships, nothing anyone can act on. llama.cpp's warnings are debug lines now; its errors stay errors."""
    from llama_cpp import Llama

    with caplog.at_level(logging.DEBUG, logger="modelyard.llamacpp"):
        quiet_load(Llama, model_path=str(default_model), vocab_only=True)
    assert caplog.records, "llama.cpp's lines are routed to the modelyard.llamacpp logger"
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert loud == [], loud
