"""``plan`` reads where Ollama put a loaded model: on the GPU, or split with the CPU for want of GPU memory."""

from __future__ import annotations

from tests.fakes import OllamaServer
from tests.helpers import make_config

from modelyard.ops.plan import GB, plan_memory


def test_a_model_ollama_split_onto_the_cpu_is_said_by_plan() -> None:
    """Under memory pressure Ollama loads what the GPU cannot hold on the CPU and says so only in /api/ps:
    ``size_vram`` below ``size`` — "48%/52% CPU/GPU" in ``ollama ps`` (docs.ollama.com/api/ps; "the model plus context
    didn't fit in VRAM", dev.to/mrsaynothing "Ollama not using GPU?"). ``plan`` counted the model's 10 GB and said
    nothing: the model answered several times slower and nobody was told why. A model wholly on the GPU, or wholly
    on the CPU (size_vram 0, a machine without a GPU), is no split and says nothing."""
    split, whole, cpu = ("big:14b", 10 * GB), ("small:3b", 3 * GB), ("tiny:1b", 1 * GB)
    with OllamaServer(models=[{"name": n, "size": s} for n, s in (split, whole, cpu)],
                      loaded=["big:14b", "small:3b", "tiny:1b"],
                      vram={"big:14b": 6 * GB, "small:3b": 3 * GB}).start() as ollama:
        cfg = make_config({"big": {"provider": "ollama", "model": "big:14b", "endpoint": ollama.url},
                           "small": {"provider": "ollama", "model": "small:3b", "endpoint": ollama.url},
                           "tiny": {"provider": "ollama", "model": "tiny:1b", "endpoint": ollama.url}},
                          {"a": {"primary": "big", "fallbacks": ["small", "tiny"]}})
        p = plan_memory(cfg, ram_gb=64)
    shares = {m.model: m.cpu_share for m in p.models}
    assert shares["small"] is None and shares["tiny"] is None and shares["big"] == 0.4, shares
    said = [n for n in p.notes if "on the CPU" in n]
    assert said == ["big: its Ollama runs 40% of it on the CPU (/api/ps size_vram below size): the GPU had no room "
                    "for all of it, so it answers several times slower — free GPU memory (fewer models loaded, a "
                    "smaller context or quantisation)"], p.notes
    assert p.to_dict()["models"][0]["cpu_share"] == 0.4
