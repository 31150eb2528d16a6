"""A YAML value read on past its own line is said at the line of the mistake, with what to write.

Two slips of a newcomer editing the file `modelyard init` wrote (the embedded default, with comments) made PyYAML stop
lines below, where nothing is wrong, in words about something else:

- a key glued to its value, `default_agent:chat` — one plain text to YAML, running into the next key: "mapping values
  are not allowed here" or "could not find expected ':'" on the next line (Azure/aztk#103 `batchaccountname:myaccount`,
  "I was confused by the error msg"; swar/Swar-Chia-Plot-Manager#250 "This line was not modified so I am unsure why
  there is an error with it"; quarto-dev/quarto-cli#385 `name:"mello"`; go-yaml/yaml#542 "missing colon leads to
  wrong line number");
- a quote left open, `default_agent: "chat` — closed by the next `"` anywhere below, here one in a comment 55 lines
  down, and said as an indentation error there (nodeca/js-yaml#315 "Quoting error cited as indentation error").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app

DEFAULT = Path(__file__).resolve().parents[2] / "examples" / "default.yaml"


def _said(tmp_path: Path, old: str, new: str) -> tuple[int, str, int]:
    text = DEFAULT.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    config = tmp_path / "config.yaml"
    config.write_text(text)  # the routing log: in the tests' own data directory (conftest)
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"], env={"COLUMNS": "400"})
    line = next(i for i, row in enumerate(text.splitlines(), 1) if new.splitlines()[0] in row)
    return out.exit_code, " ".join(out.output.split()), line


@pytest.mark.parametrize(("old", "new", "key"), [
    ("default_agent: chat", "default_agent:chat", "default_agent"),
    ("    max_concurrent: 4", "    max_concurrent:4", "max_concurrent"),
])
def test_a_key_glued_to_its_value_is_said_at_its_line(tmp_path: Path, old: str, new: str, key: str) -> None:
    code, said, line = _said(tmp_path, old, new)
    assert code == 2, said
    assert f"config.yaml:{line}: not valid YAML: '{key}:…' has no space after its colon" in said, said
    assert f"write '{key}: …'" in said, said


def test_a_quote_left_open_is_said_where_it_opens(tmp_path: Path) -> None:
    code, said, line = _said(tmp_path, "default_agent: chat", 'default_agent: "chat')
    assert code == 2, said
    assert f"config.yaml:{line}: not valid YAML: the quote opened on line {line} is closed only on line " in said, said
    assert f"close it on line {line}" in said and "indented differently" not in said, said


def test_a_quoted_value_over_several_lines_still_loads(tmp_path: Path) -> None:
    """A guard: a system prompt in double quotes over two lines (YAML folds them) is no mistake."""
    code, said, _ = _said(tmp_path, "default_agent: chat", 'default_agent: "cha\n  t"')
    assert "quote opened" not in said and code == 2  # 'cha t' is no agent: said as that
    assert "'cha t' is not an agent" in said, said
