"""A raw prompt falls back only to a model that reads the same chat template (``models.NAME.template``, or the same
model id); another is skipped with the reason, and the key to set, in its routing row.

A raw prompt is the client's own template and special tokens (docs.ollama.com/api/generate: "raw: if true no
formatting will be applied to the prompt"); ChatML's ``<|im_start|>`` markers are Qwen's (its tokenizer_config's
chat_template), plain text to a Llama 3 model, which reads ``<|start_header_id|>``. Was: when the first model failed,
the prompt went verbatim to the next whatever its family, and its answer to the foreign markers came back as a
success; the tests of a skip failed on the old code.

Where the config is silent, an Ollama model's family is read from its server: /api/show's ``template``
(docs.ollama.com/api/show), the model's own chat template; the two below are the chat templates of Qwen2.5 and
Llama 3.1 as Ollama's library ships them (ollama.com/library/qwen2.5/blobs, ollama.com/library/llama3.1/blobs), cut
to their turn markers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelyard.ledger import connect
from modelyard.providers.chat_template import family_of
from tests.fakes import Fault, OllamaServer, OpenAIServer
from tests.fakes.llama_server import LlamaServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

CHATML = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def servers() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    with OpenAIServer(reply_text="from first") as first, OpenAIServer(reply_text="from second") as second:
        first.faults.set_default(Fault.status(500))  # the primary is down: the chain moves on
        yield first, second


def _config(tmp_path, first: str, second: str, *, second_model: str = "llama3.1-8b",
            templates: tuple[str | None, str | None] = (None, None)) -> Any:
    models: dict[str, dict[str, Any]] = {
        "qwen": {"provider": "openai", "endpoint": first, "model": "qwen2.5-7b"},
        "other": {"provider": "openai", "endpoint": second, "model": second_model}}
    for name, template in zip(("qwen", "other"), templates, strict=True):
        if template is not None:
            models[name]["template"] = template
    return _chain(tmp_path, models)


def _chain(tmp_path, models: dict[str, dict[str, Any]]) -> Any:
    """Agent ``coder``: ``qwen``, then ``other``; no retries, so the primary's failure moves on at once."""
    defaults = {"timeouts": {"queue": 1, "connect": 2, "first_token": 5, "idle": 5, "total": 20},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, {"coder": {"primary": "qwen", "fallbacks": ["other"]}}, defaults=defaults,
                       log={"path": str(tmp_path / "log.db")})


def _generate(gw: GatewayServer, raw: bool = True) -> httpx.Response:
    return httpx.post(gw.url + "/api/generate", json={"model": "coder", "prompt": CHATML, "raw": raw,
                                                      "stream": False}, timeout=15)


def _rows(gw: GatewayServer) -> list[tuple[str, str, str | None, str | None]]:
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        return [tuple(r) for r in conn.execute("SELECT model, outcome, reason, detail FROM attempts ORDER BY ts, seq")]
    finally:
        conn.close()


def test_a_raw_prompt_is_not_given_to_a_model_whose_template_is_not_known(tmp_path, servers):
    first, second = servers
    with GatewayServer(_config(tmp_path, first.url, second.url)) as gw:
        r = _generate(gw)
        assert r.status_code >= 400 and "from second" not in r.text, r.text
        assert second.requests_to("/v1/completions") == []
        skipped = _rows(gw)[-1]
        assert skipped[:3] == ("other", "skipped", "bad_request")
        assert "models.qwen.template and models.other.template" in (skipped[3] or "")
        # not raw: a chat turn, templated by each server for its own model — the fallback answers as before
        plain = _generate(gw, raw=False)
        assert plain.status_code == 200 and "from second" in plain.text, plain.text


def test_another_template_family_is_skipped_with_both_named(tmp_path, servers):
    first, second = servers
    with GatewayServer(_config(tmp_path, first.url, second.url, templates=("chatml", "llama3"))) as gw:
        r = _generate(gw)
        assert r.status_code >= 400, r.text
        assert second.requests_to("/v1/completions") == []
        detail = _rows(gw)[-1][3] or ""
        assert "('chatml')" in detail and "'llama3'" in detail and "models.NAME.template" in detail


def test_the_same_template_family_takes_it_verbatim(tmp_path, servers):
    first, second = servers
    with GatewayServer(_config(tmp_path, first.url, second.url, second_model="qwen2.5-14b",
                               templates=("chatml", "chatml"))) as gw:
        r = _generate(gw)
        assert r.status_code == 200 and "from second" in r.text, r.text
        assert second.requests_to("/v1/completions")[-1].json["prompt"] == CHATML


def test_the_same_model_on_another_server_needs_no_key(tmp_path, servers):
    """Guard (right before too): the same model id elsewhere reads the same template."""
    first, second = servers
    with GatewayServer(_config(tmp_path, first.url, second.url, second_model="Qwen2.5-7B")) as gw:
        r = _generate(gw)
        assert r.status_code == 200 and "from second" in r.text, r.text


def test_the_config_key_is_read_and_checked():
    config = make_config({"qwen": {"provider": "openai", "template": "chatml"}}, {"coder": {"primary": "qwen"}})
    assert config.models["qwen"].template == "chatml"
    with pytest.raises(Exception, match=r"template"):
        make_config({"qwen": {"provider": "openai", "template": ""}}, {"coder": {"primary": "qwen"}})


QWEN_TEMPLATE = ("{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{- range .Messages }}"
                 "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n")
#: the same two as Jinja, as llama-server's /props gives a GGUF's (Qwen2.5's and Llama 3.1's tokenizer_config.json
#: chat_template, cut to their turn markers)
QWEN_JINJA = ("{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
              "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
              "{%- endif %}")
LLAMA3_JINJA = ("{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>"
                "\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}")
LLAMA3_TEMPLATE = ("{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}"
                   "<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_template_families_are_read_from_their_markers():
    assert family_of(QWEN_TEMPLATE) == "chatml" and family_of(LLAMA3_TEMPLATE) == "llama3"
    assert family_of("[INST] <<SYS>>{{ .System }}<</SYS>> {{ .Prompt }} [/INST]") == "llama2"
    assert family_of("[INST] {{ .Prompt }} [/INST]") == "mistral"
    assert family_of("<start_of_turn>user\n{{ .Prompt }}<end_of_turn>") == "gemma"
    assert family_of("{{ .Prompt }}") is None


@pytest.mark.parametrize(("second_template", "answers"), [(QWEN_TEMPLATE, True), (LLAMA3_TEMPLATE, False)])
def test_an_ollama_models_template_is_read_from_its_server(tmp_path, second_template, answers):
    """Llama 3's fails on the old code (given the ChatML prompt); Qwen's is a guard there (the old code gave any
    model the prompt) and fails under the config-only rule (neither declares a template)."""
    with OllamaServer(reply_text="from first", template=QWEN_TEMPLATE) as first, \
            OllamaServer(reply_text="from second", template=second_template) as second:
        first.faults.set_default(Fault.status(500))
        models = {"qwen": {"provider": "ollama", "endpoint": first.url, "model": "qwen2.5:7b"},
                  "other": {"provider": "ollama", "endpoint": second.url, "model": "other-model:8b"}}
        with GatewayServer(_chain(tmp_path, models)) as gw:
            r = _generate(gw)
            if answers:
                assert r.status_code == 200 and "from second" in r.text, r.text
                assert second.requests_to("/api/generate")[-1].json["prompt"] == CHATML
            else:
                assert r.status_code >= 400 and second.requests_to("/api/generate") == [], r.text
                detail = _rows(gw)[-1][3] or ""
                assert "('chatml')" in detail and "'llama3'" in detail, detail


@pytest.mark.parametrize(("second_template", "answers"), [(QWEN_JINJA, True), (LLAMA3_JINJA, False)])
def test_a_llama_servers_template_is_read_from_its_props(tmp_path, servers, second_template, answers):
    """llama-server's GET /props ``chat_template`` (the GGUF's own): the primary an OpenAI-compatible
    server whose template is declared, the fallback a llama-server whose template is read. Llama 3's fails on the old
    code; Qwen's is a guard there and fails under the config-only rule."""
    first, _ = servers
    with LlamaServer(reply_text="from llama", chat_template=second_template) as llama:
        models = {"qwen": {"provider": "openai", "endpoint": first.url, "model": "qwen2.5-7b", "template": "chatml"},
                  "other": {"provider": "openai", "endpoint": llama.url, "model": "local-gguf"}}
        with GatewayServer(_chain(tmp_path, models)) as gw:
            r = _generate(gw)
            if answers:
                assert r.status_code == 200 and "from llama" in r.text, r.text
            else:
                assert r.status_code >= 400 and llama.requests_to("/v1/completions") == [], r.text
                assert "'llama3'" in (_rows(gw)[-1][3] or "")
            assert len(llama.requests_to("/props")) == 1
