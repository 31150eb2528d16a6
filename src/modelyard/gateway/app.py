"""The gateway's Starlette app: OpenAI-compatible endpoints, metrics, health and the dashboard.

:func:`create_app` takes an open :class:`Runtime` and does not own it: whoever opened the
runtime closes it (``modelyard serve`` does, after uvicorn stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from modelyard.agents.decision_log import log_decision
from modelyard.agents.turn import prepare_routing
from modelyard.config.names import did_you_mean
from modelyard.config.schema import Config
from modelyard.gateway import azure, cors, dashboard
from modelyard.gateway.answer_budget import AnswerBudget
from modelyard.gateway.auth import KeyCheck
from modelyard.gateway.body import BodyBudget
from modelyard.gateway.completions import answer_chat, chat_completions
from modelyard.gateway.drain import Drain
from modelyard.gateway.embeddings_route import create_embeddings, ollama_embed_route, ollama_embeddings_route
from modelyard.gateway.forwarded import ASGI, carries
from modelyard.gateway.hosting import Hosting
from modelyard.gateway.messages_route import count_tokens, create_message
from modelyard.gateway.messages_wire import anthropic_error
from modelyard.gateway.metrics import GatewayMetrics
from modelyard.gateway.ollama_route import chat as ollama_chat
from modelyard.gateway.ollama_route import generate as ollama_generate
from modelyard.gateway.ollama_route import ollama_error
from modelyard.gateway.ollama_route import running as ollama_running
from modelyard.gateway.ollama_route import show_model as ollama_show
from modelyard.gateway.ollama_route import tags as ollama_tags
from modelyard.gateway.ollama_route import version as ollama_version
from modelyard.gateway.openapi import openapi_document
from modelyard.gateway.responses import JSONBody, error_response, json_response
from modelyard.gateway.responses_route import create_response
from modelyard.gateway.routing import AUTO, listed_names, resolve, shared_router
from modelyard.gateway.text_completions_route import fim_completions, text_completions
from modelyard.gateway.transport import send_whole
from modelyard.ledger.store import LogUnavailable
from modelyard.providers.http import load_http_client
from modelyard.router.clock import current_loop
from modelyard.router.records import RequestRecord
from modelyard.runtime import Runtime
from modelyard.types import ChatRequest

log = logging.getLogger("modelyard.gateway")
#: the running event loop of this thread, or None (without asyncio's getpid system call on serve's loop)
_running_loop = current_loop


#: model names whose agent a gateway remembers (clients may send any number of names; the config has a few)
_NAMES_KEPT = 256


class _Resolved(dict[str, "str | None"]):
    """The agent (or None) each model name resolves to in ``config``."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config


class Gateway:
    """Everything a request handler needs, hung on ``app.state.gateway``."""

    def __init__(self, runtime: Runtime, keys: tuple[bytes, ...] = ()):
        self.runtime = runtime
        self.log = runtime.log
        self.keys = KeyCheck(keys)
        self.router = shared_router(runtime.router, self._sink)
        self.metrics = GatewayMetrics(self.router, runtime.log, forwarder=runtime.forwarder)
        self.config = self.router.config  # includes the synthetic model:NAME agents
        #: when this gateway started (RFC 3339): what Ollama's clients are told the models were "modified"
        self.started_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.request_limit = round(runtime.config.gateway.max_request_mb * 2**20)
        self.bodies = BodyBudget(round(runtime.config.gateway.max_bodies_mb * 2**20))
        #: the answer bytes buffered ahead of slow clients, all connections together (gateway/transport.py)
        self.answers = AnswerBudget(round(runtime.config.gateway.max_answers_mb * 2**20))
        self.metrics.watch_answers(self.answers)
        #: the dashboard page, read once per app (not a module global: two apps never share state)
        self.page = resources.files("modelyard.gateway").joinpath("static/dashboard.html").read_bytes()
        self.openapi = json.dumps(openapi_document()).encode()
        #: serve's lender and bot (None: an app made without them, e.g. in tests)
        self.hosting: Hosting | None = None
        #: the dashboard's month-so-far summary: one read of the log at a time, reused while fresh
        self.summaries = dashboard.Summaries(runtime.log_store, runtime.config, self.router)
        #: requests in flight; the server starts it on SIGTERM/Ctrl-C so each ends properly (drain.py)
        self.drain = Drain()
        #: finished requests whose metrics are counted at the end of the loop's current step (_sink)
        self._uncounted: list[RequestRecord] = []
        #: the agent each model name asked for resolves to, for one config (resolve)
        self._resolved = _Resolved(runtime.config)

    def _sink(self, record: RequestRecord) -> None:
        """A finished request: its routing row to the writer now; its metrics once the loop's current step is
        over — for a buffered answer, after it has left (issue #15: counting it was ~230 bytecodes between the
        row's hand-over and the wait for its commit, which a request alone in flight waits out). A scrape of
        ``/metrics`` counts what is pending first, so it never misses an answered request."""
        self.log.submit(record, crowd=not self.drain.alone())
        pending = self._uncounted
        if not pending:
            loop = _running_loop()
            if loop is None:  # not on a loop (a test's direct call): at once
                self._count([record])
                return
            loop.call_soon(self.count_pending)
        pending.append(record)

    def count_pending(self) -> None:
        """Count the finished requests not yet in the metrics."""
        pending, self._uncounted = self._uncounted, []
        self._count(pending)

    def _count(self, records: list[RequestRecord]) -> None:
        for record in records:
            try:
                self.metrics.observe(record)
            except Exception:  # a metrics bug must never fail a request that was answered
                log.exception("could not count request %s in the metrics", record.id)

    def resolve(self, name: str) -> str | None:
        """:func:`routing.resolve`, remembered per name for the runtime's config (frozen, so its answer for a name
        never changes): the hot path's ``Config.agents`` read goes through pydantic's attribute hook (issue #15)."""
        names = self._resolved
        if name in names and names.config is self.runtime.config:
            return names[name]
        config = self.runtime.config
        if names.config is not config or len(names) >= _NAMES_KEPT:  # another config; or ever new names: start over
            names = self._resolved = _Resolved(config)
        agent = names[name] = resolve(config, name)
        return agent

    async def routed_agent(self, chat: ChatRequest, request_id: str) -> str:
        """``model: auto``: the orchestrator picks the agent for the last user message, as it does for a
        turn in ``chat`` or Telegram, and the decision is logged; no hand-offs, as for any gateway call."""
        config = self.runtime.config
        orchestrator = await prepare_routing(self.runtime)
        text = next((m.content for m in reversed(chat.messages) if m.role == "user" and m.content.strip()), "")
        if orchestrator is None or not text:
            return config.orchestration.default if config.orchestration.default in config.agents \
                else config.first_agent
        decision = await orchestrator.decide(self.router, text, request_id=request_id)
        log_decision(self.log, decision, text=text if config.log.store_text else None, request_id=request_id)
        return decision.agent

    def known_names(self, asked: str) -> str:
        """Why ``asked`` is no model here: the nearest listed name first (a typo, 'chta', was told the whole list
        and left to spot 'chat' in it), then what there is."""
        cfg = self.runtime.config
        auto = "; 'auto' lets the orchestrator pick the agent" if resolve(cfg, AUTO) else ""
        near = _provider_id_of(asked, cfg) or did_you_mean(asked, (entry[0] for entry in listed_names(cfg)))
        if asked == AUTO and not auto:  # README's first client asks for 'auto': a config of one's own may have none
            near = (" ('auto' lets an orchestrator pick the agent, and this config has none: an agent whose consumers "
                    "are the agents it picks from, named in orchestration.agent — or ask for an agent by name)")
        return (f"{near}: agents: {', '.join(cfg.agents)}; models: {', '.join(cfg.models)} "
                f"(address a model as 'model:NAME' or by its name{auto})")

    def unauthorized(self, *, header: str = "", sent_x_api_key: bool = False) -> Response:
        """``header``: the endpoint reads the key in that header too (Anthropic's API ``x-api-key``, Azure OpenAI's
        paths ``api-key``). Elsewhere the 401 said "(or 'x-api-key: <key>')" and refused the client that did so: it
        now says where that header is read."""
        how = f"'{header}: <key>' or 'Authorization: Bearer <key>'" if header else "'Authorization: Bearer <key>'"
        if sent_x_api_key and header != "x-api-key":
            how += " (x-api-key is read only by Anthropic's API here: /v1/messages)"
        return error_response(401, f"missing or invalid API key: send {how}", code="invalid_api_key",
                              headers={"www-authenticate": "Bearer"})


def _provider_id_of(asked: str, cfg: Config) -> str:
    """' ('llama3.2:3b' is the provider's id of model 'small': ask for 'small')' when a client asks for a model by its
    server's name — an Ollama tag typed from `ollama list`, as the CLI says it — else ''. It was told only the nearest
    name by spelling, which for `qwen2.5:7b` beside `local` is none."""
    bare = asked.removesuffix(":latest")
    named = [n for n, m in cfg.models.items() if m.model and m.model.removesuffix(":latest") == bare]
    return f" ('{asked}' is the provider's id of model '{named[0]}': ask for '{named[0]}')" if named else ""


def _gw(request: Request) -> Gateway:
    return request.app.state.gateway


def _guard(request: Request) -> Response | None:
    """The key as a bearer token; from an Anthropic client (``anthropic-version``: its SDKs list models at
    ``/v1/models`` too) also as ``x-api-key``, the only header it sends it in."""
    gw = _gw(request)
    headers = request.headers
    anthropic = "anthropic-version" in headers
    key = headers.get("x-api-key") if anthropic else None
    presented = headers.get("authorization") or (f"Bearer {key}" if key else None)
    return None if gw.keys.allows(presented) else gw.unauthorized(header="x-api-key" if anthropic else "",
                                                                  sent_x_api_key="x-api-key" in headers)


def _model_entry(name: str, kind: str, chain: list[str], created_at: str) -> dict[str, Any]:
    """One model in OpenAI's shape and Anthropic's at once (``type``, ``display_name``, ``created_at``): both
    APIs list models at ``GET /v1/models``."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "modelyard", "type": "model",
            "display_name": name, "created_at": created_at, "modelyard": {"kind": kind, "chain": chain}}


async def list_models(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    gw = _gw(request)
    data = [_model_entry(*entry, gw.started_at) for entry in listed_names(gw.runtime.config)]
    return json_response({"object": "list", "data": data, "has_more": False,  # Anthropic's page
                          "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})


async def get_model(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    name = request.path_params["name"]
    listed = listed_names(_gw(request).runtime.config)
    for entry in listed:
        if entry[0] == name:
            return json_response(_model_entry(*entry, _gw(request).started_at))
    near = did_you_mean(name, (entry[0] for entry in listed))
    return error_response(404, f"The model '{name}' does not exist{near}", param="model", code="model_not_found")


async def metrics(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    gw = _gw(request)
    gw.count_pending()
    return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    gw = _gw(request)
    models = [{"name": m["name"], "state": m["state"], "in_flight": m["in_flight"], "waiting": m["waiting"],
               "limit": m["limit"]} for m in dashboard.model_states(gw.router)]
    if (spend := gw.runtime.pool.spend) is not None:  # spend caps: how far each capped model is into its window
        for m in models:
            if (cap := spend.caps.get(m["name"])) is not None:
                m["spend"] = {"usd": round(spend.spent(m["name"]), 6), "cap_usd": cap.usd, "per": str(cap.per),
                              "over": spend.over(m["name"]) is not None}
    writer = gw.log.health()
    log_state: dict[str, Any] = {
        "written": writer.written, "errors": writer.lost, "dropped": writer.dropped, "repaired": writer.repaired,
        "failures": writer.failures,
        "queued": writer.queued, "held": writer.held, "writer_alive": writer.alive, "last_error": writer.last_error,
        "last_error_age_s": None if writer.last_error_age_s is None else round(writer.last_error_age_s, 1)}
    # still 200: the gateway serves; "degraded" tells a monitor the routing log is not keeping up
    body: dict[str, Any] = {"status": "degraded" if writer.degraded else "ok", "models": models, "log": log_state}
    # gateway.max_answers_mb: what slow clients' answers hold of it; refused: answers that waited on their client
    body["answer_buffers"] = gw.answers.status()
    if gw.runtime.forwarder is not None:  # log.url: the copy to PostgreSQL; answers never wait on it
        forward = gw.runtime.forwarder.health()
        body["log"]["forward"] = {**asdict(forward), "degraded": forward.degraded}
        if forward.degraded:
            body["status"] = "degraded"
    shared = gw.runtime.pool.state_status()  # state: redis://… — slots and breakers shared with other processes
    body["state"] = {"backend": "local"}
    if (serve := gw.runtime.pool.serve) is not None:  # a second gateway for a config another serve serves
        body["state"] = {"backend": "borrowed", "up": serve.up, "detail": serve.describe()}
        if not serve.up:
            body["status"] = "degraded"
    if shared is not None:
        body["state"] = {"backend": "redis", "url": shared.url, "prefix": shared.prefix, "up": shared.up,
                         "detail": shared.detail, "instances": shared.instances, "view_age_s": shared.view_age,
                         "limits_differ": shared.disagreements, "counted_apart": shared.splits,
                         "full_share_in_s": round(shared.full_share_in, 2)}
        if not shared.up or shared.disagreements or shared.splits:  # a limit handed out larger than configured
            body["status"] = "degraded"
    if gw.hosting is not None:  # front-ends on this machine borrowing these limits; the bot in this process
        hosted = gw.hosting.status()
        body["state"]["lending"] = hosted["lending"]
        body["telegram"] = hosted["telegram"]
        if hosted["telegram_bot"] is not None:  # polling (409 Conflict: another poller on the token), answers held
            body["telegram_bot"] = hosted["telegram_bot"]
            if hosted["telegram_bot"]["polling"] in ("conflict", "stalled", "stopped"):  # takes some, or none
                body["status"] = "degraded"
    return json_response(body)


async def page(request: Request) -> Response:
    return HTMLResponse(_gw(request).page)


#: what Ollama answers at its base URL (GET and HEAD ``/``, text/plain): the server-is-up probe of its clients
OLLAMA_RUNNING = "Ollama is running"


async def root(request: Request) -> Response:
    """The dashboard for a browser, which asks for ``text/html``; anything else at the base URL is a client
    probing for Ollama (the ``ollama`` CLI's heartbeat is ``HEAD /``; others compare the text), answered as
    Ollama answers it."""
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_gw(request).page)
    return PlainTextResponse(OLLAMA_RUNNING)


async def api_log(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    q = request.query_params
    try:
        limit = max(1, min(500, int(q.get("limit", "100"))))
    except ValueError:
        return error_response(400, "limit must be an integer", param="limit")
    try:
        rows = await dashboard.log_rows(_gw(request).runtime.log_store, limit=limit, agent=q.get("agent") or None,
                                        model=q.get("model") or None, outcome=q.get("outcome") or None)
    except LogUnavailable as exc:
        return error_response(503, str(exc), code="log_unavailable")
    return json_response({"rows": rows})


async def api_summary(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    gw = _gw(request)
    try:
        data = await gw.summaries.get()
    except LogUnavailable as exc:
        return error_response(503, str(exc), code="log_unavailable")
    cfg = gw.runtime.config
    data["options"] = {"agents": [*cfg.agents, *(f"model:{m}" for m in cfg.models)], "models": list(cfg.models),
                       "outcomes": list(dashboard.OUTCOMES)}
    return json_response(data)


async def openapi(request: Request) -> Response:
    return Response(_gw(request).openapi, media_type="application/json")


_CONVERTER = re.compile(r"{(\w+):\w+}")  # "{name:path}" is "{name}" to a client
_PLAIN = r"{\1}"


def _endpoints(app: Starlette) -> list[str]:
    """What the 404 of an unknown path names, so a client on the wrong API learns what to call instead."""
    out = []
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            methods = "/".join(sorted(route.methods - {"HEAD"}))
            out.append(f"{methods} {_CONVERTER.sub(_PLAIN, route.path)}")
    return out


def _nearest(app: Starlette, method: str, path: str) -> str:
    """A path one slip away from one served for this method — `/v1/chat/completion`, `/v1/embedding`, `/v1/model` —
    named first: the 404 listed all 24 endpoints, the one meant among them (a client's base URL plus its own path is
    where such slips come from: OpenHands/OpenHands#6836, BerriAI/litellm#9445)."""
    served = [route.path for route in app.routes if isinstance(route, Route) and route.methods
              and method in route.methods and "{" not in route.path]
    near = difflib.get_close_matches(path.rstrip("/"), served, n=1, cutoff=0.85)
    return f" (did you mean {method} {near[0]}?)" if near else ""


#: Azure OpenAI's path: ``/openai/deployments/{deployment}/chat/completions?api-version=…`` (openai-python's
#: ``AzureOpenAI`` client builds it from ``azure_endpoint`` and ``model``; LangChain's ``AzureChatOpenAI``, n8n's and
#: Open WebUI's Azure connections use it)
_AZURE = re.compile(r"^/openai/deployments/([^/]+)/")


def _prefixed(app: Starlette, method: str, path: str) -> str:
    """A served path behind a prefix — ``/modelyard/v1/chat/completions`` — said as a reverse proxy that passes its
    location on (nginx's ``proxy_pass http://127.0.0.1:8080;`` without the trailing ``/`` under ``location
    /modelyard/``), with how each common proxy strips it; the 404 named only the whole path and every endpoint."""
    served = {route.path for route in app.routes if isinstance(route, Route) and route.methods
              and method in route.methods and "{" not in route.path}
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        tail = "/" + "/".join(parts[i:])
        if tail in served:
            prefix = "/" + "/".join(parts[:i])
            return (f" (that is {method} {tail} behind the prefix {prefix}: a reverse proxy passing its location on "
                    f"— have it strip the prefix: nginx `location {prefix}/ {{ proxy_pass http://127.0.0.1:PORT/; }}` "
                    f"(the trailing / strips it), Caddy `handle_path {prefix}/*`, Traefik's StripPrefix middleware; "
                    f"clients then use the base URL …{prefix}/v1)")
    return ""


def _azure_hint(request: Request) -> str:
    """What an Azure OpenAI client pointed here at a path not served (images, audio, an assistant) is told: which of
    a deployment's paths are (gateway/azure.py)."""
    deployment = _AZURE.match(request.url.path)
    if deployment is None:
        return ""
    return (f"; of Azure OpenAI's deployment paths this gateway serves "
            f"{', '.join(f'/openai/deployments/{{deployment}}/{p}' for p in azure.SERVED)} (the deployment is the "
            f"agent or model, here '{deployment.group(1)}')")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        path = request.url.path
        hint = _nearest(request.app, request.method, path) or _prefixed(request.app, request.method, path)
        answer = error_response(404, f"no endpoint {request.method} {path}{hint}"
                                f"{_azure_hint(request)}; this gateway serves: " + ", ".join(_endpoints(request.app)),
                                code="not_found")
    elif exc.status_code == 405 and (allow := (exc.headers or {}).get("Allow")):  # `curl URL` is a GET
        answer = error_response(405, f"{request.method} {request.url.path} is not served: use {allow}",
                                code="method_not_allowed", headers=exc.headers)
    else:
        answer = error_response(exc.status_code, exc.detail or "error", headers=exc.headers)
    return _in_the_apis_shape(request.url.path, answer)


_DASHBOARD_API = frozenset({"/api/log", "/api/summary"})


def _in_the_apis_shape(path: str, answer: Response) -> Response:
    """An Ollama client calling an endpoint not served here (``/api/embed``, ``/api/pull``) reads the error as
    Ollama's ``{"error": "…"}`` (an object there printed as ``[object Object]`` in ollama-js), an Anthropic
    client (``/v1/messages/batches``) as Anthropic's; everything else (the dashboard's ``/api/log`` and
    ``/api/summary`` too) is OpenAI's."""
    if path.startswith("/api/") and path not in _DASHBOARD_API:
        return ollama_error(answer)
    if path.startswith("/v1/messages"):
        return anthropic_error(answer)
    return answer


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in %s", request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); see the gateway's log", code="internal_error")


Handler = Callable[[Request], Awaitable[Response]]


class _HotRequest(Request):
    """Starlette's ``Request`` for a hot route, made in one step: its ``__init__`` calls ``HTTPConnection``'s and
    asserts the scope's type, which the dispatch has just looked at (issue #15); the rest starts as Starlette's."""

    _stream_consumed = False
    _is_disconnected = False
    _form = None

    def __init__(self, scope: Scope, receive: Receive, send: Send, by_name: dict[bytes, bytes]):
        # no super().__init__: that is the point
        self.scope = scope
        self._receive = receive
        self._send = send
        #: the head's headers by (lower-case) name, last value of each: the dict the dispatch made (body.read_body)
        self.by_name = by_name


class GatewayApp(Starlette):
    """Starlette, with the model endpoints (``POST`` to their exact path) called directly (issue #15).

    Starlette sends every request through two middlewares, a router that matches each route in turn,
    and two wrappers around ``send``: ~10% of the gateway's CPU per answered request. For the hot
    routes this does what that stack does for them — the handler gets a ``Request`` whose ``app`` is
    this app; an exception before the answer started becomes the same 500 (``_internal_error``) and
    is raised on to the server, which logs it — and nothing else. Every other request, and any
    other method or spelling of these paths, goes through Starlette as before.
    """

    def __init__(self, *args: Any, hot: dict[str, Handler], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hot = hot
        self._served: frozenset[str] | None = None  # exact paths of the routes, built on first use
        #: the same object as ``state.gateway``, which Starlette's ``State`` finds only after a raised and
        #: discarded AttributeError (its ``__getattr__``), on every access
        self.gateway: Gateway
        #: uvicorn's proxy-header middleware, run here for the requests that carry such a header (``serve`` turns
        #: uvicorn's own off: gateway/forwarded.py); None: the server applies it, or nobody does
        self.forwarded: ASGI | None = None
        #: the gateway asks for a key (cors.py: then any page and any Host name may call); an app made bare is so too
        self.keyed = True
        #: Host headers seen, and whether each names this machine or a name the config allows (cors.py), per app
        self.local_hosts = cors.HostVerdicts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if self.forwarded is not None and scope["type"] != "lifespan" and carries(dict(scope["headers"])):
                await self.forwarded(scope, receive, send)
            return await super().__call__(scope, receive, send)
        headers = dict(scope["headers"])  # one dict of the head for both looks at it (issue #15)
        if self.forwarded is not None and carries(headers):
            await self.forwarded(scope, receive, send)  # rewrites the scope's client and scheme, as uvicorn would
        if (browser := cors.screen(scope, headers, self.keyed, self.local_hosts)) is not None:
            if isinstance(browser, Response):  # refused (a page elsewhere, a rebound name), or a preflight answered
                return await _in_the_apis_shape(scope["path"], browser)(scope, receive, send)
            send = cors.exposing(send, browser)  # a page that may call: it may read the answer (cors.py)
        handler = self.hot.get(scope["path"]) if scope["method"] == "POST" else None
        if handler is None:
            if (served := self.spelled(scope["path"])) is not None:
                scope["path"] = served
                scope["raw_path"] = served.encode()
                handler = self.hot.get(served) if scope["method"] == "POST" else None
            if handler is None:
                return await super().__call__(scope, receive, send)
        scope["app"] = self
        request = _HotRequest(scope, receive, send, headers)
        try:
            response = await handler(request)
        except Exception as exc:
            await (await _internal_error(request, exc))(scope, receive, send)
            raise
        if type(response) is JSONBody and send_whole(send, response.status_code, response.raw_headers, response.body,
                                                     response.head):
            return  # in one step through uvicorn's cycle (gateway/transport.py)
        await response(scope, receive, send)  # it has started: a failure now is the server's to log and close


    def spelled(self, path: str) -> str | None:
        """The served path a client meant by another spelling of it, else None (only paths no route has pay).

        Clients build URLs by joining strings: a base URL ending in ``/`` gives ``//v1/chat/completions``
        (read by Starlette as a *host* ``v1`` and refused naming ``/chat/completions``), a trailing ``/``
        drew a 307 that the SDKs do not follow for a POST, and a base URL without ``/v1`` (Continue's
        ``apiBase``, LiteLLM-proxy habits: it serves both) asks for ``/chat/completions``, ``/models``; one
        ending in ``/v1`` given to a client that adds ``/v1`` itself (Claude Code's ``ANTHROPIC_BASE_URL``, the
        Anthropic SDK) asks for ``/v1/v1/messages``."""
        if self._served is None:
            self._served = frozenset(r.path for r in self.routes if isinstance(r, Route) and "{" not in r.path)
        if path in self._served:
            return None
        canon = "/" + "/".join(part for part in path.split("/") if part)
        while canon.startswith("/v1/v1/"):  # a base URL that ends in /v1 to a client that adds /v1 itself
            canon = canon[3:]
        if canon.startswith("/openai/v1/"):  # Azure OpenAI's v1 API (an OpenAI client, base URL …/openai/v1/)
            canon = canon[7:]
        for candidate in (canon, "/v1" + canon):
            if candidate != path and (candidate in self._served or candidate.startswith("/v1/models/")):
                return candidate
        return None


async def _train_routing(runtime: Runtime) -> None:
    try:
        await prepare_routing(runtime)
    except Exception:  # the first routed request will try again and say what is wrong
        log.exception("could not train the orchestrator's fast path at start-up")


def create_app(runtime: Runtime, *, api_keys: tuple[bytes, ...] = (), close_runtime: bool = False,
               keep_warm: bool = False, hosting: Hosting | None = None) -> GatewayApp:
    """The app; with ``close_runtime`` the runtime is closed when the server shuts down; with
    ``keep_warm`` local models are loaded at start-up and kept loaded (ops.warmup.keep_warm), and the
    orchestrator's fast path is trained then, so the first ``model: auto`` request does not wait for it;
    ``hosting`` (``modelyard serve``): the slot lender and the Telegram bot live as long as the app."""

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/completions", text_completions, methods=["POST"]),
        Route("/v1/fim/completions", fim_completions, methods=["POST"]),
        Route("/v1/embeddings", create_embeddings, methods=["POST"]),
        Route("/v1/messages", create_message, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/api/chat", ollama_chat, methods=["POST"]),
        Route("/api/generate", ollama_generate, methods=["POST"]),
        Route("/api/embed", ollama_embed_route, methods=["POST"]),
        Route("/api/embeddings", ollama_embeddings_route, methods=["POST"]),
        Route("/api/tags", ollama_tags, methods=["GET"]),
        Route("/api/show", ollama_show, methods=["POST"]),
        Route("/api/version", ollama_version, methods=["GET"]),
        Route("/api/ps", ollama_running, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name:path}", get_model, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", root, methods=["GET"]),
        Route("/dashboard", page, methods=["GET"]),
        Route("/api/log", api_log, methods=["GET"]),
        Route("/api/summary", api_summary, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        # Azure OpenAI's deployment paths (gateway/azure.py): the deployment is the agent or model
        Route("/openai/deployments/{deployment}/chat/completions", azure.azure_chat, methods=["POST"]),
        Route("/openai/deployments/{deployment}/completions", azure.azure_completions, methods=["POST"]),
        Route("/openai/deployments/{deployment}/embeddings", azure.azure_embeddings, methods=["POST"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background: list[asyncio.Task[None]] = []
        runtime.pool.join()
        load_http_client()  # not in the first request's time bounds
        if keep_warm:
            from modelyard.ops.warmup import keep_warm as keep_models_warm

            background = [asyncio.create_task(keep_models_warm(runtime), name="modelyard-keep-warm"),
                          asyncio.create_task(_train_routing(runtime), name="modelyard-train-routing")]
        try:
            async with hosting if hosting is not None else contextlib.nullcontext():
                yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if close_runtime:
                await runtime.aclose()

    app = GatewayApp(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: _http_error, Exception: _internal_error},
                     hot={"/v1/chat/completions": answer_chat, "/v1/responses": create_response,
                          "/v1/messages": create_message, "/api/chat": ollama_chat, "/api/generate": ollama_generate})
    app.state.gateway = app.gateway = Gateway(runtime, api_keys)  # app.gateway: a plain attribute for the hot path
    app.keyed = app.gateway.keys.required
    app.local_hosts = cors.HostVerdicts(runtime.config.gateway.allowed_hosts)
    app.state.gateway.hosting = hosting
    if hosting is not None:
        app.state.gateway.metrics.watch_hosting(hosting.status)
    return app
