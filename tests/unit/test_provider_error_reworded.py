"""A ProviderError said in other words keeps every field it carries (errors.ProviderError.reworded).

The router rewords an error whose message echoes the model's key (a proxy's 401 quoting it back). It made the copy
itself, naming each field: ``absent`` (a model not pulled, skipped a while instead of cooled) was added to the error and
had to be added to that copy too, or an echoed key would have turned a not-pulled model into a cooled one. The copy is
now the error's own, so the test below names no field: it reads them from the constructor.
"""

from __future__ import annotations

import inspect

from modelyard.errors import ProviderError, Reason


def test_reworded_keeps_every_field_the_constructor_takes() -> None:
    given: dict[str, object] = {}
    for name, param in inspect.signature(ProviderError.__init__).parameters.items():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        default = param.default
        # a value other than the default, of the default's type (a flag set, a number given)
        given[name] = True if default is False else 7
    exc = ProviderError(Reason.AUTH_ERROR, "HTTP 401: key sk-secret refused", **given)  # type: ignore[arg-type]
    again = exc.reworded("HTTP 401: key [redacted] refused")
    assert again.reason is Reason.AUTH_ERROR and again.message == "HTTP 401: key [redacted] refused"
    assert {name: getattr(again, name) for name in given} == given
    assert str(again) == "auth_error: HTTP 401: key [redacted] refused"
