"""``/api/generate``'s ``template``: the client's own Go template for the prompt, rendered as Ollama renders it.

Ollama parses the field (server/routes.go GenerateHandler: ``template.Parse(req.Template)``) and runs it over the
request's ``.System``, ``.Prompt`` and ``.Suffix``; what it writes is the model's whole input, and its text from
``.Response`` on is the answer's place (template/template.go cuts the output there). It was taken and dropped here:
the model answered through its own template, and the client that set one was not told.

Rendered here: the field actions ``.Prompt``, ``.System``, ``.Suffix`` and ``.Response``, ``if``/``else``/``end`` on
them, comments, and the ``{{-`` / ``-}}`` trim markers — the templates of the docs and the usual instruct formats.
The text goes on verbatim, as a ``raw`` prompt does (``TextPrompt``). Any other action (``range .Messages``, a
function, a pipeline) is refused with a 400 naming ``template`` and the action, never rendered wrong.
"""

from __future__ import annotations

import re

from modelyard.gateway.wire import BadRequest

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_FIELDS = ("Prompt", "System", "Suffix", "Response")
_FIELD = re.compile(r"\.(" + "|".join(_FIELDS) + r")")
_IF = re.compile(r"if\s+\.(" + "|".join(_FIELDS) + r")")


def _unsupported(action: str) -> BadRequest:
    return BadRequest(f"template: the action {{{{ {action[:60]} }}}} is not rendered here (only .Prompt, .System, "
                      ".Suffix and .Response, with if/else/end on them); render the prompt yourself and send it with "
                      "raw: true", "template")


def render(template: str, *, prompt: str, system: str, suffix: str) -> str:
    """The prompt ``template`` writes for these values, cut where ``.Response`` stands (the answer's place)."""
    values = {"Prompt": prompt, "System": system, "Suffix": suffix, "Response": ""}
    out: list[str] = []
    #: per open ``if``: (its condition held, this branch is the else)
    stack: list[tuple[bool, bool]] = []
    trim_next = False
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos:match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        pos, trim_next = match.end(), bool(match.group(3))
        live = all(held != in_else for held, in_else in stack)
        if live:
            out.append(text)
        action = match.group(2).strip()
        if action.startswith("/*") and action.endswith("*/"):
            continue
        if field := _FIELD.fullmatch(action):
            if not live:
                continue
            if field.group(1) == "Response":
                return "".join(out)
            out.append(values[field.group(1)])
        elif condition := _IF.fullmatch(action):
            stack.append((bool(values[condition.group(1)]), False))
        elif action == "else" and stack and not stack[-1][1]:
            stack[-1] = (stack[-1][0], True)
        elif action == "end" and stack:
            stack.pop()
        else:
            raise _unsupported(action)
    if stack:
        raise BadRequest("template: an {{ if }} without its {{ end }}", "template")
    tail = template[pos:]
    out.append(tail.lstrip() if trim_next else tail)
    return "".join(out)
