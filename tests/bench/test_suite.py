"""A bad suite is refused before anything runs, naming file, line, key and task; the starter suite loads."""

from __future__ import annotations

import pytest

from modelyard.bench.checks import Answer, evaluate
from modelyard.bench.spec import CheckSpec
from modelyard.bench.suite import parse_suite, starter_text
from modelyard.config import parse_config
from modelyard.errors import ConfigError
from modelyard.paths import embedded_default_config
from modelyard.types import ToolCall


def suite_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_suite(text, "my-suite.yaml")
    return str(info.value)


def one_task(check: str, extra: str = "") -> str:
    return f"""name: t
agents:
  utility:
    tasks:
      - id: first
        prompt: fine
        checks: [{{contains: x}}]
      - id: broken
        prompt: "Reply with JSON."
{extra}        checks:
          - {check}
"""


@pytest.mark.parametrize(("check", "extra", "line", "expected"), [
    ("contains: x\n            ignore_case: true", "", 12,
     "my-suite.yaml:12: agents.utility.tasks.1.checks.0.ignore_case: task 'broken': unknown key 'ignore_case'"),
    ("json_schema: {type: strin}", "", 11,
     "my-suite.yaml:11: agents.utility.tasks.1.checks.0.json_schema: task 'broken': invalid JSON Schema"),
    ('python: "int(answer) > 3"', '        sample: "three"\n', 12,
     "my-suite.yaml:12: agents.utility.tasks.1.checks.0.python: task 'broken': the expression raises ValueError "
     "on the task's sample answer"),
    ('python: "len(answer) >"', "", 11, "task 'broken': not a Python expression"),
    ('python: "len(anwser) < 9"', "", 11, "task 'broken': unknown name 'anwser'"),
    ('python: "answer.__class__"', "", 11, "'__class__': names starting with '_' are not available"),
    ('regex: "(unclosed"', "", 11, "task 'broken': invalid regular expression"),
    ("tool_call: {name: read_file}", "", 11, "expects a call to 'read_file' but the task offers no such tool"),
    ('judge: "Is it polite?"', "", 11, "a judge check needs a judge model"),
    ("{contains: a, regex: b}", "", 11, "a check needs exactly one of contains"),
    ('regex: "^ok$"', '        sample: "not ok"\n', 12, "regex /^ok$/ fails on the task's own sample answer"),
])
def test_bad_checks_name_file_line_and_task(check: str, extra: str, line: int, expected: str) -> None:
    message = suite_error(one_task(check, extra))
    assert f"my-suite.yaml:{line}:" in message
    assert expected in message


def test_duplicate_task_ids_and_missing_prompt() -> None:
    dup = one_task("contains: y").replace("id: broken", "id: first")
    assert "task id 'first' appears twice" in suite_error(dup)
    no_prompt = one_task("contains: y").replace('        prompt: "Reply with JSON."\n', "")
    assert "task 'broken': a task needs either 'prompt' or 'messages'" in suite_error(no_prompt)


def test_suite_against_the_config() -> None:
    config = parse_config(embedded_default_config().read_text())
    suite = parse_suite("judge: {model: gpt-9}\nagents:\n  researcher:\n    tasks:\n"
                        "      - {id: a, prompt: p, checks: [{contains: x}]}\n", "s.yaml")
    with pytest.raises(ConfigError, match=r"s.yaml:3: agents.researcher: agent 'researcher' is not in the config"):
        suite.check_against(config)
    with pytest.raises(ConfigError, match=r"s.yaml:1: judge.model: judge model 'gpt-9' is not in the config"):
        suite.check_against(config, agents=[])


def test_the_starter_suite_covers_the_six_agents_of_the_default_config() -> None:
    suite = parse_suite(starter_text(), "starter.yaml")  # every task's sample passes its own checks
    config = parse_config(embedded_default_config().read_text())
    assert set(suite.spec.agents) == set(config.agents) == {
        "chat", "orchestrator", "engineer", "research", "writer", "utility"}
    suite.check_against(config)
    assert all(len(block.tasks) >= 3 for block in suite.spec.agents.values())


def check(**spec) -> CheckSpec:
    return CheckSpec.model_validate(spec)


def test_checks_on_answers() -> None:
    tools = {"read_file": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
    call = check(tool_call={"name": "read_file", "arguments": {"path": {"regex": r"app\.py$"}}})
    structured = Answer("", [ToolCall("read_file", {"path": "src/app.py"})], tools=tools)
    assert evaluate(call, structured).ok
    as_text = Answer('<tool_call>{"name": "read_file", "arguments": {"path": "src/app.py"}}</tool_call>', tools=tools)
    result = evaluate(call, as_text)
    assert not result.ok and "written as text" in result.detail
    bad_args = Answer("", [ToolCall("read_file", {"file": "src/app.py"})], tools=tools)
    assert "schema" in evaluate(call, bad_args).detail

    fenced = Answer('```json\n{"a": 1}\n```')
    schema = {"type": "object", "required": ["a"]}
    assert not evaluate(check(json_schema=schema), fenced).ok
    assert evaluate(check(json_schema=schema, allow_fence=True), fenced).ok
    assert "'a' is a required property" in evaluate(check(json_schema=schema), Answer('{"b": 2}')).detail
    huge = evaluate(check(json_schema=schema), Answer('{"a": ' + "9" * 5000 + "}"))  # a plain ValueError
    assert not huge.ok and "not valid JSON" in huge.detail and "4300" in huge.detail
    assert evaluate(check(contains=["paris", "FRANCE"]), Answer("Paris is in France")).ok
    assert not evaluate(check(equals="HELLO", case_sensitive=True), Answer("hello")).ok
    assert evaluate(check(equals=144), Answer(" 144\n")).ok
    assert evaluate(check(python="data['a'] == 1 and tokens < 5"), Answer('{"a": 1}', tokens_out=3)).ok
    raised = evaluate(check(python="int(answer) > 1"), Answer("many"))
    assert not raised.ok and raised.detail.startswith("raised ValueError")
    assert not evaluate(check(max_seconds=1), Answer("x", seconds=2.5)).ok
