"""Nothing listening where a model is served must show: `models` says unreachable (within its ~1 s bound,
never hanging), `probe` exits non-zero, and `check` says what it has never seen instead of a clean bill."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import yaml
from tests.fakes import OllamaServer
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config import load_config
from modelyard.ops.reach import unreachable
from modelyard.providers import build_provider


def free_port() -> int:
    """A loopback port nothing listens on (bound once to pick it, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp_path: Path, live_url: str, dead_url: str, extra: dict | None = None) -> Path:
    data = {
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {
            "live": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": live_url},
            "dead": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": dead_url},
            "dead2": {"provider": "openai", "model": "x", "endpoint": dead_url + "/v1"},
            **(extra or {}),
        },
        "agents": {"chat": {"primary": "dead", "fallbacks": ["live"]}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_models_shows_a_server_with_nothing_listening_as_unreachable(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with OllamaServer(models=["qwen3.5:latest"]) as live:
        path = config(tmp_path, live.url, dead)
        out = CliRunner().invoke(app, ["models", "--config", str(path)], terminal_width=250)
        assert out.exit_code == 0, out.output
        rows: dict[str, str] = {}  # a model's row and the lines under the table that name it
        for line in out.output.splitlines():
            if line.split():
                rows[line.split()[0].rstrip(":")] = rows.get(line.split()[0].rstrip(":"), "") + line + "\n"
        assert "unreachable" in rows["dead"] and "nothing listening on 127.0.0.1" in rows["dead"]
        assert "unreachable" in rows["dead2"]
        assert "available" in rows["live"] and "unreachable" not in rows["live"]
        skipped = CliRunner().invoke(app, ["models", "--config", str(path), "--no-reach"], terminal_width=250)
        assert "unreachable" not in skipped.output


def test_reach_check_is_bounded_when_a_host_never_answers(tmp_path: Path) -> None:
    """A listener whose accept backlog is full never answers a further connect (a blackhole): the check
    as a whole still ends within its budget, and the models behind it are reported, beside a refused one."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the backlog so a further SYN is dropped, not answered
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        cfg = load_config(config(tmp_path, f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{port}"))
        providers = {n: build_provider(n, m) for n, m in cfg.models.items()}
        start = time.monotonic()
        found = unreachable(providers, budget=1.0)
        took = time.monotonic() - start
    finally:
        for s in fillers:
            s.close()
        full.close()
    assert took < 3.0, took  # generous: the bound is 1 s whatever the number of servers
    assert found["dead"] == found["dead2"] == f"no answer from 127.0.0.1:{port} within 1s"
    assert found["live"].startswith("nothing listening on 127.0.0.1")


def test_probe_exits_nonzero_when_a_model_is_unreachable(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with OllamaServer(models=["qwen3.5:latest"]) as live:
        path = config(tmp_path, live.url, dead)
        runner = CliRunner()
        out = runner.invoke(app, ["probe", "dead", "--config", str(path), "--only", "reachable", "--json"])
        assert out.exit_code == 1, out.output
        assert json.loads(out.stdout)[0]["checks"]["reachable"]["status"] == "fail"
        assert "1 of 1 model(s) failed: dead (reachable" in out.stderr
        ok = runner.invoke(app, ["probe", "live", "--config", str(path), "--only", "reachable"])
        assert ok.exit_code == 0, ok.output

        checked = runner.invoke(app, ["check", "--config", str(path)], terminal_width=250)
        assert "never probed: dead2" in checked.output
        assert "model 'dead' could not be reached when last probed" in checked.output
        assert "0 error(s), 2 warning(s)" in checked.output
        as_json = json.loads(runner.invoke(app, ["check", "--config", str(path), "--json"]).stdout)
        assert as_json["never_probed"] == ["dead2"]


def test_check_without_any_probe_is_not_a_clean_bill(tmp_path: Path) -> None:
    path = config(tmp_path, f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")
    out = CliRunner().invoke(app, ["check", "--config", str(path)], terminal_width=250)
    assert out.exit_code == 0
    assert "never probed: dead, dead2, live" in out.output
    assert "0 error(s), 0 warning(s)" not in out.output


def test_a_server_on_the_other_loopback_address_is_named(tmp_path: Path) -> None:
    """A server bound to one IP version's loopback alone (Node's servers resolve `localhost` to ::1; Ollama binds
    127.0.0.1) and an endpoint naming the other: 'nothing listening' while the server runs, the localhost/IPv6
    mix-up peers' users report (stackblitz-labs/bolt.diy#877, SamSaffron/term-llm#445). `models` names where it
    does listen and what to write; a port nothing listens on at all stays a plain 'nothing listening'."""
    with socket.socket(socket.AF_INET6) as v6, socket.socket() as v4:
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::1", 0))
        v6.listen()
        v4.bind(("127.0.0.1", 0))
        v4.listen()
        six, four, none = v6.getsockname()[1], v4.getsockname()[1], free_port()
        path = config(tmp_path, f"http://[::1]:{four}", f"http://127.0.0.1:{six}",
                      {"nothing": {"provider": "ollama", "model": "x", "endpoint": f"http://127.0.0.1:{none}"}})
        out = CliRunner().invoke(app, ["models", "--config", str(path)], terminal_width=400)
    assert out.exit_code == 3, out.output  # no model can answer
    said = " ".join(out.output.split())
    assert (f"dead: unreachable: nothing listening on 127.0.0.1:{six} (Connection refused), but a server listens on "
            f"[::1]:{six}, this machine's other loopback address: write the endpoint with [::1], or have the server "
            "listen on both") in said, said
    assert (f"live: unreachable: nothing listening on [::1]:{four} (Connection refused), but a server listens on "
            f"127.0.0.1:{four}") in said, said
    assert f"nothing: unreachable: nothing listening on 127.0.0.1:{none} (Connection refused) " in said + " ", said


def test_an_endpoint_of_every_interface_says_to_write_the_servers_address(tmp_path: Path) -> None:
    """`endpoint: http://0.0.0.0:11434`, copied from the server's `OLLAMA_HOST=0.0.0.0` (where it listens): a client
    connecting there reaches this machine on Linux and macOS, nothing on Windows, never the other host it was meant
    for (ollama/ollama#2132: "you're making a request to 0.0.0.0"; ggozad/oterm#80). 'nothing listening on 0.0.0.0'
    said nothing of that; it names the address to write now."""
    port = free_port()
    path = config(tmp_path, f"http://0.0.0.0:{port}", f"http://127.0.0.1:{port}")
    out = CliRunner().invoke(app, ["models", "--config", str(path)], terminal_width=400)
    assert out.exit_code == 3, out.output  # no model can answer
    said = " ".join(out.output.split())
    assert (f"live: unreachable: nothing listening on 0.0.0.0:{port} (Connection refused); 0.0.0.0 is where a server "
            "listens (every interface), not an address to connect to: write the server's own address in the endpoint "
            "— 127.0.0.1 on this machine, the host's name or IP address for another") in said, said
    assert f"dead: unreachable: nothing listening on 127.0.0.1:{port} (Connection refused) " in said + " ", said
