"""Which chat template family a model's own template text is written in, read from its markers.

A raw prompt (router/raw_template.py) falls back only to a model of the template it was written in. Where the config
does not say (``models.NAME.template``), the model's server may: Ollama's ``/api/show`` answers the model's
``template`` (docs.ollama.com/api/show: "template: the prompt template for the model"), copied from the GGUF's
``tokenizer.chat_template`` or the Modelfile. Each family's template writes its own turn markers, as the models'
``tokenizer_config.json`` chat templates do: ChatML's ``<|im_start|>`` (Qwen2.5, Hermes), Llama 3's
``<|start_header_id|>``, Gemma's ``<start_of_turn>``, Mistral's ``[INST]`` (Llama 2's too, with its ``<<SYS>>``),
Phi-3's ``<|user|>``/``<|end|>``, DeepSeek's ``<｜User｜>``. A template with none of them says nothing: unknown.
"""

from __future__ import annotations

#: (family, markers that must all be in the template), the more specific first
_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("chatml", ("<|im_start|>",)),
    ("llama3", ("<|start_header_id|>",)),
    ("gemma", ("<start_of_turn>",)),
    ("llama2", ("[INST]", "<<SYS>>")),
    ("mistral", ("[INST]",)),
    ("phi3", ("<|user|>", "<|end|>")),
    ("deepseek", ("<｜User｜>",)),
)


def family_of(template: str) -> str | None:
    """The family a chat template's text is written in, or None when its markers name none."""
    for family, markers in _MARKERS:
        if all(marker in template for marker in markers):
            return family
    return None
