"""The shape of a modelyard config file, validated by pydantic.

Every model forbids unknown keys so a typo (``fallback:`` for ``fallbacks:``) is an error
that names the line, not a silently ignored setting.
"""

from __future__ import annotations

import difflib
import os
import re
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from modelyard import registry
from modelyard.config import dburl, redis_url
from modelyard.config.billed import KEY_SERVICES, billed_endpoint
from modelyard.config.bind import NotABindAddress, bind_host
from modelyard.config.hints import azure_endpoint

Capability = Literal["tools", "thinking", "json", "vision"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(Strict):
    """Seconds. Each bound moves the request on to the next model when it is exceeded."""

    queue: float = Field(30.0, gt=0, description="longest wait for a free slot on a model")
    connect: float = Field(5.0, gt=0, description="TCP/TLS connect")
    first_token: float = Field(30.0, gt=0, description="from sending the request to the first chunk")
    idle: float = Field(15.0, gt=0, description="longest silence between two chunks")
    total: float = Field(300.0, gt=0, description="whole request, every attempt included")


class TimeoutOverrides(Strict):
    queue: float | None = Field(None, gt=0)
    connect: float | None = Field(None, gt=0)
    first_token: float | None = Field(None, gt=0)
    idle: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)


class Retries(Strict):
    """Bounded retry on the same model before falling back (only for transient failures)."""

    attempts: int = Field(1, ge=0, le=5, description="extra tries after the first")
    backoff: float = Field(0.25, ge=0, description="first backoff in seconds, doubled each time")
    max_wait: float = Field(2.0, ge=0, description="a retry-after longer than this falls back at once")


class Cooldown(Strict):
    """Circuit breaker per model: skip a model that keeps failing, probe it again later."""

    failures: int = Field(2, ge=1, description="consecutive failures that open the breaker")
    seconds: float = Field(30.0, gt=0, description="first cooldown")
    max_seconds: float = Field(300.0, gt=0, description="cooldown doubles up to this while probes fail")
    max_retry_after: float = Field(
        3600.0, gt=0, description="a 429/529 retry-after is honoured as the cooldown, up to this many seconds")


#: what a prompt-cache read and a cache write cost per input token when no price is configured for them: Anthropic's
#: (a read 0.1x, a five-minute write 1.25x the model's input price)
CACHE_READ_SHARE = 0.1
CACHE_WRITE_SHARE = 1.25
#: a one-hour cache write's price as a share of the input price (Anthropic's prompt-caching pricing: a one-hour write
#: 2x the base input price, a five-minute one 1.25x, a read 0.1x whatever the TTL)
CACHE_WRITE_1H_SHARE = 2.0
#: a cache read's default elsewhere (OpenAI's ``cached_tokens``): its discount is not one number — 0.5x, 0.25x or 0.1x
#: of the input price by model (OpenAI's pricing page), others' their own — so, unset, a cached token is priced as any
#: input token: the spend an upper bound (a spend cap never undercounts), exact once ``price.cache_read`` is set
CACHE_READ_SHARE_UNKNOWN = 1.0


class Price(Strict):
    """USD per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    cache_read: float | None = Field(None, ge=0, description="per million prompt tokens read from the provider's "
                                     "prompt cache; unset: 0.1 x input for anthropic (its published rate), the input "
                                     "price for other providers (OpenAI's discount differs by model)")
    cache_write: float | None = Field(None, ge=0, description="per million prompt tokens written to the prompt cache; "
                                      "unset: 1.25 x input (Anthropic's five-minute cache)")
    cache_write_1h: float | None = Field(None, ge=0, description="per million prompt tokens written to a one-hour "
                                         "prompt cache; unset: 2 x input (Anthropic's published rate)")

    def cost(self, tokens_in: int, tokens_out: int, cache_read: int = 0, cache_write: int = 0, *,
             read_share: float = CACHE_READ_SHARE, cache_write_1h: int = 0) -> float:
        """USD for that many tokens; ``cache_read`` and ``cache_write`` are the part of ``tokens_in`` the provider
        read from or wrote to its prompt cache (counted at the input price, a cached prompt of Claude's was
        billed as if it were 10x cheaper or cost nothing: its cached part was not in ``tokens_in`` at all), and
        ``cache_write_1h`` the part of ``cache_write`` written to a one-hour cache (2x input where 1.25x was counted).
        ``read_share``: a cache read's price as a share of the input price when ``cache_read`` is unset
        (:attr:`ModelConfig.cache_read_share`)."""
        if not cache_read and not cache_write:
            return (tokens_in * self.input + tokens_out * self.output) / 1e6
        read = self.input * read_share if self.cache_read is None else self.cache_read
        write = self.input * CACHE_WRITE_SHARE if self.cache_write is None else self.cache_write
        write_1h = self.input * CACHE_WRITE_1H_SHARE if self.cache_write_1h is None else self.cache_write_1h
        hour = min(max(0, cache_write_1h), cache_write)
        plain = max(0, tokens_in - cache_read - cache_write)
        return (plain * self.input + cache_read * read + (cache_write - hour) * write + hour * write_1h
                + tokens_out * self.output) / 1e6


class ServiceFigures(Strict):
    """How a model is expected to serve, for ``modelyard replay`` when the log has not seen it yet."""

    ttft_ms: float = Field(gt=0, description="time to first token")
    tokens_per_s: float = Field(gt=0, description="generation speed of one request")
    failure_rate: float = Field(0.0, ge=0, le=1, description="share of attempts that fail")


#: model settings read only by a provider that runs the model in this process from a file (llamacpp)
IN_PROCESS_SETTINGS = ("path", "threads", "gpu_layers")


class SpendWindow(StrEnum):
    """A spend cap's window, in UTC calendar terms (a day starts at 00:00 UTC)."""

    DAY = "day"
    MONTH = "month"


class SpendCap(Strict):
    """Stop using a billed model once it has cost ``usd`` in the current ``per`` window."""

    usd: float = Field(gt=0, description="USD the model may cost per window")
    per: SpendWindow = SpendWindow.DAY


#: a variable's name as other tools write a reference to it: ``${NAME}``, ``$NAME``, ``{NAME}``, ``%NAME%``, LiteLLM's
#: ``os.environ/NAME``, ``env:NAME``
ENV_REFERENCE = re.compile(r"\$\{(\w+)\}|\$(\w+)|\{(\w+)\}|%(\w+)%|os\.environ/(\w+)|env:(\w+)")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name(value: str, key: str) -> str:
    """The environment variable's name a ``*_env`` setting gives: ``${NAME}`` and the other spellings of a reference
    are read as NAME; anything else that is no variable name is refused without echoing it (it is often the key
    itself, pasted where its variable's name goes)."""
    text = value.strip()
    if _ENV_NAME_RE.fullmatch(text):
        return text
    if (ref := ENV_REFERENCE.fullmatch(text)) and _ENV_NAME_RE.fullmatch(name := next(g for g in ref.groups() if g)):
        return name
    raise PydanticCustomError(
        "env_name", "'{key}' takes the NAME of an environment variable (e.g. {key}: MY_API_KEY, then "
        "`export MY_API_KEY=…`), and this value is no variable name (not shown: if it is the secret itself, take it "
        "out of the file)", {"key": key})


_HOST_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_HOST_NAME_RE = re.compile(rf"(\*\.)?{_HOST_LABEL}(\.{_HOST_LABEL})*")


def host_name(value: str) -> str:
    """One entry of ``gateway.allowed_hosts``: a name as a ``Host`` header carries it (any port), or ``*.`` and the
    domain whose every subdomain is allowed — lower-cased. A URL, a port, ``*`` or ``*.com`` is refused saying what to
    write: the list opens a keyless gateway to the names in it, so it never turns the DNS-rebinding check off for
    all."""
    text = value.strip().lower().rstrip(".")
    wide = text in ("*", "*.*") or (text.startswith("*.") and "." not in text[2:])  # "*.com": every .com name
    if _HOST_NAME_RE.fullmatch(text) and not wide:
        return text
    if wide:
        raise PydanticCustomError(
            "host_name", "'{value}' would let any name call a gateway that asks for no key (DNS rebinding: a web "
            "page's own name pointed at this machine); list the names a proxy passes on (gw.example.com, "
            "*.example.com), or give the gateway keys (gateway.api_keys_env), which lets every name call",
            {"value": value})
    try:
        name = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    except ValueError:  # "gw.example.com:port" and the like
        name = ""
    if _HOST_NAME_RE.fullmatch(name):
        raise PydanticCustomError("host_name", "'{value}' is not a bare name: write '{name}' (the name only, without "
                                  "a scheme, port or path: every port of it is allowed)",
                                  {"value": value, "name": name})
    raise PydanticCustomError("host_name", "'{value}' is no host name: write a name as a proxy passes it on "
                              "(gw.example.com), or '*.' and a domain for all its subdomains (*.ts.net)",
                              {"value": value})


def clean_secret(value: str | None) -> str | None:
    """A key or token as read from the environment, without what copying it often adds: surrounding whitespace
    (a newline from `$(cat file)`), one pair of quotes (an env file read by Docker keeps them) and a ``Bearer ``
    prefix (the header is built here); None when nothing is left."""
    text = (value or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    return text or None


#: by provider, what an endpoint may end with that is the provider's request path (or its root), not the server's
#: address; longest first. Ollama's native API has no /v1 (its OpenAI-compatible one does); OpenAI-compatible
#: servers are reached with or without /v1 (providers/openai.py), Anthropic's API at the root
_REQUEST_PATHS = {
    "ollama": ("/api/chat", "/api/generate", "/api", "/v1/chat/completions", "/v1"),
    "openai": ("/chat/completions",),
    "anthropic": ("/v1/messages", "/v1"),
}


def server_address(provider: str, endpoint: str) -> str:
    """``endpoint`` without what ``provider``'s own request path ends it with (``/api/chat``, ``/v1``…): the
    server's address, to which the provider adds its paths. A query stays (Azure's ?api-version=, whose portal shows
    the deployment's "Target URI" with /chat/completions in it). Read so in a config and in ``init --endpoint``."""
    base, mark, query = endpoint.partition("?")
    base = base.rstrip("/")
    for tail in _REQUEST_PATHS.get(provider, ()):
        if base.endswith(tail):
            return base.removesuffix(tail) + mark + query
    return endpoint


#: LiteLLM's provider prefixes of a model id (``ollama/llama3``), by the provider here that has none: Ollama's names
#: have at most a user's namespace (``huihui_ai/qwen3``); one named `ollama` or `ollama_chat` would be refused too (none
#: was found: LiteLLM's is the name these are seen under)
_LITELLM_PREFIXES = {"ollama": ("ollama/", "ollama_chat/")}


#: servers and services newcomers name as the provider, by the provider that speaks to them
_SERVED_BY = {
    "openai": ("openai_compatible", "openai-compatible", "openaicompatible", "vllm", "lmstudio", "lm-studio",
               "lm_studio", "llama-server", "llama_server", "llama.cpp-server", "llamacpp-server", "sglang", "mlx",
               "mlx-lm", "litellm", "openrouter", "groq", "together", "deepseek", "mistral", "localai", "tgi",
               "koboldcpp", "jan", "gpt", "azure"),
    "anthropic": ("claude",),
    "llamacpp": ("llama.cpp", "llama_cpp", "llama-cpp", "llama-cpp-python", "gguf"),
}


def _provider_hint(name: str) -> str:
    """What to write instead of an unknown provider: the one that speaks to the named server, else the nearest."""
    key = name.strip().lower()
    for provider, served in _SERVED_BY.items():
        if key in served and registry.is_known(provider):
            where = {"openai": "provider: openai with the server's endpoint: (its OpenAI-compatible API)",
                     "anthropic": "provider: anthropic",
                     "llamacpp": "provider: llamacpp runs a GGUF file in this process (path:); a llama-server is "
                                 "provider: openai with its endpoint:"}[provider]
            return f"; for '{name}': {where}"
    close = difflib.get_close_matches(key, registry.provider_names(), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


#: a number of seconds, and a duration as Go's time.ParseDuration (Ollama's keep_alive) reads it
_SECONDS = re.compile(r"-?\d+(\.\d+)?")
_GO_DURATION = re.compile(r"-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")


class ModelConfig(Strict):
    provider: str = Field(description="a registered backend: built-in (ollama, openai, anthropic, llamacpp) or plugin")
    model: str = Field("", description="the provider's model id; defaults to the config name")
    endpoint: str | None = None
    path: str | None = Field(None, description="llamacpp: GGUF file (~ is the home directory; a relative path is "
                             "read from the config file's directory); empty = the embedded default model")
    #: where ``path`` is written and how ("config.yaml:7: models.local.path ('models/m.gguf', read from the config
    #: file's directory)"), set by ``load_config``: a GGUF that is not there is said at that line, as a config error is
    _path_written: str = PrivateAttr("")
    _path_was_relative: bool = PrivateAttr(False)
    threads: int | None = Field(None, ge=1, le=512, description="llamacpp: CPU threads that generate tokens; "
                                "empty = every core but one (providers/llama_threads.py)")
    gpu_layers: int = Field(-1, ge=-1, description="llamacpp: layers offloaded to the GPU on a Metal/CUDA/Vulkan "
                            "build (-1 = all, as Ollama does; 0 = CPU only; lower it when the model does not "
                            "fit in GPU memory); a CPU-only build ignores it")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    max_concurrent: int = Field(1, ge=1, le=1024)
    max_queue: int | None = Field(None, ge=0, le=100_000, description=(
        "requests that may wait for a busy model's slots; one more moves on to the next model at once "
        "(queue_full) instead of waiting up to timeouts.queue; 0 = never wait; empty = no count bound"))
    memory_gb: float | None = Field(None, ge=0)
    context: int | None = Field(None, ge=128, description="context window in tokens")
    max_output: int | None = Field(None, ge=1, description="the most output tokens the model may be asked for: "
                                   "a larger max_tokens is clamped to it (the route says so); empty = the "
                                   "provider's known limit, else learned from the backend's refusal")
    price: Price = Price()
    spend_cap: SpendCap | None = Field(None, description="skip the model (reason spend_cap) once its logged cost in "
                                       "the current UTC day or month reaches usd; needs a price")
    capabilities: list[Capability] = Field(default_factory=list)
    keep_alive: str | None = Field(None, description='Ollama keep_alive, e.g. "30m"')
    embedding_space: str | None = Field(
        None, min_length=1, description="embeddings: models with the same space give interchangeable vectors (the "
        "same weights on two servers under two names); a chain falls back only within one. Empty = the model id")
    template: str | None = Field(
        None, min_length=1, description="the chat template family the model's server formats prompts in (chatml, "
        "llama3, mistral, gemma…): a raw prompt — written by the client in one model's template and special tokens "
        "(Ollama's raw: true) — falls back only to a model of the chain with the same template, or the same model id. "
        "Empty = not known: such a prompt is not given to it in another model's place")
    max_embed_batch: int | None = Field(
        None, ge=1, le=100_000, description="embeddings: the most texts one call to the model's server may carry; a "
        "request with more is sent in calls of this many — at once on the model's free slots (max_concurrent), the "
        "rest in turn — and answered as one. Empty = the "
        "provider's documented limit (OpenAI-compatible: 2,048 texts and 300,000 tokens a call; Ollama: none); "
        "fewer where the server said so, refusing more")
    timeouts: TimeoutOverrides = TimeoutOverrides()
    tool_text_fallback: bool = Field(
        False, description="turn tool calls written as plain text into real calls (issue #3)"
    )
    replay: ServiceFigures | None = Field(None, description="expected service figures for `replay` (no log yet)")
    max_response_mb: float = Field(
        8.0, gt=0, description="an answer (text + thinking), or one line of the upstream's stream, larger than "
                               "this fails as response_too_large and the chain moves on")

    @field_validator("model")
    @classmethod
    def _model_names_no_variable(cls, v: str) -> str:
        # `model: ${OLLAMA_MODEL}` (a compose file's habit) loaded and asked the server for a model named
        # '${OLLAMA_MODEL}': every request failed as model_not_found
        if ENV_REFERENCE.search(v) and ("$" in v or "%" in v or "os.environ/" in v or "env:" in v):
            raise PydanticCustomError("model_variable", "the config does not expand environment variables: write the "
                                      "provider's model id itself, e.g. qwen2.5:7b")
        return v

    @field_validator("model")
    @classmethod
    def _model_without_litellms_prefix(cls, v: str, info: ValidationInfo) -> str:
        # `model: ollama/llama3:8b`, as LiteLLM names an Ollama model (its provider before the slash), was asked of
        # Ollama as is: "model 'ollama/llama3:8b' not found" on every request (vitalops/datatune#108,
        # BerriAI/litellm#17842); here the provider is its own key
        prefix = next((p for p in _LITELLM_PREFIXES.get(info.data.get("provider", ""), ()) if v.startswith(p)), None)
        if prefix:
            raise PydanticCustomError("model_prefix", "'{prefix}…' is how LiteLLM names the provider in the model; "
                                      "here the provider is its own key: write model: {model}",
                                      {"prefix": prefix, "model": v.removeprefix(prefix)})
        return v

    @field_validator("path")
    @classmethod
    def _path_names_no_variable(cls, v: str | None) -> str | None:
        # `$HOME/models/m.gguf` was looked for under a directory named '$HOME'
        return path_without_variable(v)

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive_is_a_duration(cls, v: Any) -> Any:
        # Ollama's docs give `keep_alive: -1` (forever) and numbers of seconds: the number was refused here ('expected
        # text here'), and written "-1" it loaded and every request failed on Ollama's 'time: missing unit in duration'
        if v is None or isinstance(v, bool):
            return v
        text = str(v).strip()
        if _SECONDS.fullmatch(text):
            return f"{text}s"
        if not _GO_DURATION.fullmatch(text):
            raise PydanticCustomError("keep_alive", "expected a duration such as 30m, 1h or 90s, a number of seconds, "
                                      "or -1 to keep the model loaded for good")
        return text

    @field_validator("spend_cap")
    @classmethod
    def _cap_needs_a_price(cls, v: SpendCap | None, info: ValidationInfo) -> SpendCap | None:
        price = info.data.get("price")
        if v is not None and isinstance(price, Price) and price.input == 0 and price.output == 0:
            raise PydanticCustomError("spend_cap_without_price", "spend_cap needs a price: this model costs "
                                      "nothing per token as configured, so its cap would never be reached "
                                      "(set price: {input: …, output: …} in USD per million tokens)")
        return v

    @property
    def response_limit(self) -> int:
        """:attr:`max_response_mb` in bytes."""
        return int(self.max_response_mb * 2**20)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_has_a_scheme(cls, v: str | None) -> str | None:
        # `localhost:11434` loaded, showed as available in `models` and failed every request as connect_error
        # ('NonHttpUrlClientError'); the value is not echoed (a URL may carry a password)
        if v is not None and ("$" in v or "{" in v or "os.environ/" in v):
            # `http://${OLLAMA_HOST}:11434` loaded and went to a host named '${OLLAMA_HOST}'
            raise PydanticCustomError("endpoint_variable", "the config does not expand environment variables: "
                                      "write the address itself, e.g. http://127.0.0.1:11434")
        if v is not None and "://" not in v:
            raise PydanticCustomError("endpoint_scheme", "expected a URL with its scheme, e.g. "
                                      "http://127.0.0.1:11434 (http:// or https:// in front of host:port)")
        return v

    @model_validator(mode="after")
    def _endpoint_is_the_server(self) -> ModelConfig:
        # `http://127.0.0.1:11434/api` (as Ollama's docs write its API's paths) asked `/api/api/chat`, and
        # `…/v1/chat/completions` (a curl example's URL) `/v1/chat/completions/v1/chat/completions`: every request
        # failed (a 404); the paths are the provider's to add, so what the request path ends the endpoint with goes
        if self.endpoint:
            object.__setattr__(self, "endpoint", server_address(self.provider, self.endpoint))
        return self

    @model_validator(mode="after")
    def _azure_endpoint_answers(self) -> ModelConfig:
        # an Azure OpenAI endpoint written as the portal shows the resource, or a deployment URL without its
        # api-version: every request a 404 (config/hints.py, azure_endpoint)
        if self.provider == "openai" and self.endpoint and (fix := azure_endpoint(self.endpoint)):
            raise PydanticCustomError("azure_endpoint", "{fix}", {"fix": fix})
        return self

    @model_validator(mode="after")
    def _a_paid_apis_key_names_its_endpoint(self) -> ModelConfig:
        # `provider: openai, model: gpt-4o, api_key_env: OPENAI_API_KEY` (the OpenAI SDK's, LiteLLM's and aider's
        # way: no base URL means OpenAI's) loaded as a local model, free, and sent that key to whatever listens on
        # this machine's 127.0.0.1:8080 — the endpoint an OpenAI-compatible model without one is asked at
        if self.provider == "openai" and self.endpoint is None and self.api_key_env in KEY_SERVICES:
            service, url = KEY_SERVICES[self.api_key_env]
            raise PydanticCustomError(
                "endpoint_for_key", "no endpoint: provider: openai without one asks a server on this machine "
                "(http://127.0.0.1:8080, llama-server's address), and {variable} is {service}'s key — to reach "
                "{service}, write endpoint: {url}", {"variable": self.api_key_env, "service": service, "url": url})
        return self

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, v: str) -> str:
        if not registry.is_known(v):
            broken = "".join(f"; plugin '{n}' failed to load: {why}" for n, why in registry.broken_plugins().items())
            raise PydanticCustomError(
                "unknown_provider", "unknown provider '{name}' (known providers: {known}{broken}){hint}",
                {"name": v, "known": ", ".join(registry.provider_names()), "broken": broken,
                 "hint": _provider_hint(v)})
        return v

    @property
    def billed(self) -> bool:
        """Billed per token whatever its price says: a hosted backend (Anthropic), or a local-server protocol pointed
        at a paid API's host (OpenRouter, Groq… through ``provider: openai``: config/billed.py)."""
        return registry.is_hosted(self.provider) or billed_endpoint(self.endpoint)

    @property
    def cache_read_share(self) -> float:
        """A prompt-cache read's price as a share of the input price when ``price.cache_read`` is unset: Anthropic's
        published 0.1x for its own API, the whole input price elsewhere (:data:`CACHE_READ_SHARE_UNKNOWN`)."""
        return CACHE_READ_SHARE if self.provider == "anthropic" else CACHE_READ_SHARE_UNKNOWN

    @property
    def path_written(self) -> str:
        """Where ``path`` is written in the config file and as what ("" for a config not read from a file)."""
        return self._path_written

    @property
    def path_was_relative(self) -> bool:
        """Whether ``path`` was written relative (and read from the config file's directory)."""
        return self._path_was_relative

    def written_at(self, where: str, *, relative: bool = False) -> ModelConfig:
        """This model, its ``path`` said to be written at ``where`` (:attr:`path_written`), relative or not."""
        copy = self.model_copy()
        copy._path_written = where
        copy._path_was_relative = relative
        return copy

    @property
    def is_local(self) -> bool:
        """Local models cost nothing per token; cloud ones are billed (hosted backends and paid APIs always are)."""
        return not self.billed and self.price.input == 0 and self.price.output == 0

    @property
    def price_unknown(self) -> bool:
        """A billed model with no price: its attempts are logged at $0, which is not what they cost."""
        return self.billed and self.price.input == 0 and self.price.output == 0

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env_is_a_name(cls, v: str | None) -> str | None:
        return None if v is None else env_name(v, "api_key_env")

    def api_key(self) -> str | None:
        """The key from the environment, cleaned (:func:`clean_secret`); None when unset or empty."""
        return clean_secret(os.environ.get(self.api_key_env)) if self.api_key_env else None


#: header names whose value is a credential: never written in the config, named by `headers_env`
_SECRET_HEADER = ("authorization", "cookie", "key", "token", "secret", "password", "auth")
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class McpServer(Strict):
    """An MCP server whose tools the agent may call: started over stdio (``command``), or reached at
    ``url`` over streamable HTTP (the current transport) or legacy SSE."""

    command: str | None = Field(None, description="executable of a stdio server")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="extra environment (values, not secrets)")
    url: str | None = Field(None, description="http(s) URL of a remote server (streamable HTTP or SSE)")
    transport: Literal["auto", "streamable-http", "sse"] = Field(
        "auto", description="for a url: streamable-http (MCP since 2025-03-26), the legacy sse, or auto: "
                            "streamable HTTP, and SSE when the URL refuses it with 400/404/405 (the spec's rule)")
    headers: dict[str, str] = Field(default_factory=dict, description="plain HTTP headers (no credentials)")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> environment variable holding its value "
                                          "(e.g. Authorization: MY_SERVER_AUTH holding 'Bearer …')")
    bearer_token_env: str | None = Field(
        None, pattern=_ENV_NAME, description="environment variable holding a token sent as "
                                             "'Authorization: Bearer <token>'")
    start_timeout: float = Field(30.0, gt=0, le=600, description="seconds to start and list its tools "
                                 "(an `npx`/`uvx` server's first run downloads packages)")
    call_timeout: float | None = Field(None, gt=0, le=3600, description="seconds one tool call may take "
                                       "(default: tools.command_timeout, at least 10 s)")
    restarts: int = Field(1, ge=0, le=3, description="times a server that died (or whose HTTP connection "
                          "dropped) is started again within one request, with a back-off")
    required: bool = Field(True, description="false: a server that cannot start is left out with a warning and "
                           "the agent runs without its tools, rather than failing")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError("mcp_url", "expected an http:// or https:// URL of the MCP endpoint "
                                      "(e.g. http://127.0.0.1:8000/mcp)")
        if parts.username or parts.password:
            raise PydanticCustomError("mcp_url", "credentials are never written in the config: remove them "
                                      "from the URL and name an environment variable with 'bearer_token_env:' "
                                      "or 'headers_env:'")
        return v

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if any(word in name.lower() for word in _SECRET_HEADER):
                raise PydanticCustomError(
                    "mcp_header", "credentials are never written in the config: header '{name}' belongs in "
                    "'headers_env:' (header name -> environment variable) or 'bearer_token_env:'", {"name": name})
        return v

    @field_validator("headers_env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name, env in v.items():
            if not re.match(_ENV_NAME, env):
                raise PydanticCustomError(
                    "mcp_header_env", "headers_env maps a header to the NAME of an environment variable; "
                    "'{name}' is given something that is no variable name (the value itself?)", {"name": name})
        return v

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs either 'command:' (a stdio server) or 'url:' (a remote one), "
                             "not both")
        if self.url is None and (self.headers or self.headers_env or self.bearer_token_env):
            raise ValueError("headers, headers_env and bearer_token_env are for a server reached by 'url:'")
        if self.command is None and (self.args or self.env):
            raise ValueError("args and env are for a server started by 'command:'")
        return self

    @property
    def label(self) -> str:
        """How logs and messages name it: the command, or the URL without its query (it may hold a key)."""
        if self.command is not None:
            return self.command
        parts = urlsplit(self.url or "")
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class ToolsConfig(Strict):
    """Built-in tools are off unless enabled here; every path stays inside ``workspace``."""

    workspace: str | None = Field(None, description="directory the file tools and commands are confined to")
    files: Literal["off", "read", "write"] = "off"
    commands: list[str] = Field(default_factory=list, description="allowlisted executables (no shell)")
    command_timeout: float = Field(10.0, gt=0)
    output_limit: int = Field(16_000, ge=256, description="bytes of tool output returned to the model")
    fetch: bool = Field(False, description="allow fetching URLs")
    mcp: list[McpServer] = Field(default_factory=list)
    max_steps: int = Field(6, ge=1, le=50, description="model/tool round-trips before giving up")


class AgentConfig(Strict):
    description: str = ""
    primary: str | None = None
    fallbacks: list[str] = Field(default_factory=list)
    thinking: bool | None = Field(None, description="on/off; unset = the model's own default, no switch sent")
    thinking_budget: int | None = Field(None, ge=1)
    consumers: list[str] = Field(
        default_factory=lambda: ["user"], description='who reads the output: "user" or agent names'
    )
    max_tokens: int | None = Field(None, ge=1)
    system: str | None = Field(None, description="system prompt; default built from the description")
    timeouts: TimeoutOverrides = TimeoutOverrides()
    examples: list[str] = Field(default_factory=list, description="example tasks, for routing")
    role: Literal["chat", "engineer", "research", "writer", "utility", "none"] | None = Field(
        None, description="built-in routing role (policy + examples); default: the agent's name if it is a role"
    )
    tools: ToolsConfig = ToolsConfig()

    @property
    def chain(self) -> list[str]:
        return ([self.primary] if self.primary else []) + list(self.fallbacks)

    def system_prompt(self, name: str) -> str:
        """``system``, else one built from the description ("" when there is neither)."""
        return self.system or (f"You are the {name} agent. {self.description}".strip() if self.description else "")


def path_without_variable(v: str | None) -> str | None:
    """A file path as written: the config expands no variables, so `$HOME/…` or `%APPDATA%\\…` would name a
    directory called '$HOME' beside the config — refused, naming ~/ instead."""
    if v is not None and ("$" in v or "%" in v):
        raise PydanticCustomError("path_variable", "the config does not expand environment variables: write the "
                                  "path itself (~/ for the home directory)")
    return v


class LogConfig(Strict):
    path: str | None = Field(None, description="SQLite file (a relative path is read from the config file's "
                             "directory); default: the user data directory")
    url: str | None = Field(
        None, repr=False,
        description="PostgreSQL URL (postgresql://user@host:5432/db) for one log shared by several hosts; "
                    "the password from PGPASSWORD or ~/.pgpass rather than the URL")
    store_text: bool = Field(True, description="keep prompt and answer text in the log")
    max_text_chars: int | None = Field(
        16_000, ge=100, description="characters of each text (the prompt's last user message, the answer, its "
        "thinking) the log keeps; past it the rest is cut and the row says how much (token counts stay whole). "
        "none: keep it all")
    max_queue: int = Field(50_000, ge=100, description="finished requests waiting for the SQLite commit; past "
                           "this (a stalled disk) a request is dropped and counted rather than held in memory")
    keep_days: float | None = Field(
        None, ge=32, description="delete requests older than this many days (with their attempts and routing "
        "decisions) from the local SQLite file and from PostgreSQL (log.url), hourly, in a long-running process; "
        "none: keep everything. At least 32: month spend caps and the dashboard's month read that far back")
    read_ceiling: float | None = Field(
        None, ge=1, description="seconds in all a read of the PostgreSQL log (log, stats, report, models, the "
        "dashboard, replay) may take while the server says it is still running it; past 60 s without an answer the "
        "server is asked, and a read it no longer runs (or a server that cannot be reached) is cut then. "
        "none: 600")
    probe_url: str | None = Field(
        None, repr=False,
        description="PostgreSQL URL straight to the server of log.url, bypassing a pooler (PgBouncer), over which a "
        "read with no answer after 60 s asks whether the server still runs it; none: log.url, through the pooler "
        "(which then needs a free server connection besides the reader's). A URL to another server finds nothing "
        "there: reads are cut at 60 s")

    @field_validator("path")
    @classmethod
    def _path_names_no_variable(cls, v: str | None) -> str | None:
        # `log.path: $HOME/x.sqlite3` made a new log in a directory named '$HOME' beside the config
        return path_without_variable(v)

    @field_validator("url", "probe_url")
    @classmethod
    def _postgres_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return dburl.check(v)
        except ValueError as exc:  # the message never repeats the URL: it may hold a password
            raise PydanticCustomError("log_url", str(exc)) from None


class OrchestrationConfig(Strict):
    """Which agent routes, to whom, and how deep hand-offs may go. Delegation targets are the
    orchestrator's ``consumers``; a specialist hands off to its own ``consumers``."""

    agent: str | None = Field(None, description="the orchestrator agent")
    threshold: float = Field(0.35, ge=0, le=1, description="below this fast-path confidence, ask the model")
    default: str | None = Field(None, description="agent for turns the orchestrator cannot route at all; a failed "
                                "model call keeps the fast path's choice instead")
    max_depth: int = Field(4, ge=1, le=16)


class TelegramFormat(StrEnum):
    """How answers are shown in Telegram."""

    MARKDOWN = "markdown"  # the model's Markdown as Telegram formatting: bold, code blocks, links, lists
    PLAIN = "plain"  # the model's text exactly as it came, asterisks and fences included


#: what to write instead of a person's @name in ``telegram.allowed_users`` (said by the schema, and by the YAML reader
#: for an unquoted ``[@name]``, which YAML refuses before the schema sees it)
TELEGRAM_IDS_NOT_NAMES = ("Telegram user ids are numbers, not @names: start the bot with allowed_users: [], send it a "
                          "message, and its log line 'ignored message from user N' gives your id")


class TelegramConfig(Strict):
    token_env: str = "TELEGRAM_BOT_TOKEN"
    base_url: str = "https://api.telegram.org/bot"
    allowed_users: list[int] = Field(default_factory=list, description="Telegram user ids; empty = nobody")
    agent: str | None = Field(None, description="agent that receives messages (default: the orchestrator picks)")
    history_tokens: int = Field(2000, ge=100)
    edit_interval: float = Field(1.0, ge=0.05, description="seconds between streamed message edits")
    format: TelegramFormat = Field(TelegramFormat.MARKDOWN, description="markdown: the answer's Markdown shown "
                                   "as Telegram formatting; plain: the text as the model wrote it")

    @field_validator("token_env")
    @classmethod
    def _token_env_is_a_name(cls, v: str) -> str:
        return env_name(v, "token_env")

    @field_validator("allowed_users", mode="before")
    @classmethod
    def _ids_not_names(cls, v: Any) -> Any:
        # '@myname' (what Telegram shows a person) read 'expected a whole number here'; the id is a number
        if isinstance(v, str | int) and not isinstance(v, bool):  # `allowed_users: 12345`, `'@me'`: 'expected a list'
            ids = re.split(r"[\s,]+", str(v).strip())
            if all(i.isdigit() for i in ids):
                raise PydanticCustomError("telegram_user_ids", "a list of user ids: write allowed_users: [{ids}]",
                                          {"ids": ", ".join(ids)})
            v = [v]
        if isinstance(v, list) and any(isinstance(u, str) and not u.strip().isdigit() for u in v):
            raise PydanticCustomError("telegram_user_id", TELEGRAM_IDS_NOT_NAMES)
        return v


class GatewayConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    api_keys_env: str | None = Field(None, description="env var with comma-separated bearer keys")
    keep_alive_interval: float | None = Field(None, gt=0, description="re-warm local models every N seconds")
    max_request_mb: float = Field(32.0, gt=0, description="larger request bodies get 413 before they are read")
    max_bodies_mb: float = Field(256.0, gt=0, description="request bodies being received at once, all clients "
                                 "together: a body past it gets 503 with Retry-After (413 if it alone is larger)")
    max_answers_mb: float = Field(256.0, gt=0, description="answers buffered ahead of slow clients, all connections "
                                  "together (up to 4 MiB each): past it a slow client's answer waits on it, its "
                                  "model slot held")

    allowed_hosts: list[str] = Field(default_factory=list, description="public names a keyless gateway answers "
                                     "besides this machine's: a reverse proxy's or a tunnel's (gw.example.com, "
                                     "*.example.com)")

    @field_validator("api_keys_env")
    @classmethod
    def _api_keys_env_is_a_name(cls, v: str | None) -> str | None:
        return None if v is None else env_name(v, "api_keys_env")

    @field_validator("host")
    @classmethod
    def _host_is_an_address(cls, v: str) -> str:
        try:
            return bind_host(v)
        except NotABindAddress as exc:  # `host: http://127.0.0.1` was refused as beyond loopback, asking for keys
            raise PydanticCustomError("bind_host", "{said}", {"said": str(exc)}) from None

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts_are_names(cls, v: list[str]) -> list[str]:
        return [host_name(h) for h in v]


class ReportConfig(Strict):
    """What the cost report compares against and adds."""

    counterfactual: dict[str, Price] = Field(
        default_factory=lambda: {"claude-sonnet-4.5": Price(input=3.0, output=15.0),
                                 "gpt-4.1": Price(input=2.0, output=8.0)},
        description="all-cloud alternatives, USD per million tokens",
    )
    electricity_usd_per_month: float = Field(0.0, ge=0)
    hardware_usd_per_month: float = Field(0.0, ge=0)


class OnOutage(StrEnum):
    """What a process does with a model's slots while the shared state cannot be reached."""

    #: keep serving with floor(max_concurrent / instances last seen): the sum never exceeds the limit
    SHARE = "share"
    #: no slots at all: the request moves to its next model (reason ``state_unreachable``)
    FAIL = "fail"


STATE_SCHEMES = ("redis", "rediss", "unix")

#: the validation context key with which a StateConfig is built below the lease rule on purpose — tests and benchmarks
#: that want a crashed holder's slots back within a second (``StateConfig.model_validate(data, context={KEY: True})``);
#: never a config file, ``MODELYARD_STATE`` or the defaults
BELOW_LEASE_RULE = "below_lease_rule"


class StateConfig(Strict):
    """Where per-model slots and breakers live when several processes or hosts share them (Redis)."""

    url: str = Field(description="redis://[:PASSWORD@]HOST:PORT/DB, rediss:// (TLS) or unix:///path.sock")
    prefix: str = Field("modelyard", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$",
                        description="key namespace: processes that share limits use the same prefix")
    lease: float = Field(10.0, ge=0.3, le=600, description="a crashed process's slots come back within this (s)")
    timeout: float = Field(0.5, gt=0, le=10, description="bound on every Redis call (s)")
    refresh: float = Field(0.5, ge=0.05, le=60, description="how often the cached view (models, metrics) is read")
    on_outage: OnOutage = Field(OnOutage.SHARE, description="share: a conservative local share; fail: no slots")

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, v: Any) -> Any:
        return {"url": v} if isinstance(v, str) else v  # ``state: redis://…`` is the short form

    @model_validator(mode="after")
    def _lease_rule(self, info: ValidationInfo) -> StateConfig:
        """``lease >= 9 x (refresh + timeout)`` whichever way the settings were built — a file, ``MODELYARD_STATE`` over
        the file's or the default settings, code — not only a file (the loader checked it alone: a StateConfig built
        in code ran past max_concurrent with a process cut off, see :attr:`shortest_lease`). Raised as a
        ValidationError of its own so that it is located at ``lease`` (a file's line says ``state.lease``)."""
        if (problem := self.lease_problem()) and not (info.context or {}).get(BELOW_LEASE_RULE):
            raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                type=PydanticCustomError("state_lease", "{problem}", {"problem": problem}), loc=("lease",),
                input=self.lease)])
        return self

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        if (problem := redis_url.problem(v)) is not None:  # before any message quotes the URL: it may not hide it
            raise PydanticCustomError("state_url", "{problem}", {"problem": problem})
        parts = urlsplit(v)
        if "sentinel" in parts.scheme.lower():  # redis+sentinel://, sentinel:// (other clients' forms)
            raise PydanticCustomError(
                "state_url", "Sentinel URLs are not supported ('{got}'): point state at the Redis primary, "
                "redis://HOST:6379/0 (redis-cli -p 26379 SENTINEL get-master-addr-by-name NAME says which), or at a "
                "name your failover moves", {"got": redact_url(v)})
        if parts.scheme not in STATE_SCHEMES or not (parts.hostname or parts.path):
            raise PydanticCustomError(
                "state_url", "expected a Redis URL like redis://127.0.0.1:6379/0 (schemes: {schemes}), got '{got}'",
                {"schemes": ", ".join(STATE_SCHEMES), "got": redact_url(v)})
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise PydanticCustomError("state_url", "the port in '{got}' is not a number",
                                      {"got": redact_url(v)}) from None
        if parts.scheme != "unix":
            # redis-py reads both as the default: 'redis:/10.0.0.5:6379/0' went to localhost:6379, '…/seven' to
            # database 0 — each host silently on another namespace than the team's
            if not parts.netloc:
                raise PydanticCustomError("state_url", "'{got}' names no host (one slash after '{scheme}:'): write "
                                          "{scheme}://HOST:PORT/DB", {"got": redact_url(v), "scheme": parts.scheme})
            db = parts.path.replace("/", "")
            if db and not db.isdigit():
                raise PydanticCustomError("state_url", "the database in '{got}' is '{db}', not a number: write "
                                          "{scheme}://HOST:PORT/0 (a Redis has databases 0-15 by default)",
                                          {"got": redact_url(v), "db": db, "scheme": parts.scheme})
        return v

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)

    @property
    def shortest_lease(self) -> float:
        """The shortest lease with which the limit holds while a process is cut off from Redis alone: 9·(refresh +
        timeout). Its slots' entries (renewed every lease/3, each living 2·lease/3) must outlive the moment the others
        hold its outage share back — up to lease/3 after its last renewal it last registered, and the others count it
        silent 2·tick + 2·timeout after that, at their next tick plus a call (tick + timeout; tick = refresh). With a
        shorter lease its slots ran out first and were handed out again while it still used them: 3 of 2 from 0.5 s into
        a cut with lease 1.5 s, refresh 0.1 s, timeout 0.2 s (router/shared/link.py holds those timings)."""
        return 9 * (self.refresh + self.timeout)

    def lease_problem(self) -> str:
        """Why this lease is too short ('' : it is not). With ``on_outage: fail`` nothing is held back to race."""
        need = self.shortest_lease
        if self.on_outage is OnOutage.FAIL or self.lease >= need - 1e-9:  # fail: a cut-off process takes nothing new
            return ""
        return (f"lease {self.lease:g}s is shorter than 9 x (refresh + timeout) = {need:g}s: a process cut off from "
                "Redis keeps using its slots, and with a shorter lease they run out there and are handed out again "
                "before the other processes hold its share back, so the model runs past max_concurrent — set lease: "
                f"{need:g} or more (a killed process's slots come back within it), or lower refresh / timeout")


# a query parameter whose name says it carries a credential: Gemini's `?key=`, Azure's `?api-key=`/`?sig=` (SAS),
# `?access_token=`, `?token=`, `?password=` — its value is hidden like a URL's password
_SECRET_PARAM = re.compile(r"(?i)(?<=[?&])([^=&#]*(?:key|token|secret|pass|sig|auth|credential)[^=&#]*=)[^&#]*")


def redact_query(url: str) -> str:
    """The URL with the value of any query parameter named like a credential replaced by ``***``."""
    return _SECRET_PARAM.sub(r"\1***", url)


def redact_url(url: str) -> str:
    """The URL with any password, and the value of any query parameter named like a credential, replaced by
    ``***`` (for messages, logs, the routing log's attempts and /healthz)."""
    url = redact_query(url) if "?" in url else url
    parts = urlsplit(url)
    if parts.password is None:
        # `redis:/:PASSWORD@host` (one slash) has no netloc to urlsplit: the password sits in the path
        return re.sub(r"(?<=:)[^:@/]*(?=@)", "***", url) if "@" in url and not parts.netloc else url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


class Defaults(Strict):
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    cooldown: Cooldown = Cooldown()


class Config(Strict):
    default_agent: str | None = None
    defaults: Defaults = Defaults()
    log: LogConfig = LogConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    telegram: TelegramConfig = TelegramConfig()
    gateway: GatewayConfig = GatewayConfig()
    report: ReportConfig = ReportConfig()
    state: StateConfig | None = Field(None, description="shared slots and breakers: redis://… (default: in-process)")
    models: dict[str, ModelConfig]
    agents: dict[str, AgentConfig]

    @field_validator("models", "agents")
    @classmethod
    def _not_empty(cls, v: dict) -> dict:
        if not v:
            raise ValueError("must define at least one entry")
        return v

    def timeouts_for(self, agent: str | None, model: str) -> Timeouts:
        """The one rule for bounds: defaults, overridden by the model's settings, overridden by the
        agent's (``agent`` None: a call with no agent involved, such as a probe)."""
        merged = self.defaults.timeouts.model_dump()
        layers = [self.models[model].timeouts] if model in self.models else []
        if agent is not None and agent in self.agents:
            layers.append(self.agents[agent].timeouts)
        for layer in layers:
            merged.update({k: v for k, v in layer.model_dump().items() if v is not None})
        return Timeouts(**merged)

    @property
    def first_agent(self) -> str:
        return self.default_agent or next(iter(self.agents))
