"""The python-telegram-bot release pyproject.toml allows must have every field the front-end reads.

The gate every update passes (frontends/telegram.py) reads ``Chat.is_direct_messages`` (Bot API 9.2), which
python-telegram-bot added in 22.4 (its Chat docs: "is_direct_messages ... .. versionadded:: 22.4";
docs.python-telegram-bot.org/en/stable/telegram.chat.html). ``Chat`` has ``__slots__`` and no ``__getattr__``: on an
older release the read is an AttributeError in that gate, on every update — the bot answers nothing. pyproject.toml
still allowed ``python-telegram-bot>=21``, which pip leaves in place where 21.x–22.3 is installed already.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import telegram

ROOT = Path(__file__).parents[2]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _floor() -> tuple[int, ...]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requirement = next(d for d in dependencies if re.match(r"python-telegram-bot\b", d))
    found = re.search(r">=\s*([\d.]+)", requirement)
    assert found is not None, requirement
    return _version(found.group(1))


def _added(cls: type, field: str) -> tuple[int, ...]:
    """The release that added ``field`` to ``cls``, as the installed python-telegram-bot's own docs say it."""
    doc = cls.__doc__ or ""
    found = re.search(rf"^\s*{field} \(.*?versionadded:: ([\d.]+)", doc, re.M | re.S)
    assert found is not None, f"{cls.__name__}.{field}: no versionadded in its docs"
    return _version(found.group(1))


def test_the_floor_has_the_fields_the_gate_reads():
    read = Path(ROOT / "src/modelyard/frontends/telegram.py").read_text()
    assert "effective_chat.is_direct_messages" in read  # what this test is about is still read
    assert _floor() >= _added(telegram.Chat, "is_direct_messages")
