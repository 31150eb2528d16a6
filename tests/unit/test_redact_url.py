"""A credential in an endpoint's URL never reaches a log row, a message or /healthz.

Since every attempt row keeps the server it went to (``attempts.backend``, m012), an endpoint written with its key in
the query — Gemini's OpenAI-compatible endpoint takes ``?key=`` (ai.google.dev/gemini-api/docs/api-key), Azure's SAS
URLs carry ``sig=``, some proxies ``?api-key=`` / ``?access_token=`` — was kept whole in every row.
"""

from __future__ import annotations

import pytest

from modelyard.config.schema import ModelConfig, redact_url
from modelyard.ledger.probes import backend_of
from modelyard.providers import build_provider


@pytest.mark.parametrize(("url", "said"), [
    ("https://generativelanguage.googleapis.com/v1beta/openai?key=AIzaSyA-secret",
     "https://generativelanguage.googleapis.com/v1beta/openai?key=***"),
    ("http://10.0.0.5:8000/v1?api-version=2024-02-01&api-key=secret#top",
     "http://10.0.0.5:8000/v1?api-version=2024-02-01&api-key=***#top"),
    ("https://acct.blob.example/v1?sv=2024&sig=secret&se=2026", "https://acct.blob.example/v1?sv=2024&sig=***&se=2026"),
    ("http://team:secret@gpu:11434?access_token=secret", "http://team:***@gpu:11434?access_token=***"),
    ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
    ("redis:/:secret@h:6379/0", "redis:/:***@h:6379/0"),
])
def test_a_credential_in_a_url_is_hidden(url: str, said: str) -> None:
    assert redact_url(url) == said and "secret" not in redact_url(url)


def test_the_server_an_attempt_went_to_keeps_no_key_from_its_query() -> None:
    config = ModelConfig.model_validate({"provider": "openai", "model": "gemini-2.5-flash",
                                         "endpoint": "https://gw.internal/v1?key=AIzaSyA-secret"})
    backend = backend_of(build_provider("gemini", config))
    assert "gw.internal" in backend and "gemini-2.5-flash" in backend and "AIzaSyA" not in backend, backend
