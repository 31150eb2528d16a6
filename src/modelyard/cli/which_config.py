"""The embedded default config, named where a newcomer meets it.

With no config file written yet, every command reads the config shipped in the package, silently: a first
``modelyard ask "hello"`` by someone whose Ollama runs on another machine said only "qwen-coder-0.5b: GGUF file not
found (run `modelyard fetch-model`)" and "ANTHROPIC_API_KEY is not set" — models they never chose, from a file they
never saw — and sent them to fetch a model they did not want, where `init --detect` was the step they missed. Peers'
users ask for the same line (pi-hole/api#226: "It is useful to know that you are using a default config. It would save
me an hour"; sblauth/cashocs#100).
"""

from __future__ import annotations

import re
from pathlib import Path

from modelyard.paths import embedded_default_config, user_config_file


def embedded_default_note(path: Path) -> str | None:
    """What to say when ``path`` (the config a command read) is the embedded default; None for a file of the user's."""
    try:
        if path.resolve() != embedded_default_config().resolve():
            return None
    except OSError:
        return None
    return (f"config: no file at {user_config_file()} yet, so the embedded default's (its own small model, Claude "
            "Haiku): `modelyard init --detect` writes one from the model servers on this machine, "
            "`--endpoint HOST[:PORT]` for one on another machine; `modelyard init` alone, the default to edit")


#: the names a config is given in a project's directory (LiteLLM's proxy and others read `config.yaml` there)
_HERE_NAMES = ("modelyard.yaml", "modelyard.yml", "config.yaml", "config.yml")
_TOP_KEY = re.compile(r"^(models|agents):", re.MULTILINE)


def unread_here_note(path: Path) -> str | None:
    """What to say when the working directory holds a modelyard config that is not ``path``, the one read.

    modelyard reads no config from the working directory (a service and every other directory must read the same
    file), while LiteLLM's proxy and other tools take ``config.yaml`` from there: a file copied from examples/ and
    edited in a project's directory changed nothing, and `models` showed the user config's models without a word."""
    here = Path.cwd()
    for name in _HERE_NAMES:
        candidate = here / name
        try:
            if not candidate.is_file() or candidate.resolve() == path.resolve():
                continue
            head = candidate.read_text(encoding="utf-8", errors="replace")[:100_000]
        except OSError:
            continue
        if {m.group(1) for m in _TOP_KEY.finditer(head)} == {"models", "agents"}:
            return (f"config: read {path}; ./{name} here is not read (modelyard reads no config from the working "
                    f"directory): modelyard --config ./{name} COMMAND, or export MODELYARD_CONFIG=$PWD/{name}")
    return None
