"""``modelyard serve``: the OpenAI-compatible gateway with metrics and the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.common import ConfigOption, console, fail, load_or_exit


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: gateway.host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: gateway.port, 8765)", min=1, max=65535)] = None,
    access_log: Annotated[bool, typer.Option(help="Log one line per HTTP request")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    keep_warm: Annotated[bool, typer.Option(help="Load local models at start and keep them loaded")] = True,
) -> None:
    """Serve agents and models over an OpenAI-compatible HTTP API, with /metrics and a dashboard."""
    from modelyard.gateway.auth import InsecureBind
    from modelyard.gateway.server import serve as run_server

    cfg, path = load_or_exit(config)
    try:
        run_server(cfg, path, host=host, port=port, access_log=access_log, log_level=log_level,
                   keep_warm=keep_warm, announce=lambda line: console.print(line, highlight=False, markup=False))
    except InsecureBind as exc:
        raise fail(str(exc)) from None
