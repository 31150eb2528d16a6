"""Keys a server or relay echoes in its error that are not this config's own (so not redacted by value): the other
services' documented key prefixes and the headers keys travel in are scrubbed from every logged message
(errors.redact, which ProviderError applies to its message).

Shapes: Google's API keys ``AIza`` + 35 characters (cloud.google.com/docs/authentication/api-keys), Groq's ``gsk_``,
Hugging Face's ``hf_``, xAI's ``xai-``, GitHub's ``ghp_``/``github_pat_`` tokens, AWS access key ids ``AKIA``; the
headers: Azure OpenAI's ``api-key`` (learn.microsoft.com azure/ai-services/openai/reference), Gemini's
``x-goog-api-key``. Each but the guards was logged verbatim before (the message of an HTTP 401 a relay quoted)."""

from __future__ import annotations

import pytest

from modelyard.errors import ProviderError, Reason, redact

KEYS = ["AIzaSyD-abcdefghijklmnopqrstuvwxyz01234", "gsk_ABCDEFGHIJKLMNOPQRSTUVWX",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEF12", "xai-abcdefghijklmnopqrstuvwxyz",
        "ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
        "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz", "AKIAIOSFODNN7EXAMPLE"]


@pytest.mark.parametrize("key", KEYS)
def test_a_key_of_another_service_echoed_in_an_error_is_not_logged(key: str) -> None:
    error = ProviderError(Reason.AUTH_ERROR, f"HTTP 401: Incorrect API key provided: {key}. See the docs.")
    assert key not in error.message and key not in str(error)
    assert "Incorrect API key provided: ***. See the docs." in error.message


@pytest.mark.parametrize("header", ["api-key", "x-goog-api-key", "X-Api-Key", "Api-Key"])
def test_a_key_quoted_with_its_header_is_not_logged(header: str) -> None:
    said = redact(f"upstream refused: headers={{'{header}': 'c0ffee1234567890abcdef'}}")
    assert "c0ffee1234567890abcdef" not in said and f"'{header}': '***'" in said


@pytest.mark.parametrize("words", ["set models.primary.api_key_env to the name of the variable",
                                   "models.cloud.api_key: not allowed here, use api_key_env",
                                   "the hf_transfer package", "AKIA is a prefix"])
def test_guard_words_that_only_look_like_keys_stay(words: str) -> None:
    assert redact(words) == words
