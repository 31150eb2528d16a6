"""A server that refuses a client's sampling field (``seed``, ``top_p``, ``frequency_penalty``, ``presence_penalty``).

Since those fields are passed on (they were dropped at the gateway before), a server that refuses one turned a request
that used to be answered into a 400: a fallback, or an error where the chain has no other model. Each refusal here is
the server's own, from issue threads where its users met it (cited per case); each test failed on the code before:
the request fell back to the backup, and the second request was refused again.

Now: asked again at once without the field, learned for that model (later requests go without it, the line logged
once), the model's answer arrives, it is not cooled, and its row in the routing log says what was left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp
from tests.fakes import OpenAIServer
from tests.helpers import make_config

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

REPLY = "Hello from the primary."
Refusal = tuple[str, int, Callable[[Any], dict[str, Any]]]


def o_series(field: str) -> Refusal:
    """OpenAI's reasoning models (o1, o3-mini, o4-mini, gpt-5.x): 400 ``{"error": {"message": "Unsupported parameter:
    'top_p' is not supported with this model.", "type": "invalid_request_error", "param": "top_p", "code":
    "unsupported_parameter"}}`` (aandrew-me/tgpt#333, lobehub/lobehub#7747, microsoft/vscode#282170); the same words
    for ``presence_penalty`` (nextai-translator#1781) and both penalties (stanford-crfm/helm#3617, TabbyML/tabby#3974).
    One field at a time: the first it meets."""
    return field, 400, lambda _: {"error": {
        "message": f"Unsupported parameter: '{field}' is not supported with this model.",
        "type": "invalid_request_error", "param": field, "code": "unsupported_parameter"}}


def extra_forbidden(field: str, *, wrapped: bool) -> Refusal:
    """A pydantic ``extra="forbid"`` request model's 422: a Mistral model on Azure AI Foundry, ``{"detail": [{"type":
    "extra_forbidden", "loc": ["body", "seed"], "msg": "Extra inputs are not permitted", "input": 123}]}``
    (langchain-ai/langchain-azure#82: "Not all the models support the parameter seed"); Mistral's own API wraps the
    same list as ``message.detail`` (its ``random_seed`` is its seed; openai-agents-python#442, partITech/php-mistral#76
    show the shape), as vLLM's and gpustack's pydantic models say it (gpustack#429)."""
    def error(value: Any) -> dict[str, Any]:
        detail = [{"type": "extra_forbidden", "loc": ["body", field], "msg": "Extra inputs are not permitted",
                   "input": value}]
        return ({"object": "error", "message": {"detail": detail}, "type": "invalid_request_error", "param": None,
                 "code": None} if wrapped else {"detail": detail})
    return field, 422, error


def xai(field: str, spelled: str) -> Refusal:
    """xAI's grok-3-mini and grok-4: 400 ``{"code": "Client specified an invalid argument", "error": "Argument not
    supported on this model: presencePenalty"}`` — the field camelCased (neavo/LinguaGacha#159, yym68686/uni-api#105,
    n8n-io/n8n#14581, lobehub/lobehub#7370)."""
    return field, 400, lambda _: {"code": "Client specified an invalid argument",
                                  "error": f"Argument not supported on this model: {spelled}"}


class RefusingServer(OpenAIServer):
    """An OpenAI-compatible server that refuses every request carrying one of ``refusals``' fields, the first
    it meets, in its own words; any other request it answers."""

    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__(reply_text=REPLY)
        self.refusals = refusals

    async def _completions(self, request: Request) -> ASGIApp:
        body = json.loads(await request.body())
        for field, status, error in self.refusals:
            if field in body:
                await self.record(request)
                return JSONResponse(error(body[field]), status_code=status)
        return await super()._completions(request)


@pytest.fixture(scope="module")
def backup() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply_text="backup answer") as server:
        yield server


async def _routed(server: RefusingServer, backup: OpenAIServer, tmp_path: Path,
                  *requests: ChatRequest) -> tuple[list[Any], float, list[tuple[Any, ...]]]:
    """Each request routed in turn (primary: the refusing server, then the backup); how long the primary cools after,
    and the routing log's attempts (request, model, outcome, reason, detail)."""
    config = make_config(
        {"primary": {"provider": "openai", "model": "o3-mini", "endpoint": server.url},
         "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 2, "connect": 1, "first_token": 2, "idle": 2, "total": 10},
                  "retries": {"attempts": 1, "backoff": 0.01, "max_wait": 1.5},
                  "cooldown": {"failures": 1, "seconds": 30, "max_seconds": 60}})
    writer = LogWriter(tmp_path / "log.db", local_models=["backup"])
    router = Router(config, sink=writer.submit)
    try:
        routed = [await router.complete("agent", r) for r in requests]
        cooling = router.pool.local("primary").health.seconds_left()
    finally:
        await router.aclose()
        writer.close()
    conn = connect(tmp_path / "log.db")
    try:
        rows = conn.execute("SELECT r.ts, a.model, a.outcome, a.reason, a.detail FROM attempts a JOIN requests r "
                            "ON r.id = a.request_id ORDER BY r.ts, a.seq").fetchall()
    finally:
        conn.close()
    return routed, cooling, [tuple(row)[1:] for row in rows]


def _sent(server: RefusingServer, fields: tuple[str, ...]) -> list[list[str]]:
    """Which of ``fields`` each request the server got carried."""
    return [[f for f in fields if f in r.json] for r in server.requests if r.path.endswith("/chat/completions")]


ASK = [Message("user", "Say hello")]


@pytest.mark.parametrize(("refusal", "request_", "field"), [
    (o_series("top_p"), ChatRequest(ASK, top_p=0.5), "top_p"),
    (xai("presence_penalty", "presencePenalty"), ChatRequest(ASK, presence_penalty=0.5), "presence_penalty"),
], ids=["openai_o_series_top_p", "xai_presence_penalty"])
async def test_a_refused_sampling_field_is_left_out_and_learned(refusal: Refusal, request_: ChatRequest, field: str,
                                                                 backup: OpenAIServer, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The model's answer, not the backup's; nothing cooled; the second request goes without the field from the
    start; the learning logged once; each row says the field was left out (the answer is not what the client's knob
    would have given: never silent)."""
    with RefusingServer([refusal]) as server, caplog.at_level(logging.INFO, "modelyard.providers.openai"):
        routed, cooling, rows = await _routed(server, backup, tmp_path, request_, request_)
        sent = _sent(server, (field,))
    assert [r.response.text for r in routed] == [REPLY, REPLY]
    assert cooling == 0
    assert sent == [[field], [], []]
    note = f"{field} left out: the model's server refuses it"
    assert rows == [("primary", "ok", None, note), ("primary", "ok", None, note)]
    assert sum(f"refuses {field}" in m for m in caplog.messages) == 1


async def test_a_server_refusing_each_field_in_turn_answers_the_first_request(backup: OpenAIServer,
                                                                              tmp_path: Path) -> None:
    """OpenAI's reasoning models refuse ``top_p`` and both penalties (stanford-crfm/helm#3617), one per answer: three
    refusals of one request, past the two refits a body was allowed — the request fell back. A refit that leaves a
    field out is not counted (the body only shrinks). A seed it takes goes on."""
    asked = ChatRequest(ASK, seed=7, top_p=0.9, frequency_penalty=0.2, presence_penalty=0.3)
    fields = ("seed", "top_p", "frequency_penalty", "presence_penalty")
    refusals = [o_series("top_p"), o_series("presence_penalty"), o_series("frequency_penalty")]
    with RefusingServer(refusals) as server:
        routed, cooling, rows = await _routed(server, backup, tmp_path, asked)
        sent = _sent(server, fields)
    assert routed[0].response.text == REPLY and cooling == 0
    assert sent == [list(fields), ["seed", "frequency_penalty", "presence_penalty"], ["seed", "frequency_penalty"],
                    ["seed"]]
    assert rows == [("primary", "ok", None,
                     "top_p, frequency_penalty, presence_penalty left out: the model's server refuses them")]


async def test_a_refusal_naming_no_sampling_field_still_falls_back(backup: OpenAIServer, tmp_path: Path) -> None:
    """Guard (right before too): a 400 of something else (OpenAI's context refusal names no field of ours, though the
    request carries a seed) is the request's, not a field's: the chain moves on, nothing left out."""
    never = ("seed", 400, lambda _: {"error": {"message": "Invalid 'messages[0].content': string too long.",
                                               "type": "invalid_request_error", "param": "messages[0].content",
                                               "code": "string_above_max_length"}})
    with RefusingServer([never]) as server:
        routed, _, rows = await _routed(server, backup, tmp_path, ChatRequest(ASK, seed=1))
        sent = _sent(server, ("seed",))
    assert routed[0].response.text == "backup answer" and sent == [["seed"]]
    assert [row[:3] for row in rows] == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]


def vllm_range(field: str, low: float) -> Refusal:
    """vLLM's check of a value (vllm/sampling_params.py ``_verify_args``): 400 ``{"object": "error", "message":
    "top_p must be in (0, 1], got 0.0.", "type": "BadRequestError", "param": None, "code": 400}`` for a client whose
    default top_p is 0 (microsoft/TaskWeaver#231). The field is taken: another value passes."""
    return field, 400, lambda value: {"object": "error", "message": f"{field} must be in (0, 1], got {value}.",
                                      "type": "BadRequestError", "param": None, "code": 400} if value <= low else None


def tgi_range(field: str) -> Refusal:
    """TGI's validation of a value: 422 ``{"error": "Input validation error: `top_p` must be > 0.0 and < 1.0",
    "error_type": "validation"}`` for a top_p of 1.0 (argilla-io/synthetic-data-generator#48)."""
    return field, 422, lambda value: {"error": f"Input validation error: `{field}` must be > 0.0 and < 1.0",
                                      "error_type": "validation"} if not 0 < value < 1 else None


class RangeServer(RefusingServer):
    """Refuses a field's *value* — the refusal's error is None for a value it takes."""

    async def _completions(self, request: Request) -> ASGIApp:
        body = json.loads(await request.body())
        for field, status, error in self.refusals:
            if field in body and (said := error(body[field])) is not None:
                await self.record(request)
                return JSONResponse(said, status_code=status)
        return await OpenAIServer._completions(self, request)


@pytest.mark.parametrize(("refusal", "value"), [(vllm_range("top_p", 0.0), 0.0), (tgi_range("top_p"), 1.0)],
                         ids=["vllm", "tgi"])
async def test_a_refused_value_is_left_out_of_that_request_only(refusal: Refusal, value: float, backup: OpenAIServer,
                                                                tmp_path: Path) -> None:
    """A value the server refuses (top_p 0, or 1.0 for TGI): that request is asked again without it and its row says
    the value was refused; the next request, with a value the server takes, sends top_p. It was learned as a field
    the model refuses: every later request went without the client's top_p, its row saying the server refuses it."""
    bad = ChatRequest(ASK, top_p=value)
    good = ChatRequest(ASK, top_p=0.5)
    with RangeServer([refusal]) as server:
        routed, cooling, rows = await _routed(server, backup, tmp_path, bad, good)
        sent = _sent(server, ("top_p",))
    assert [r.response.text for r in routed] == [REPLY, REPLY] and cooling == 0
    assert sent == [["top_p"], [], ["top_p"]]  # the second request's top_p went to the server
    assert rows[0][:3] == ("primary", "ok", None)
    assert rows[0][3].startswith("top_p left out of this request: the model's server refused the value ("), rows[0]
    assert rows[1] == ("primary", "ok", None, None)


async def test_a_field_learned_as_refused_is_asked_again_after_the_learned_time(
        backup: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAI's "Unsupported parameter: 'top_p'" is learned — then the server is upgraded (or another model served
    under the name) and takes top_p. Learned for ever, top_p was never sent again for the process's life; now it is
    believed for ``LEARNED_FOR`` after the last refusal (10 minutes; the context a server said it has expires so), and
    the first request after that sends it."""
    from modelyard.providers import context_refusal

    server = RefusingServer([o_series("top_p")])
    with server:
        config = make_config(
            {"primary": {"provider": "openai", "model": "o3-mini", "endpoint": server.url},
             "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
            {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
            defaults={"timeouts": {"queue": 2, "connect": 1, "first_token": 2, "idle": 2, "total": 10},
                      "retries": {"attempts": 1, "backoff": 0.01, "max_wait": 1.5}})
        router = Router(config)
        asked = ChatRequest(ASK, top_p=0.5)
        try:
            first = await router.complete("agent", asked)
            second = await router.complete("agent", asked)
            server.refusals = []  # upgraded: it takes top_p now
            monkeypatch.setattr(context_refusal, "LEARNED_FOR", 0.0)
            third = await router.complete("agent", asked)
        finally:
            await router.aclose()
        sent = _sent(server, ("top_p",))
    assert [r.record.model for r in (first, second, third)] == ["primary"] * 3
    assert sent == [["top_p"], [], [], ["top_p"]]
    assert "left out" in (second.record.attempts[0].detail or "")
    assert not third.record.attempts[0].detail
