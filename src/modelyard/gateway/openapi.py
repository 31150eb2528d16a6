"""The gateway's OpenAPI 3.1 document, served at ``/openapi.json``.

The request body schema is generated from the same pydantic model that validates requests
(:class:`~modelyard.gateway.wire.ChatCompletionBody`), so the document cannot drift from what
the gateway accepts; responses are described by hand. Fuzzers (schemathesis) and client
generators read it; it holds no data, so it is served without a key. Built once per app (a few
ms), kept on the app's state like everything else the gateway holds.
"""

from __future__ import annotations

from typing import Any

from modelyard.gateway.embeddings_wire import MAX_INPUTS, EmbeddingsBody
from modelyard.gateway.responses_wire import ResponsesBody
from modelyard.gateway.text_completions_wire import MAX_PROMPTS, CompletionBody, FimBody
from modelyard.gateway.wire import ChatCompletionBody

_REF = "#/components/schemas/{model}"


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json("Error")}


_AUTH_ERRORS = {"401": _error("missing or invalid API key (only when the gateway requires keys)")}
#: no model could answer: the status says whether a retry can help (gateway/exhausted.py); attempts lists them
_EXHAUSTED = {
    "424": _error("no model of the chain can serve (key missing or refused, model not installed); do not retry"),
    "502": _error("the models answered, but nothing usable (malformed, too large); do not retry"),
    "503": _error("something transient stopped every model, or the request bodies being received fill "
                  "gateway.max_bodies_mb; Retry-After says when to retry"),
    "504": _error("the agent's total deadline ran out; do not retry"),
}

_ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]},
        "attempts": {"type": "array", "items": {"type": "object"}}}}},
}
_COMPLETION = {
    "type": "object", "required": ["id", "object", "created", "model", "choices"],
    "properties": {"id": {"type": "string"}, "object": {"const": "chat.completion"}, "created": {"type": "integer"},
                   "model": {"type": "string"}, "choices": {"type": "array", "items": {"type": "object"}},
                   "usage": {"type": "object"}},
}
_TEXT_COMPLETION = {
    "type": "object", "required": ["id", "object", "created", "model", "choices"],
    "properties": {"id": {"type": "string"}, "object": {"const": "text_completion"}, "created": {"type": "integer"},
                   "model": {"type": "string"}, "choices": {"type": "array", "items": {"type": "object"}},
                   "usage": {"type": "object"}},
}
_RESPONSE = {
    "type": "object", "required": ["id", "object", "created_at", "model", "status", "output"],
    "properties": {"id": {"type": "string"}, "object": {"const": "response"}, "created_at": {"type": "integer"},
                   "model": {"type": "string"}, "status": {"enum": ["completed", "incomplete"]},
                   "output": {"type": "array", "items": {"type": "object"}}, "usage": {"type": "object"}},
}
_EMBEDDINGS = {
    "type": "object", "required": ["object", "data", "model", "usage"],
    "properties": {"object": {"const": "list"}, "model": {"type": "string"}, "usage": {"type": "object"},
                   "data": {"type": "array", "items": {"type": "object", "required": ["object", "index", "embedding"],
                                                       "properties": {"object": {"const": "embedding"},
                                                                      "index": {"type": "integer"},
                                                                      "embedding": {"anyOf": [
                                                                          {"type": "array",
                                                                           "items": {"type": "number"}},
                                                                          {"type": "string"}]}}}}},
}
_MODEL = {
    "type": "object", "required": ["id", "object"],
    "properties": {"id": {"type": "string"}, "object": {"const": "model"}, "owned_by": {"type": "string"},
                   "modelyard": {"type": "object"}},
}


def openapi_document() -> dict[str, Any]:
    body = ChatCompletionBody.model_json_schema(ref_template=_REF)
    responses_body = ResponsesBody.model_json_schema(ref_template=_REF)
    completion_body = CompletionBody.model_json_schema(ref_template=_REF)
    fim_body = FimBody.model_json_schema(ref_template=_REF)
    embeddings_body = EmbeddingsBody.model_json_schema(ref_template=_REF)
    schemas = {**body.pop("$defs", {}), **responses_body.pop("$defs", {}), **completion_body.pop("$defs", {}),
               **fim_body.pop("$defs", {}),
               "ChatCompletionBody": body, "ResponsesBody": responses_body, "CompletionBody": completion_body,
               "FimBody": fim_body, "EmbeddingsBody": embeddings_body, "Embeddings": _EMBEDDINGS,
               "Error": _ERROR, "ChatCompletion": _COMPLETION, "Response": _RESPONSE,
               "TextCompletion": _TEXT_COMPLETION,
               "Model": _MODEL,
               "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
                   "object": {"const": "list"},
                   "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}}}
    text = {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}
    any_json = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
    log_params = [{"name": "limit", "in": "query", "required": False,
                   "schema": {"type": "integer", "description": "rows, clamped to 1..500"}}]
    log_params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                   for name in ("agent", "model", "outcome")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelyard gateway", "version": "1",
                 "description": "OpenAI-compatible chat completions, responses, text completions and embeddings "
                                "routed through modelyard agents."},
        "paths": {
            "/v1/chat/completions": {"post": {
                "operationId": "createChatCompletion",
                "requestBody": {"required": True, **_json("ChatCompletionBody")},
                "responses": {
                    "200": {"description": "the answer (JSON, or server-sent events when stream is true)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletion"}},
                                        "text/event-stream": {"schema": {"type": "string"}}}},
                    "400": _error("the body is not valid; param names the field"),
                    "404": _error("no agent or model has that name"),
                    "408": _error("the body came too slowly (a whole body within 300 s, 75 s at most between pieces)"),
                    "413": _error("the body is larger than gateway.max_request_mb"),
                    **_EXHAUSTED,
                    **_AUTH_ERRORS}}},
            "/v1/responses": {"post": {
                "operationId": "createResponse",
                "requestBody": {"required": True, **_json("ResponsesBody")},
                "responses": {
                    "200": {"description": "the response (JSON, or server-sent events when stream is true)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Response"}},
                                        "text/event-stream": {"schema": {"type": "string"}}}},
                    "400": _error("the body is not valid or asks for what the gateway does not do; param names it"),
                    "404": _error("no agent or model has that name"),
                    "408": _error("the body came too slowly (a whole body within 300 s, 75 s at most between pieces)"),
                    "413": _error("the body is larger than gateway.max_request_mb"),
                    **_EXHAUSTED,
                    **_AUTH_ERRORS}}},
            "/v1/completions": {"post": {
                "operationId": "createCompletion",
                "requestBody": {"required": True, **_json("CompletionBody")},
                "responses": {
                    "200": {"description": "the text completion (JSON, or server-sent events when stream is true)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TextCompletion"}},
                                        "text/event-stream": {"schema": {"type": "string"}}}},
                    "400": _error("the body is not valid or asks for what the gateway does not do (token arrays, "
                                  f"more than {MAX_PROMPTS} prompts, n or best_of above 1, logprobs); param names it"),
                    "404": _error("no agent or model has that name"),
                    "408": _error("the body came too slowly (a whole body within 300 s, 75 s at most between pieces)"),
                    "413": _error("the body is larger than gateway.max_request_mb"),
                    **_EXHAUSTED,
                    **_AUTH_ERRORS}}},
            "/v1/fim/completions": {"post": {
                "operationId": "createFimCompletion",
                "requestBody": {"required": True, **_json("FimBody")},
                "responses": {
                    "200": {"description": "the middle, in Mistral's FIM answer: a chat completion (JSON, or "
                                           "server-sent events when stream is true)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletion"}},
                                        "text/event-stream": {"schema": {"type": "string"}}}},
                    "400": _error("the body is not valid; param names the field"),
                    "404": _error("no agent or model has that name"),
                    "408": _error("the body came too slowly (a whole body within 300 s, 75 s at most between pieces)"),
                    "413": _error("the body is larger than gateway.max_request_mb"),
                    **_EXHAUSTED,
                    **_AUTH_ERRORS}}},
            "/v1/embeddings": {"post": {
                "operationId": "createEmbeddings",
                "requestBody": {"required": True, **_json("EmbeddingsBody")},
                "responses": {
                    "200": {"description": "a vector per text, in order", **_json("Embeddings")},
                    "400": _error(f"the body is not valid (an empty input, more than {MAX_INPUTS} texts, token "
                                  "arrays, model 'auto'), or no model of the chain embeds; param names the field"),
                    "404": _error("no agent or model has that name"),
                    "408": _error("the body came too slowly (a whole body within 300 s, 75 s at most between pieces)"),
                    "413": _error("the body is larger than gateway.max_request_mb"),
                    **_EXHAUSTED,
                    **_AUTH_ERRORS}}},
            "/v1/models": {"get": {"operationId": "listModels", "responses": {
                "200": {"description": "agents and models", **_json("ModelList")}, **_AUTH_ERRORS}}},
            "/v1/models/{name}": {"get": {
                "operationId": "getModel",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "one agent or model", **_json("Model")},
                              "404": _error("unknown name"), **_AUTH_ERRORS}}},
            "/healthz": {"get": {"operationId": "health", "responses": {"200": any_json}}},
            "/metrics": {"get": {"operationId": "metrics", "responses": {"200": text, **_AUTH_ERRORS}}},
            "/api/log": {"get": {"operationId": "routingLog", "parameters": log_params, "responses": {
                "200": any_json, "400": _error("a bad query parameter"), **_AUTH_ERRORS}}},
            "/api/summary": {"get": {"operationId": "summary", "responses": {"200": any_json, **_AUTH_ERRORS}}},
        },
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
