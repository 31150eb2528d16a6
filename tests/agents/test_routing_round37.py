"""Round 37: a short message's instruction, apart from the material it gives, says what the message asks — its
language decides which members read the message, and a chore verb of another language in it leans to utility
(``request.instruction``, ``encoder.foreign_views``, ``cues.FOREIGN_CHORE``; figures in
benchmarks/routing_eval/ROUNDS.md, round 37).

The routing probes are tuning lines, not held-out ones, each labelled by POLICY.md before anything routed it: three
Chinese chores from the BELLE project's evaluation set (LianjiaTech/BELLE ``eval/eval_set.json``,
https://github.com/LianjiaTech/BELLE; belle_dev.jsonl, mkbelle_dev.py) — a translation of an English sentence, an
extraction of key facts as JSON, an extraction of the paragraphs about a topic — labelled utility. On main before
round 37 the fast path sent them to chat, writer and writer: the first was read as English (its material is), the
other two voted by the material's topic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents import cues
from modelyard.agents.encoder import foreign_message
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.request import EDGE, instruction
from modelyard.agents.roles import Role
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"
TRANSLATE = "将以下短句翻译成中文：\nThe museum opens at nine, but the east wing stays closed until the spring."


def line(name: str, opening: str) -> dict[str, object]:
    """The one line of a tuning set that holds ``opening``."""
    rows = [json.loads(t) for t in (EVAL / name).read_text(encoding="utf-8").splitlines() if t.strip()]
    found = [row for row in rows if opening in row["text"]]
    assert len(found) == 1, (name, opening, len(found))
    return found[0]


def test_a_short_message_s_instruction_is_what_comes_before_its_material() -> None:
    assert instruction(TRANSLATE) == "将以下短句翻译成中文："
    assert instruction("Extract the dates: the meeting moved from 3 May to 10 June, then to 1 July.") == \
        "Extract the dates:"
    assert instruction("请给我讲一个关于猫的故事") is None  # no material after it
    assert instruction("翻译：好") is None  # too little material to be any
    assert instruction("翻译成英文：" + "今天天气很好。" * 200) is None  # a long message: agents/request.py reads it


def test_a_short_message_is_read_in_its_instruction_s_language() -> None:
    """Its material in English, its instruction in Chinese: another language (main read it as English)."""
    assert foreign_message(TRANSLATE)
    assert not foreign_message("Summarise the notes below:\nThe committee met on Monday and agreed the budget.")


def test_the_chore_cue_reads_the_instruction_only() -> None:
    extract = "从下面这段话中提取所有的日期：\n会议原定于三月五日举行，后来改到四月十日，最后在五月一日召开。"
    assert cues.nudges(extract, foreign=True).get(Role.UTILITY) == cues.FOREIGN_CHORE_NUDGE
    # a chore word in the material, not in the instruction: nothing (round 30's cue fired on pasted text)
    brief = "请根据下面的材料写一篇演讲稿：\n材料中提到，员工需要把数据翻译成图表，并提取关键结论。"
    assert Role.UTILITY not in cues.nudges(brief, foreign=True)
    # read as English, or a long message's request: nothing
    assert Role.UTILITY not in cues.nudges(extract, foreign=False)
    assert Role.UTILITY not in cues.nudges(extract, foreign=True, long=True)
    # "summarise" is left out: 总结 also names a report's summary section
    report = "总结一下下面这份报告：\n" + "第一季度销售额增长了百分之十。" * 3
    assert Role.UTILITY not in cues.nudges(report, foreign=True)
    assert len(extract) <= 2 * EDGE


@pytest.fixture(scope="module")
def orchestrator() -> Orchestrator:
    made = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert made is not None
    return made


@pytest.mark.parametrize("opening", ["将以下英文短句翻译成中文", "根据给出的一组文字，提取其中的关键信息",
                                     "请从以下文章中提取出关于人工智能的段落"])
def test_a_chore_in_another_language_reaches_utility(orchestrator: Orchestrator, opening: str) -> None:
    row = line("belle_dev.jsonl", opening)
    assert orchestrator.decide_fast(str(row["text"])).agent == "utility"
