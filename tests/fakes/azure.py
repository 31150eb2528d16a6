"""OpenAI-compatible APIs whose endpoint carries a query every call must keep.

- Azure OpenAI, in its two URL shapes (learn.microsoft.com, azure/ai-services/openai/reference and
  api-version-lifecycle): ``POST /openai/deployments/{deployment}/chat/completions?api-version=2024-10-21`` — the
  deployment is the model, the version in the query — and the v1 API, ``/openai/v1/chat/completions`` and
  ``/openai/v1/models`` (``?api-version=preview`` optional there). The key comes in an ``api-key`` header (on the
  v1 API a bearer token does too). Without
  the api-version a deployment path is "Resource not found" (a 404: BAML's azure-openai docs, "Azure will return
  'not found' if the version is not specified"; learn.microsoft.com/answers/questions/1241073); a wrong or missing
  key a 401 in Azure's own words.
- Gemini's OpenAI-compatible endpoint, ``/v1beta/openai/…``, its key given as ``?key=`` (Google APIs take an API key
  so) or as a bearer token; its errors are a list holding one error object.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from tests.fakes.openai_compat import OpenAIServer

#: Azure's 401 for a key it does not take (the words its users quote: "Access denied due to invalid subscription key
#: or wrong API endpoint")
AZURE_DENIED = {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API "
                          "endpoint. Make sure to provide a valid key for an active subscription and use a correct "
                          "regional API endpoint for your resource."}}
AZURE_NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}


#: the api-version that still serves the data-plane deployment listing (langflow#14509, model-hotel#506)
DEPLOYMENTS_VERSION = "2023-03-15-preview"


class AzureOpenAIServer(OpenAIServer):
    """Azure OpenAI: deployments (``deployments`` names them) and the v1 API, ``api-key`` checked when set.
    ``models`` says which model each deployment serves (by default one of its own name), for the deployment listing;
    ``pending`` names deployments still being created (``status: "creating"``)."""

    def __init__(self, deployments: list[str], *, api_key: str | None = None, models: dict[str, str] | None = None,
                 pending: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(models=deployments, **kwargs)
        self.azure_key = api_key
        self.served = {d: (models or {}).get(d, d) for d in deployments}
        self.pending = pending

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/openai/deployments/{deployment}/chat/completions", self._deployment, methods=["POST"]),
            Route("/openai/v1/chat/completions", self._v1, methods=["POST"]),
            Route("/openai/v1/models", self._models, methods=["GET"]),
            Route("/openai/deployments", self._deployments_list, methods=["GET"]),
        ]

    async def _deployments_list(self, request: Request) -> JSONResponse:
        """``GET /openai/deployments?api-version=2023-03-15-preview``: the resource's deployments, each its name
        (``id``, what a chat names as its model) and the model it serves — openai-python#447 quotes the shape
        (``{"data": [{"created_at": …, "id": "text-embedding-ada-002-2", "model": "text-embedding-ada-002",
        "object": "deployment", "owner": "organization-owner"}], "object": "list"}``), with the ``status`` and
        ``scale_settings`` later versions add."""
        await self.record(request)
        if (denied := self._auth_error(request)) is not None:
            return denied
        if request.query_params.get("api-version") != DEPLOYMENTS_VERSION:
            return JSONResponse(AZURE_NOT_FOUND, status_code=404)
        data = [{"scale_settings": {"scale_type": "standard"}, "model": model, "owner": "organization-owner",
                 "id": name, "status": "creating" if name in self.pending else "succeeded",
                 "created_at": 1_700_000_000, "updated_at": 1_700_000_000, "object": "deployment"}
                for name, model in self.served.items()]
        return JSONResponse({"data": data, "object": "list"})

    def _auth_error(self, request: Request) -> JSONResponse | None:
        """The key as ``api-key``; on the v1 API also as a bearer token (the docs' own sample there is the plain
        OpenAI client given the key: ``OpenAI(api_key=…, base_url="https://NAME.openai.azure.com/openai/v1/")``)."""
        if self.azure_key is None or request.headers.get("api-key") == self.azure_key:
            return None
        if request.url.path.startswith("/openai/v1/") and (
                request.headers.get("authorization") == f"Bearer {self.azure_key}"):
            return None
        return JSONResponse(AZURE_DENIED, status_code=401)

    async def _deployment(self, request: Request) -> ASGIApp:
        if "api-version" not in request.query_params:
            await self.record(request)
            return JSONResponse(AZURE_NOT_FOUND, status_code=404)
        if request.path_params["deployment"] not in (self.models or []):
            await self.record(request)
            return JSONResponse({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this "
                                           "resource does not exist."}}, status_code=404)
        return await self._completions(request)

    async def _v1(self, request: Request) -> ASGIApp:
        return await self._completions(request)


class GeminiOpenAIServer(OpenAIServer):
    """Gemini's OpenAI-compatible endpoint under ``/v1beta/openai``, its key as ``?key=`` or a bearer token."""

    def __init__(self, models: list[str], *, api_key: str, **kwargs: Any) -> None:
        super().__init__(models=models, **kwargs)
        self.gemini_key = api_key

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1beta/openai/chat/completions", self._completions, methods=["POST"]),
            Route("/v1beta/openai/models", self._models, methods=["GET"]),
        ]

    def _auth_error(self, request: Request) -> JSONResponse | None:
        given = request.query_params.get("key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if given == self.gemini_key:
            return None
        return JSONResponse([{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                        "status": "INVALID_ARGUMENT"}}], status_code=400)
