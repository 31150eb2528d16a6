"""`init --detect --endpoint HOST` says why nothing was found at a host: a name that does not resolve is said as that.

The README's own step is `modelyard init --detect --force --endpoint gpu-box`; with a name this machine cannot resolve
(a typo, a `.lan` name outside that network, a Docker service name from the host — langgenius/dify#20856 "Failed to
resolve 'ollama'", ivanfioravanti/chatbot-ollama#16 "getaddrinfo ENOTFOUND host.docker.internal", ollama/ollama#8761
an `OLLAMA_HOST` no lookup could resolve) every port asked said only `nothing found (connect_error)` — the words of
a server that is down. `.invalid` is reserved never to resolve (RFC 2606, section 2).
"""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from modelyard.cli import app


def test_a_name_that_does_not_resolve_is_said_once_for_its_ports(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["init", str(tmp_path / "c.yaml"), "--detect", "--endpoint", "gpu-box.invalid"],
                             env={"COLUMNS": "400"})
    assert out.exit_code == 1, out.output
    asked = [line for line in out.stdout.splitlines() if line.startswith("  http://gpu-box.invalid:")]
    # Ollama's, llama-server's, LM Studio's, vLLM's usual ports, on one line (it was said four times)
    assert asked == [asked[0]] and "http://gpu-box.invalid:11434, :8080, :1234, :8000: " in asked[0], out.stdout
    assert "nothing found (connect_error): the name gpu-box.invalid does not resolve here" in asked[0], asked
    assert "a typo in the endpoint's host, or no network or DNS on this machine" in asked[0], asked
    assert not (tmp_path / "c.yaml").exists()


def test_a_port_nothing_listens_on_says_so(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = CliRunner().invoke(app, ["init", str(tmp_path / "c.yaml"), "--detect", "--endpoint", f"127.0.0.1:{port}"],
                             env={"COLUMNS": "400"})
    assert out.exit_code == 1, out.output
    assert (f"  http://127.0.0.1:{port}: nothing found (connect_error): nothing listening on 127.0.0.1:{port} "
            "(Connection refused)") in out.stdout, out.stdout
