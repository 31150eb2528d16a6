"""tok/s as peer tools state it, or "—": never the milliseconds of parsing a burst taken for decoding.

Sources: Ollama's API states eval_count and eval_duration (ns) on its last line, and ``ollama run --verbose`` /
Open WebUI show their ratio (docs.ollama.com/api/usage); llama-server's ``timings.predicted_per_second`` is
predicted_n / predicted_ms. Measured on the client, the span is the first token to the last, over tokens - 1
(paiml/probar#27: an SSE chunk is not a token), and a burst has no span: a tool that divided a flushed batch by a
floor of 100 ms showed 5,000 tok/s for a model doing ~83 (gsanhueza/pi-token-speed#12)."""

from __future__ import annotations

from tests.fakes import OllamaServer, OpenAIServer
from tests.helpers import make_config

from modelyard.cli.render import route_line
from modelyard.replay.profile import Profiler
from modelyard.router import Router
from modelyard.router.records import RequestRecord
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "say five words")], max_tokens=16)


async def _streamed(model: dict) -> RequestRecord:
    """One streamed answer from ``model`` (a config entry) as agent chat's primary: its record."""
    router = Router(make_config({"m": model}, {"chat": {"primary": "m"}}))
    try:
        stream = router.stream("chat", REQ)
        async for _ in stream:
            pass
        return stream.record
    finally:
        await router.aclose()

async def test_a_short_answer_in_one_burst_has_no_speed_not_thousands() -> None:
    """A 5-token answer that arrived at once read "2978.4 tok/s" in the route line and the log: 4 tokens over the
    ~1 ms it took to parse them. Now no figure: "— tok/s"."""
    with OpenAIServer(models=["m"], reply_text="one two three four five") as server:
        record = await _streamed({"provider": "openai", "model": "m", "endpoint": server.url})
    assert record.tokens_out >= 2, record
    assert record.tokens_per_s is None, record.tokens_per_s
    line = route_line(record)
    assert "— tok/s" in line and "tok/s ·" not in line.replace("— tok/s ·", ""), line


async def test_ollama_s_own_eval_timings_are_the_speed() -> None:
    """Ollama times its decoding itself (eval_count / eval_duration): that is the figure, burst or not. The fake
    states 10 ms per token, 100 tok/s; the client's clock over a burst said thousands."""
    with OllamaServer(["qwen3:8b"], reply_text="one two three four five six") as ollama:
        record = await _streamed({"provider": "ollama", "model": "qwen3:8b", "endpoint": ollama.url})
    assert record.tokens_per_s is not None and abs(record.tokens_per_s - 100.0) < 0.01, record.tokens_per_s
    assert "100.0 tok/s" in route_line(record)


async def test_a_paced_stream_is_measured_over_its_generation_span() -> None:
    """Without server timings, an answer streamed piece by piece 50 ms apart is measured first token to last:
    (tokens - 1) / span, about 20 tok/s — not 0, not the burst's thousands."""
    with OpenAIServer(models=["m"], reply_text="a b c d e f g h", chunk_interval=0.05) as server:
        record = await _streamed({"provider": "openai", "model": "m", "endpoint": server.url})
    assert record.tokens_per_s is not None and 5 < record.tokens_per_s < 25, (record.tokens_per_s, record)



def test_replay_profiles_a_model_from_measured_speeds_only() -> None:
    """replay's profile of a model took a speed from each answered attempt the log gave none for, by the same
    (tokens - 1) / (duration - TTFT): a 5-token burst became a 4000 tok/s sample, and the candidate config's
    simulated answers came out that fast. Such a row gives no sample now; a paced one still does (10 tok/s)."""
    profiler = Profiler()
    burst = (1.0, "chat", "ok", None, 100.0, 101.0, 10, 5, None, "a", 0)
    paced = (2.0, "chat", "ok", None, 100.0, 1100.0, 10, 11, None, "b", 0)
    profiler.add_page("m", [burst, paced])
    assert profiler.finish()["m"].tokens_per_s == [10.0]


async def _probed_speed(model: dict) -> tuple[str, float | None]:
    """``modelyard probe --only speed`` of ``model`` (a config entry): its tokens_per_s check (status, value)."""
    from modelyard.ops.probe import probe_model
    from modelyard.providers import build_provider

    config = make_config({"m": model}, {"chat": {"primary": "m"}})
    provider = build_provider("m", config.models["m"])
    try:
        result = await probe_model("m", provider, config, checks=("speed",), timeout=10)
    finally:
        await provider.aclose()
    check = result.checks["tokens_per_s"]
    return check.status, check.value


async def test_probe_states_the_speed_by_the_same_rule() -> None:
    """``probe``'s speed check kept the old rule, (tokens - 1) / (total - TTFT) over any span: a short answer in one
    burst read thousands of tok/s there — and replay takes a probed model's tok/s as its speed (replay/run.py reads
    the probe's ``tokens_per_s`` check). Now as the router, bench and replay state it: the server's own timing
    (Ollama's eval_count / eval_duration, 100 tok/s in the fake), else the span only when it can say — a burst gives
    no figure ("unknown"), not a made-up one."""
    with OpenAIServer(models=["m"], reply_text="one two three four five") as server:
        status, value = await _probed_speed({"provider": "openai", "model": "m", "endpoint": server.url})
    assert (status, value) == ("unknown", None), value
    with OllamaServer(["qwen3:8b"], reply_text="one two three four five six") as ollama:
        status, value = await _probed_speed({"provider": "ollama", "model": "qwen3:8b", "endpoint": ollama.url})
    assert status == "pass" and value is not None and abs(value - 100.0) < 0.01, value
