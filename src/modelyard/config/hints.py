"""What to write instead, for config mistakes whose parser's words name the symptom, not the fix.

Kept apart from the loader because each rule here is about the *outside*: how people write numbers in other
tools (``30s``, ``8k``, ``8GB``, ``35%``), which other tool's file was pasted in (LiteLLM, docker compose, an
Ollama Modelfile or env file), and which invisible characters a web page or chat leaves in a copied line.
None of these messages echo text that could be a secret: a number is shown only when it parsed as one.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from modelyard.paths import example_file


class Unit(StrEnum):
    """The unit a numeric setting is read in, from its key's name."""

    SECONDS = "seconds"
    DAYS = "days"
    GB = "GB"
    MB = "MB"
    TOKENS = "tokens"
    SHARE = "share"
    USD = "USD"


#: keys read in seconds (timeouts, retries, cooldowns, intervals)
_SECONDS_KEYS = frozenset({
    "queue", "connect", "first_token", "idle", "total", "backoff", "max_wait", "seconds", "max_seconds",
    "max_retry_after", "lease", "timeout", "refresh", "command_timeout", "start_timeout", "call_timeout",
    "edit_interval", "keep_alive_interval",
})
_TOKEN_KEYS = frozenset({"context", "max_output", "max_tokens", "thinking_budget", "history_tokens"})
_USD_KEYS = frozenset({"usd", "input", "output", "cache_read", "cache_write", "cache_write_1h",
                       "electricity_usd_per_month", "hardware_usd_per_month"})

_TO_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
               "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600,
               "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
_TO_GB = {"gb": 1, "g": 1, "gib": 1, "mb": 1 / 1024, "m": 1 / 1024, "mib": 1 / 1024, "tb": 1024}
_TO_MB = {"mb": 1, "m": 1, "mib": 1, "kb": 1 / 1024, "gb": 1024, "g": 1024, "gib": 1024}
_TO_TOKENS = {"k": 1024, "": 1}

_NUMBER_WITH_UNIT = re.compile(r"\s*\$?\s*(\d[\d,_]*(?:\.\d+)?)\s*([A-Za-z%]*)\s*")


def unit_of(key: str) -> Unit | None:
    """The unit ``key`` (a setting's last name) is read in; None when no unit applies (a count)."""
    if key in _SECONDS_KEYS:
        return Unit.SECONDS
    if key.endswith("_days"):
        return Unit.DAYS
    if key.endswith("_gb"):
        return Unit.GB
    if key.endswith("_mb"):
        return Unit.MB
    if key in _TOKEN_KEYS:
        return Unit.TOKENS
    if key == "threshold":
        return Unit.SHARE
    if key in _USD_KEYS:
        return Unit.USD
    return None


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def number_to_write(text: str, key: str) -> str | None:
    """``connect: 30s`` → ``"write 30 (seconds)"``: the number to write for a value written with its unit or with
    thousands separators, in the unit ``key`` is read in; None when ``text`` is no number of that kind."""
    match = _NUMBER_WITH_UNIT.fullmatch(text)
    unit = unit_of(key)
    if match is None:
        return None
    amount = float(match.group(1).replace(",", "").replace("_", ""))
    suffix = match.group(2).lower()
    factor: float | None
    if unit is Unit.SECONDS:
        factor = _TO_SECONDS.get(suffix or "s")
    elif unit is Unit.DAYS:
        factor = _TO_SECONDS[suffix] / 86400 if suffix in _TO_SECONDS else (1 if not suffix else None)
    elif unit is Unit.GB:
        factor = _TO_GB.get(suffix or "gb")
    elif unit is Unit.MB:
        factor = _TO_MB.get(suffix or "mb")
    elif unit is Unit.TOKENS:
        factor = _TO_TOKENS.get(suffix)
    elif unit is Unit.SHARE:
        factor = 0.01 if suffix == "%" else (1 if not suffix else None)
    elif unit is Unit.USD:
        factor = 1 if suffix in ("", "usd") else None
    else:
        factor = 1 if not suffix else None
    if factor is None:
        return None
    said = f" ({unit.value})" if unit and unit is not Unit.SHARE else (" (a share: 0.35 is 35%)" if unit else "")
    return f"write {_number(amount * factor)}{said}"


#: top-level keys of other tools' files, and what each file is
_FOREIGN_KEYS = {
    "a LiteLLM proxy config": ("model_list", "litellm_settings", "general_settings", "router_settings",
                             "environment_variables"),
    "a docker compose file": ("services", "volumes", "networks"),
    # aider's sample.aider.conf.yml: its command-line options as keys (Aider-AI/aider, website/assets)
    "aider's .aider.conf.yml": ("openai-api-base", "openai-api-key", "anthropic-api-key", "weak-model",
                                "editor-model", "auto-commits", "set-env", "api-key", "model-settings-file"),
    "Ollama's server settings (OLLAMA_* environment variables)": ("OLLAMA_HOST", "OLLAMA_NUM_PARALLEL", "OLLAMA_MODELS",
                                                      "OLLAMA_KEEP_ALIVE", "OLLAMA_BASE_URL", "OLLAMA_ORIGINS"),
}
_MODELFILE = re.compile(r"^\s*FROM\s+\S+", re.MULTILINE)
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?[A-Z][A-Z0-9_]*=", re.MULTILINE)

_OURS = ("modelyard's config has 'models:' (each model by name: provider, model, endpoint, api_key_env) and "
         "'agents:' (each agent by name: primary, fallbacks); `modelyard init --detect` writes one from the servers "
         "running here")


def foreign_file(text: str, top_keys: list[str]) -> tuple[str, str, int] | None:
    """(what another tool's file pasted as a config is and what to do, the key that tells, its line's index) —
    the key '' and the first telling line for a file of no keys; None when it looks like ours."""
    if "models" in top_keys and "agents" in top_keys:
        return None
    for what, keys in _FOREIGN_KEYS.items():
        if telling := next((k for k in top_keys if k in keys), None):
            return f"this looks like {what}, not a modelyard config: {_OURS}", telling, -1
    if not top_keys and (found := _MODELFILE.search(text)):
        return (f"this looks like an Ollama Modelfile, not a modelyard config: {_OURS}", "",
                text.count("\n", 0, found.start()))
    if not top_keys and (found := _ENV_LINE.search(text)):
        return (f"this looks like an environment file (NAME=value lines), not a modelyard config: keys stay in the "
                f"environment, the config names them with api_key_env: NAME; {_OURS}", "",
                text.count("\n", 0, found.start()))
    return None


_TABLE = re.compile(r"^\s*\[{1,2}[\w.\-\" ]+\]{1,2}\s*(?:#.*)?$", re.MULTILINE)
_TOML_PAIR = re.compile(r"^\s*[\w.\-\"]+\s*=\s*\S", re.MULTILINE)
_OUR_SECTIONS = re.compile(r"^(?:models|agents):", re.MULTILINE)


def not_yaml(text: str) -> tuple[str, int] | None:
    """(what a TOML or INI file given as the config is, and the line of its first ``[section]``), or None. YAML's
    own words for one — "expected '<document start>', but found '<scalar>'" at a ``key = value`` line — said
    nothing of the format, and a ``config.toml`` is what several tools' users write first."""
    table, pair = _TABLE.search(text), _TOML_PAIR.search(text)
    if table is None or pair is None or _OUR_SECTIONS.search(text):  # a YAML config of ours with a mistake in it
        return None
    return (f"this looks like a TOML or INI file ([section] headers, key = value lines), not YAML: {_OURS}",
            text.count("\n", 0, table.start()))


#: a model's settings in LiteLLM's proxy config (docs.litellm.ai, proxy/configs: model_list entries) that have no
#: one-to-one key here, and what to write instead
_LITELLM_SETTINGS = {
    "litellm_params": ("LiteLLM nests a model's settings under litellm_params; here they go straight under the model, "
                       "one level up: provider, model, endpoint (its api_base), api_key_env"),
    "rpm": ("a requests-per-minute limit is LiteLLM's; modelyard bounds a model by the requests it serves at once "
            "(max_concurrent) and those that may wait (max_queue)"),
    "tpm": ("a tokens-per-minute limit is LiteLLM's; modelyard bounds a model by the requests it serves at once "
            "(max_concurrent) and those that may wait (max_queue)"),
}


def foreign_setting(key: str) -> str | None:
    """What to write for a LiteLLM model setting (``litellm_params:``, ``rpm:``) left in a model's entry."""
    return _LITELLM_SETTINGS.get(key)


def foreign_list(data: Any) -> str | None:
    """What to write for simonw/llm's extra-openai-models.yaml pasted as the config: a list of ``model_id`` /
    ``model_name`` / ``api_base`` / ``api_key_name`` items (llm's docs/other-models.md); None for any other list.
    It said only "expected a mapping with 'models:' and 'agents:'"."""
    if not (isinstance(data, list) and data and isinstance(data[0], dict) and "model_id" in data[0]):
        return None
    return ("this looks like llm's extra-openai-models.yaml, not a modelyard config: each item becomes a model under "
            "'models:' named by its model_id, with provider: openai, model: its model_name, endpoint: its api_base "
            "and api_key_env: the variable holding its key; then 'agents:' name the models each agent uses (primary, "
            "fallbacks)")


#: characters a copy from a web page, a PDF or a chat leaves in a line, which YAML does not read as a reader does
_INVISIBLE = {
    "\u00a0": "a non-breaking space (U+00A0)",
    "\u200b": "a zero-width space (U+200B)",
    "\u200c": "a zero-width non-joiner (U+200C)",
    "\u200d": "a zero-width joiner (U+200D)",
    "\u2060": "a word joiner (U+2060)",
    "\ufeff": "a byte-order mark (U+FEFF) inside the file",
    "\u3000": "an ideographic space (U+3000)",
}


def invisible_character(text: str) -> tuple[int, str] | None:
    """(line, what to do) for the first invisible character where YAML reads structure — the indentation or a key
    (before its first ``:``) — outside comments; None when there is none. In a value (a system prompt) it is
    harmless and left alone; a byte-order mark at the very start is the file's own (Notepad's) and read."""
    blank = " \t" + "".join(_INVISIBLE)
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        body = line.lstrip(blank)
        if body.startswith("#"):
            continue
        indent = line[:len(line) - len(body)]
        key = body.split(":", 1)[0] if ":" in body else ""
        for char, name in _INVISIBLE.items():
            if char in indent or char in key:
                where = "the indentation" if char in indent else "a key"
                return number, (f"{name} in {where}, as copied from a web page or a chat: YAML does not read it as "
                                f"a space; delete it and retype the line's spaces")
    return None


#: the shipped configs, whose agents a first config is most often copied from
_SHIPPED = ("default.yaml", "reference-mac64.yaml")
#: the settings that say what a model is and where: enough to write the entry, nothing tuned to one machine
_ENTRY_KEYS = ("provider", "model", "endpoint", "api_key_env")


@cache
def _shipped_models() -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for name in _SHIPPED:
        try:
            data = yaml.safe_load(example_file(name).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):  # a trimmed install: no entry to offer, the rest of the message stands
            continue
        for model, settings in (data.get("models") or {}).items():
            models.setdefault(str(model), settings)
    return models


def undefined_model(name: str) -> str:
    """What to do about a chain's model that ``models:`` does not define: the shipped configs' entry for it when an
    agent was copied from one (`fallbacks: [claude-haiku]`), else to define it or take it out. It said only the
    configured models, which read as if the chain were to change."""
    shipped = _shipped_models().get(name)
    if shipped:
        entry = ", ".join(f"{key}: {shipped[key]}" for key in _ENTRY_KEYS if shipped.get(key) is not None)
        return (f": add it under 'models:' as the shipped configs define it — {name}: {{{entry}}} — or take it out "
                f"of the chain")
    return ": define it under 'models:' (its provider and model), or take it out of the chain"


#: Azure OpenAI's hosts: a resource's own (``NAME.openai.azure.com``) and an AI Services / Foundry resource's
AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
#: the data-plane inference API's latest GA version (learn.microsoft.com, azure/ai-services/openai/reference)
AZURE_GA_VERSION = "2024-10-21"


#: a variable named inside a URL as docker compose and .env files write it (``${NAME}``), or as LiteLLM does
#: (``os.environ/NAME``); a bare ``$NAME`` only as the whole value (a password may hold a ``$``)
_URL_VARIABLE = re.compile(r"\$\{\w+\}|os\.environ/\w+|^\$[A-Za-z_]\w*$")


def url_variable(url: str) -> str | None:
    """The variable reference in a URL the config gives (``redis://:${REDIS_PASSWORD}@…``), or None: the config expands
    none, so it was sent as written — Redis and PostgreSQL refused '${REDIS_PASSWORD}' as the password at the first
    connection. Only the reference is returned (a variable's name, never a value)."""
    found = _URL_VARIABLE.search(url.strip())
    return found.group(0) if found else None


def azure_endpoint(endpoint: str) -> str | None:
    """What to write for an Azure OpenAI endpoint that cannot answer as written, or None (it can, or it is none).
    Azure takes two shapes (learn.microsoft.com, azure/ai-services/openai/reference and api-version-lifecycle): a
    deployment's URL with its version in the query, ``https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT
    ?api-version=2024-10-21``, and the v1 API, ``https://NAME.openai.azure.com/openai/v1`` with the deployment as the
    model. The resource's address alone (the portal's "Keys and Endpoint" page shows it so) was asked at
    ``/v1/chat/completions``, and a deployment URL without its ``api-version`` (BAML's docs: "Azure will return 'not
    found' if the version is not specified") — each a 404 on every request, read as a model not there."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if not host.endswith(AZURE_HOSTS):
        return None
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    v1 = f"{origin}/openai/v1 (Azure's v1 API; model: your deployment's name)"
    segments = path.split("/")
    if "deployments" in segments:
        deployment = segments[segments.index("deployments") + 1:]
        if not deployment or not deployment[0]:
            return (f"the deployment's name is missing after /deployments/: write endpoint: "
                    f"{origin}/openai/deployments/DEPLOYMENT?api-version={AZURE_GA_VERSION}, or {v1}")
        if not any(k.lower() == "api-version" for k in parse_qs(parts.query, keep_blank_values=True)):
            return (f"an Azure OpenAI deployment URL names its API version in the query: write endpoint: "
                    f"{origin}{path}?api-version={AZURE_GA_VERSION} (the GA version), or {v1}")
        return None
    if not path:
        return (f"this is the Azure resource's address alone: write endpoint: {v1}, or the deployment's Target URI "
                f"({origin}/openai/deployments/DEPLOYMENT?api-version={AZURE_GA_VERSION})")
    return None
