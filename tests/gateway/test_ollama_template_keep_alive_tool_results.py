"""Three leftovers of the gateway's inbound wire formats, each now as the API it speaks answers it.

- ``/api/generate`` with a ``template`` and no ``raw``: Ollama renders the client's Go template over ``.System``,
  ``.Prompt`` and ``.Suffix`` and sends what it writes as the model's whole input (ollama/ollama server/routes.go
  GenerateHandler: ``template.Parse(req.Template)``; docs/api.md "template: the prompt template to use (overrides
  what is defined in the Modelfile)"). The field was dropped without a word: the model answered through its own
  template. Now rendered (the usual subset) and sent verbatim, as a raw prompt is; anything it cannot render is a 400
  naming ``template``.
- ``/api/embed`` and ``/api/embeddings`` with a ``keep_alive`` Ollama refuses ("5 minutes", ``true``: api/types.go
  ``Duration.UnmarshalJSON``, "time: invalid duration"): taken unread, where ``/api/chat`` refuses it. Now the same
  400 naming ``keep_alive``.
- ``/v1/messages`` with a ``tool_result`` whose ``tool_use_id`` no ``tool_use`` of the previous message has: the
  Messages API refuses it (400 invalid_request_error "messages.N.content.M: unexpected `tool_use_id` found in
  `tool_result` blocks: toolu_… Each `tool_result` block must have a corresponding `tool_use` block in the previous
  message.", as reported in anthropics/claude-code#13460, router-for-me/CLIProxyAPI#497, tghamm/Anthropic.SDK#184);
  it was passed on to the backend. Now a 400 naming the field.

Each failed on the code before this change (the guards, named so, passed before and keep what worked).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelyard.gateway.ollama_template import render
from modelyard.gateway.wire import BadRequest

CHATML = ("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n{{ .Prompt }}"
          "<|im_end|>\n<|im_start|>assistant\n{{ .Response }}<|im_end|>")


def _post(gateway: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body, timeout=15)


# -- /api/generate's template ----------------------------------------------------------------------------------------

def test_a_generate_template_is_rendered_and_sent_as_the_whole_prompt(gateway, fakes):
    """The docs' override: the prompt the template writes reaches the backend verbatim (its /v1/completions, as a raw
    prompt does), cut where ``.Response`` stands; the system prompt inside it, not beside it."""
    oa = fakes[0]
    r = _post(gateway, "/api/generate", {"model": "coder", "stream": False, "prompt": "Why is the sky blue?",
                                         "system": "Be brief.", "template": CHATML})
    assert r.status_code == 200, r.text
    sent = oa.requests_to("/v1/completions")
    assert sent and sent[-1].json["prompt"] == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhy is the "
                                                "sky blue?<|im_end|>\n<|im_start|>assistant\n")
    assert not oa.requests_to("/v1/chat/completions")


def test_a_template_it_cannot_render_is_refused_by_name(gateway, fakes):
    """``range .Messages`` (a chat template) is not rendered here: a 400 naming ``template``, nothing sent."""
    r = _post(gateway, "/api/generate", {"model": "coder", "stream": False, "prompt": "Hi",
                                         "template": "{{ range .Messages }}{{ .Content }}{{ end }}"})
    assert r.status_code == 400 and "template" in r.json()["error"], r.text
    assert not fakes[0].requests


def test_guard_a_load_only_generate_with_a_template_still_loads(gateway):
    """No prompt: Ollama's "load the model" whatever the template (answered ``done_reason: "load"``)."""
    r = _post(gateway, "/api/generate", {"model": "coder", "stream": False, "template": "{{ .Prompt }}"})
    assert r.status_code == 200 and r.json()["done_reason"] == "load", r.text


@pytest.mark.parametrize(("template", "written"), [
    ("{{ .Prompt }}", "P"),
    ("{{- .System -}}  \n{{ .Prompt }}", "P"),  # trims: the whitespace beside the marker goes
    ("[{{ .System }}]{{ if .Suffix }}<fim>{{ .Suffix }}{{ else }}<plain>{{ end }}{{ .Prompt }}", "[S]<plain>P"),
    ("{{/* a comment */}}<s>{{ .Prompt }}{{ .Response }}</s>", "<s>P"),
    ("{{ if .System }}{{ .System }}{{ end }}|{{ .Prompt }}", "S|P"),
])
def test_the_template_subset_renders_as_go_does(template: str, written: str) -> None:
    assert render(template, prompt="P", system="S" if "[" in template or "if .System" in template else "",
                  suffix="") == written


@pytest.mark.parametrize("template", ["{{ .Prompt | upper }}", "{{ if .System }}x", "{{ range .Messages }}{{ end }}",
                                      "{{ .Tools }}"])
def test_an_action_outside_the_subset_is_refused(template: str) -> None:
    with pytest.raises(BadRequest) as refused:
        render(template, prompt="P", system="", suffix="")
    assert refused.value.param == "template"


# -- /api/embed's keep_alive -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/embed", "/api/embeddings"])
@pytest.mark.parametrize("keep_alive", ["5 minutes", True, "-1"])
def test_an_embed_keep_alive_ollama_refuses_is_refused_by_name(gateway, fakes, path, keep_alive):
    body = {"model": "coder", "keep_alive": keep_alive,
            **({"input": "hello"} if path == "/api/embed" else {"prompt": "hello"})}
    r = _post(gateway, path, body)
    assert r.status_code == 400 and "keep_alive" in r.json()["error"], r.text


@pytest.mark.parametrize("keep_alive", ["5m", -1, 0, "1h30m"])
def test_guard_an_embed_keep_alive_ollama_takes_is_taken(gateway, keep_alive):
    r = _post(gateway, "/api/embed", {"model": "coder", "input": "hello", "keep_alive": keep_alive})
    assert r.status_code != 400, r.text


# -- /v1/messages: a tool_result of no tool_use ----------------------------------------------------------------------

def _conversation(result_id: str, use_id: str = "toolu_01A") -> dict[str, Any]:
    return {"model": "writer", "max_tokens": 64, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": use_id, "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": result_id, "content": "Sunny"}]}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}


def test_a_tool_result_of_no_tool_use_is_refused_by_name(gateway, fakes):
    r = _post(gateway, "/v1/messages", _conversation("toolu_01STALE"))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "messages[2].content[0].tool_use_id" in error["message"] and "toolu_01STALE" in error["message"]
    assert not fakes[2].requests and not fakes[0].requests  # nothing was asked of any backend


def test_a_tool_result_answering_an_earlier_turns_call_is_refused(gateway):
    """The API's rule is the *previous* message's calls: a result of a call two turns back is refused too."""
    body = _conversation("toolu_01A")
    body["messages"][2:2] = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A",
                                                           "content": "Sunny"}]},
                             {"role": "assistant", "content": "It is sunny."}]
    r = _post(gateway, "/v1/messages", body)
    assert r.status_code == 400 and "messages[4].content[0].tool_use_id" in r.json()["error"]["message"], r.text


def test_guard_a_tool_result_of_the_previous_calls_is_answered(gateway):
    r = _post(gateway, "/v1/messages", _conversation("toolu_01A"))
    assert r.status_code == 200, r.text
