"""A raw prompt's fallback: only to a model that reads the same chat template.

A raw prompt (Ollama's ``raw: true``: docs.ollama.com/api/generate, "raw: if true no formatting will be applied to
the prompt"; Continue's FIM templates) is written by the client in one model's template and special tokens —
``<|im_start|>`` for ChatML (Qwen), ``<|start_header_id|>`` for Llama 3, ``[INST]`` for Mistral, ``<|fim_prefix|>``
for Qwen's FIM. Given verbatim to a model of another family, the markers are plain text to it: it answers something,
and the answer looks like a success. So the chain's first model that takes a prompt verbatim (``sends_prompts``) fixes
the template; a later model answers in its place only if it is the same model (its model id, as
router/embedding.py reads one) or both are known to read one template family — the config's ``template``, else what
the model's server says of it (Ollama's /api/show template, providers/chat_template.py) — and is otherwise skipped,
the row saying why and which key to set.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelyard.providers import Provider
from modelyard.router.embedding import same_model


def _setter(chain: tuple[str, ...], index: int, providers: Mapping[str, Provider]) -> str | None:
    """The first model before ``index`` that takes a prompt verbatim: the one the raw prompt was written for."""
    return next((m for m in chain[:index] if providers[m].sends_prompts), None)


async def other_template(chain: tuple[str, ...], index: int, providers: Mapping[str, Provider]) -> str:
    """Why ``chain[index]`` may not answer a raw prompt in place of the chain's first model that takes one ("": it
    may)."""
    setter = _setter(chain, index, providers)
    if setter is None:
        return ""
    first, this = providers[setter], providers[chain[index]]
    if same_model(first, this):
        return ""
    theirs, mine = await first.template_family(), await this.template_family()
    if theirs is not None and theirs == mine:
        return ""
    if theirs is None or mine is None:
        unknown = [name for name, t in ((setter, theirs), (chain[index], mine)) if t is None]
        keys = " and ".join(f"models.{name}.template" for name in unknown)
        return (f"a raw prompt is written in {setter}'s chat template, and whether this model reads the same one is "
                f"not known: set {keys} to the template family (chatml, llama3, mistral…) if they are one")
    return (f"a raw prompt is written in {setter}'s chat template ({theirs!r}); this model's is {mine!r}: its "
            "special tokens would be plain text here (models.NAME.template)")
