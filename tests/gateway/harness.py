"""Run the real gateway app under uvicorn on a loopback port, in a background thread.

The runtime is opened here (against fake backends) and closed by the app's lifespan when
the server stops, exactly as ``modelyard serve`` does.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import warnings
from typing import Any, Self

import uvicorn

from modelyard.config import Config
from modelyard.gateway import Gateway, create_app
from modelyard.gateway.transport import OneWriteProtocol
from modelyard.runtime import Runtime, open_runtime
from tests.fakes.server import poll
from tests.helpers import make_config


class GatewayServer:
    """``http``: uvicorn's protocol; by default the one ``modelyard serve`` runs (gateway/transport.py);
    ``uvicorn_options``: more of ``uvicorn.Config`` (``timeout_keep_alive``...); ``sndbuf``: the send buffer of every
    connection (set on the listening socket, which accepted ones inherit; else the kernel's autotuning, to 4 MiB)."""

    def __init__(self, config: Config, *, api_keys: tuple[str, ...] = (), http: Any = OneWriteProtocol,
                 sndbuf: int | None = None, **uvicorn_options: Any):
        self.http = http
        self.sndbuf = sndbuf
        self.uvicorn_options = uvicorn_options
        self.runtime: Runtime = open_runtime(config=config)
        self.app = create_app(self.runtime, api_keys=tuple(k.encode() for k in api_keys), close_runtime=True)
        self.gateway: Gateway = self.app.state.gateway
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        #: names of the tasks the server's shutdown left running (see :meth:`_drain`)
        self.left: list[str] = []

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                     timeout_graceful_shutdown=1, http=self.http,
                                                     **self.uvicorn_options))

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._server.serve(sockets=[sock]))  # type: ignore[union-attr]
            finally:
                sock.close()
                self._drain(self.loop)
                self.loop.close()

        self._thread = threading.Thread(target=run, name="gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 5
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.005)
        return self

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tasks the server's shutdown left running (the runtime's close should have ended them all) are named here,
        in the test that started them, then cancelled and awaited as ``asyncio.run`` does: closing the loop over
        them left them pending, and the collector destroyed them later in whichever test it ran — in clean-clone CI
        a Redis grants listener, mid-``ast.parse`` in test_layers."""
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
        if not left:
            return
        self.left = sorted(t.get_name() for t in left)
        warnings.warn(f"the gateway's shutdown left tasks running: {', '.join(self.left)}", RuntimeWarning,
                      stacklevel=1)
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.wait(left, timeout=5))
        loop.run_until_complete(loop.shutdown_asyncgens())

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def router(self):
        return self.gateway.router

    def wait_for(self, predicate, timeout: float = 5.0):
        return poll(predicate, timeout)


def fake_config(tmp_path, openai_url: str, ollama_url: str, anthropic_url: str, **extra: Any) -> Config:
    """Three fake backends; agents cover primary-only, local fallback, and cloud-then-local."""
    models = {
        "fast": {"provider": "openai", "endpoint": openai_url, "model": "fast-model", "max_concurrent": 2},
        "backup": {"provider": "ollama", "endpoint": ollama_url, "model": "backup-model", "max_concurrent": 2},
        "cloud": {"provider": "anthropic", "endpoint": anthropic_url, "model": "claude-test",
                  "api_key_env": "GATEWAY_TEST_ANTHROPIC_KEY", "max_concurrent": 2,
                  "price": {"input": 1.0, "output": 5.0}},
    }
    agents = {
        "coder": {"primary": "fast", "fallbacks": ["backup"], "description": "writes code"},
        "writer": {"primary": "cloud", "fallbacks": ["fast"]},
        "solo": {"primary": "fast"},
    }
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 3, "idle": 3, "total": 20},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")}, **extra)
