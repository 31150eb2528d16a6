"""What a newcomer types first from other tools' habits (`status`, `doctor`, `start`) is answered with the command
that does it here: click offered `stats` for `status` (request figures, not whether the models are up) and nothing
for `doctor`. Each case fails on the code before it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelyard.cli import _BY_NAME, MEANT, app


@pytest.mark.parametrize(("typed", "named"), [("status", "modelyard models"), ("doctor", "modelyard check"),
                                              ("start", "modelyard serve"), ("version", "modelyard --version"),
                                              # `ollama list`/`ps`/`pull` habits and the config: said nothing more
                                              ("list", "modelyard models"), ("ps", "modelyard models"),
                                              ("pull", "ollama pull MODEL"), ("config", "$MODELYARD_CONFIG")])
def test_a_command_other_tools_have_names_the_one_that_does_it_here(typed: str, named: str) -> None:
    out = CliRunner().invoke(app, [typed], terminal_width=300)
    flat = " ".join(out.output.replace("│", " ").split())
    assert out.exit_code == 2 and f"No such command '{typed}':" in flat and named in flat, flat
    assert "Did you mean 'stats'" not in flat


def test_no_hint_shadows_a_real_command() -> None:
    assert not set(MEANT) & set(_BY_NAME)
