"""The real embedded model: in-process through llama.cpp, and served by llama_cpp.server over
the OpenAI-compatible protocol. Short generations: the model runs ~20 tokens/s on 2 cores."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers import make_config

from modelyard.cli.render import route_line
from modelyard.config import Config
from modelyard.router import Router
from modelyard.types import ChatRequest, Message, ToolDefinition

pytestmark = pytest.mark.model

PROMPT = ChatRequest(messages=[Message("user", "Reply with exactly: pong")], max_tokens=8, temperature=0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: makes a Router that the fixture closes after the test
Routers = Callable[[Config], Router]


@pytest.fixture
async def routers() -> AsyncIterator[Routers]:
    """Routers made through this are closed after the test, passed or not: closed in a test's last lines, a failed
    assertion (a first token past its bound on a loaded machine) left the router's HTTP session to the collector —
    an unclosed-session ResourceWarning in a later test."""
    made: list[Router] = []

    def make(config: Config) -> Router:
        made.append(Router(config))
        return made[-1]

    yield make
    for router in made:
        await router.aclose()


@pytest.fixture(scope="module")
def llama_server(default_model: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "qwen-coder"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


async def test_embedded_model_answers_through_an_agent(default_model: Path, routers: Routers) -> None:
    config = make_config({"local": {"provider": "llamacpp", "path": str(default_model), "context": 2048}},
                         {"chat": {"primary": "local"}})
    router = routers(config)
    stream = router.stream("chat", PROMPT)
    text = "".join([c.text async for c in stream if c.kind == "text"])
    assert "pong" in text.lower()
    record = stream.record
    assert record.outcome == "ok" and record.model == "local"
    assert 0 < record.tokens_out <= 8 and record.tokens_in > 5 and record.ttft_ms is not None


async def test_openai_provider_against_llama_cpp_server(llama_server: str, routers: Routers) -> None:
    config = make_config({"served": {"provider": "openai", "model": "qwen-coder", "endpoint": llama_server}},
                         {"chat": {"primary": "served"}})
    router = routers(config)
    stream = router.stream("chat", PROMPT)
    pieces = [c.text async for c in stream if c.kind == "text"]
    assert len(pieces) >= 1 and "pong" in "".join(pieces).lower()
    assert stream.record.tokens_out > 0  # usage came back in the final SSE chunk


async def test_tool_request_over_server_comes_back_as_plain_text(llama_server: str, routers: Routers) -> None:
    """The trap this model sets: a plausible tool call written as text, no structured call."""
    tool = ToolDefinition("get_weather", "Get the weather for a city",
                          {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    config = make_config({"served": {"provider": "openai", "model": "qwen-coder", "endpoint": llama_server}},
                         {"chat": {"primary": "served"}})
    router = routers(config)
    routed = await router.complete("chat", ChatRequest(
        messages=[Message("user", "What is the weather in Paris? Use the tool.")], tools=[tool], max_tokens=60,
        temperature=0.0))
    assert routed.response.tool_calls == []
    assert "get_weather" in routed.response.text


async def test_a_prompt_past_the_servers_context_says_so_and_the_model_stays_well(llama_server: str,
                                                                                  routers: Routers) -> None:
    """llama_cpp.server answers a streamed prompt past its context (``--n_ctx 2048`` here) with a 200 event stream
    and nothing in it: its error is raised inside the stream. That was malformed_response, counted against a model
    that is well, and nothing said why. Asked once more whole, the server says it (fifth fault hunt): a bad_request
    with its words, the model in service, the next ordinary request answered."""
    from modelyard.router import ChainExhausted

    config = make_config({"served": {"provider": "openai", "model": "qwen-coder", "endpoint": llama_server}},
                         {"chat": {"primary": "served"}}, defaults={"cooldown": {"failures": 1}})
    router = routers(config)
    with pytest.raises(ChainExhausted) as info:  # no `context` set: the estimate does not skip it
        await router.complete("chat", ChatRequest(messages=[Message("user", "0123456789" * 220)], max_tokens=8))
    attempt = info.value.record.attempts[0]
    assert attempt.reason == "bad_request"
    assert "maximum context length is 2048 tokens" in (attempt.detail or "")
    assert router.pool.local("served").health.state == "available"
    # the next such prompt is read as that refusal at once (hunt8): one request, not two
    with pytest.raises(ChainExhausted) as info:
        await router.complete("chat", ChatRequest(messages=[Message("user", "9876543210" * 220)], max_tokens=8))
    attempt = info.value.record.attempts[0]
    assert attempt.reason == "bad_request" and "asked whole once" in (attempt.detail or "")
    routed = await router.complete("chat", PROMPT)
    # answered by the same model, in service; llama_cpp.server may close the kept-alive connection after the error
    # stream, and a request that meets that closed connection is asked again at once (the clean-clone CI, 1 run in 4)
    tried = [(a.outcome, a.reason) for a in routed.record.attempts]
    assert tried[-1] == ("ok", None) and routed.record.model == "served", tried
    assert all(t == ("retry", "connection_dropped") for t in tried[:-1]) and len(tried) <= 2, tried
    assert router.pool.local("served").health.state == "available"

async def test_dead_server_falls_back_to_embedded(default_model: Path, routers: Routers) -> None:
    config = make_config(
        {"served": {"provider": "openai", "endpoint": f"http://127.0.0.1:{free_port()}"},
         "local": {"provider": "llamacpp", "path": str(default_model), "context": 2048}},
        {"chat": {"primary": "served", "fallbacks": ["local"]}})
    router = routers(config)
    routed = await router.complete("chat", PROMPT)
    assert routed.record.model == "local" and routed.record.attempts[0].reason == "connect_error"


def test_cli_ask_falls_back_from_cloud_to_local(tmp_path: Path, default_model: Path) -> None:
    """The README's first command, minus setup: default config, writer agent, no API key."""
    env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp_path)}
    env.pop("ANTHROPIC_API_KEY", None)
    result = subprocess.run([sys.executable, "-m", "modelyard", "ask", "--agent", "writer", "--json",
                             "Reply with one short sentence about routers."],
                            capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    writer = out["steps"][0]  # then the default topology's hand-off to utility (used or not: out["handoffs"])
    assert writer["agent"] == "writer" and out["answer"].strip()
    assert writer["model"] == "qwen-coder-0.5b" and writer["outcome"] == "fallback"
    attempts = writer["attempts"]
    assert attempts[0]["model"] == "claude-haiku" and attempts[0]["reason"] == "missing_credentials"
    assert out["model"] == "qwen-coder-0.5b" and out["agent"] in ("writer", "utility") and len(out["handoffs"]) == 1
    log = subprocess.run([sys.executable, "-m", "modelyard", "log", "-n", "5"], capture_output=True, text=True,
                         timeout=60, env={**env, "COLUMNS": "250"})
    assert writer["id"][:8] in log.stdout and "missing_credentials" in log.stdout
    rated = subprocess.run([sys.executable, "-m", "modelyard", "rate", out["id"], "good"], capture_output=True,
                           text=True, timeout=60, env=env)
    assert rated.returncode == 0 and out["id"] in rated.stdout


async def test_prompt_beyond_context_is_a_bad_request_not_a_sick_model(default_model: Path, routers: Routers) -> None:
    config = make_config({"local": {"provider": "llamacpp", "path": str(default_model), "context": 256}},
                         {"chat": {"primary": "local"}}, defaults={"cooldown": {"failures": 1}})
    router = routers(config)
    from modelyard.router import ChainExhausted

    # digits are a token each, four times the estimate (router/fit.py lets it through): llama.cpp refuses it
    with pytest.raises(ChainExhausted, match="context window") as info:
        await router.complete("chat", ChatRequest(messages=[Message("user", "0123456789" * 60)], max_tokens=8))
    assert info.value.record.attempts[0].reason == "bad_request"
    assert router.pool.local("local").health.state == "available"
    # a prompt the estimate already sees is too long is skipped before llama.cpp is asked
    with pytest.raises(ChainExhausted, match="does not fit its context of 256 tokens") as info:
        await router.complete("chat", ChatRequest(messages=[Message("user", "word " * 2000)], max_tokens=8))
    assert [(a.outcome, a.reason) for a in info.value.record.attempts] == [("skipped", "bad_request")]
    assert router.pool.local("local").health.state == "available"



async def test_max_tokens_past_the_room_the_prompt_leaves_is_clamped_and_said(default_model: Path,
                                                                              routers: Routers) -> None:
    """A prompt that fits the context but leaves less room than ``max_tokens`` asks (fifth fault hunt). llama-cpp-python
    clamps it in silence: the answer stopped where the context ended — here ~20 tokens into 2,000 asked — with
    finish ``length``, and the route said "TRUNCATED at max_tokens=2000". Now the provider refuses it in the words
    OpenAI-compatible servers use, the router asks once more within the room (llama.cpp's cache keeps the prompt's
    evaluation), and the attempt says the max_tokens was clamped. Without a max_tokens of the client's, an answer
    cut by the context's end says so in its stop reason."""
    config = make_config({"local": {"provider": "llamacpp", "path": str(default_model), "context": 256}},
                         {"chat": {"primary": "local"}},
                         defaults={"timeouts": {"first_token": 300, "idle": 120, "total": 600}})  # a loaded CI box
    router = routers(config)
    # digits are a token each, four times the estimate (router/fit.py lets it through): ~235 of the 256 tokens
    prompt = [Message("user", "Repeat: " + "0123456789" * 20)]
    routed = await router.complete("chat", ChatRequest(messages=prompt, max_tokens=2000))
    refused, answered = routed.record.attempts
    assert (refused.outcome, refused.reason) == ("retry", "bad_request")
    assert "maximum context length is 256 tokens" in (refused.detail or "")
    room = 256 - answered.tokens_in
    assert answered.outcome == "ok" and 0 < room < 64
    assert answered.detail == f"max_tokens 2000 clamped to {room}, the most the model takes"
    assert answered.tokens_out <= room
    if routed.record.truncated:  # the route line names the budget sent, not the client's 2000
        assert f"TRUNCATED at max_tokens={room}" in route_line(routed.record), route_line(routed.record)
    assert router.pool.local("local").health.state == "available"
    unasked = await router.complete("chat", ChatRequest(messages=prompt))
    assert [(a.outcome, a.reason) for a in unasked.record.attempts] == [("ok", None)]
    assert unasked.response.stop_reason == "model_context_window_exceeded" and unasked.response.truncated
    # cut where the context ended: said so, not "TRUNCATED at max_tokens" of a budget nobody asked for
    assert "TRUNCATED: the model's context is full" in route_line(unasked.record), route_line(unasked.record)

_CHATTER = '''
import logging, os, sys, threading, time
from modelyard.providers.llamacpp import load_llama
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
stop, written = threading.Event(), [0]
def chatter():
    while not stop.is_set():
        i = written[0]
        logging.getLogger("other").info("logged %d", i)
        os.write(2, b"raw %d\\n" % i)
        print("printed", i, flush=True)
        written[0] += 1
        time.sleep(0.002)
thread = threading.Thread(target=chatter)
thread.start()
time.sleep(0.05)
load_llama(sys.argv[1], 512, 1)
stop.set()
thread.join()
print("wrote", written[0], flush=True)
'''


def test_loading_the_model_quiets_llama_cpp_and_nothing_else(default_model: Path) -> None:
    """llama-cpp-python's verbose=False pointed file descriptors 1 and 2 at /dev/null while a model loaded:
    what every other thread wrote meanwhile was lost (a serve whose port was taken exited without a word)."""
    done = subprocess.run([sys.executable, "-c", _CHATTER, str(default_model)], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    written = int(done.stdout.rsplit("wrote ", 1)[1])
    assert written > 20  # the other thread ran all through the load
    for i in range(written):
        assert f"printed {i}\n" in done.stdout and f"raw {i}\n" in done.stderr and f"logged {i}\n" in done.stderr, i
    assert "llama_model_loader" not in done.stderr and "Model metadata" not in done.stderr  # and no chatter


async def test_embedded_model_generates_with_the_configured_threads(default_model: Path, routers: Routers) -> None:
    """``threads:`` reaches llama.cpp's generation; prompt evaluation keeps every core. Unset, the
    model generates with every core but one (two threads spinning on two busy cores ran ~3-10x slower),
    and offloads every layer to a GPU when the build has one (``gpu_layers: -1``)."""
    from modelyard.providers.llamacpp import LlamaCppProvider, load_llama

    cores = os.cpu_count() or 1
    models = {"one": {"provider": "llamacpp", "path": str(default_model), "context": 1024, "threads": 1},
              "auto": {"provider": "llamacpp", "path": str(default_model), "context": 1024}}
    config = make_config(models, {"chat": {"primary": "one"}})
    explicit = LlamaCppProvider("one", config.models["one"])
    default = LlamaCppProvider("auto", config.models["auto"])
    assert explicit.threads == 1 and default.threads == max(1, cores - 1)
    await explicit.warmup()
    llm = load_llama(str(default_model), 1024, 1)
    assert (llm.context_params.n_threads, llm.context_params.n_threads_batch) == (1, cores)
    assert llm.model_params.n_gpu_layers == 0x7FFFFFFF  # -1: every layer on a GPU build (a CPU build ignores it)
    assert await explicit.loaded() is True
    text = "".join([c.text async for c in routers(config).stream("chat", PROMPT) if c.kind == "text"])
    assert "pong" in text.lower()
