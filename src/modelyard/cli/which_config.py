"""The embedded default config, named where a newcomer meets it.

With no config file written yet, every command reads the config shipped in the package, silently: a first
``modelyard ask "hello"`` by someone whose Ollama runs on another machine said only "qwen-coder-0.5b: GGUF file not
found (run `modelyard fetch-model`)" and "ANTHROPIC_API_KEY is not set" — models they never chose, from a file they
never saw — and sent them to fetch a model they did not want, where `init --detect` was the step they missed. Peers'
users ask for the same line (pi-hole/api#226: "It is useful to know that you are using a default config. It would save
me an hour"; sblauth/cashocs#100).
"""

from __future__ import annotations

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
