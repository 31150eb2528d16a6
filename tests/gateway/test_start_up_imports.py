"""What the gateway's first request must not pay for: the HTTP client library's import.

``aiohttp`` is imported on first use (providers/http.py: ``modelyard models`` sends nothing and need not pay ~0.3 s
for it). Left to the first request, its import — 1.3–1.7 s measured here at load ~8 (``python -X importtime``) — ran
inside that attempt's first-token bound and on the event loop: a healthy model got ``first_token_timeout`` (and with
``cooldown.failures: 1`` its breaker opened), every other client waited, and
``tests/reliability/test_gateway_faults.py::test_cloud_key_revoked_while_requests_are_in_flight`` failed whenever it
ran first in its process. Now the gateway imports it while it starts, before it takes a request (and, since, the
runtime as it opens). Checked in a fresh interpreter: in this one another test may have imported it already. Failed
on the old code.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from tests.helpers import make_config
    from modelyard.gateway import create_app
    from modelyard.runtime import open_runtime

    config = make_config({"fast": {"provider": "openai", "endpoint": "http://127.0.0.1:9", "model": "m"}},
                         {"coder": {"primary": "fast"}}, log={"path": sys.argv[1]})
    app = create_app(open_runtime(config=config), close_runtime=True)
    before = "aiohttp" in sys.modules

    async def main() -> None:
        async with app.router.lifespan_context(app):  # what uvicorn runs before it accepts a connection
            print(before, "aiohttp" in sys.modules)

    asyncio.run(main())
""")


def test_the_http_client_is_imported_before_the_first_request(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "log.db")], capture_output=True, text=True,
                          timeout=120, cwd=root, env={"PYTHONPATH": f"{root / 'src'}:{root}", "PATH": "/usr/bin:/bin",
                                                      "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    # imported by the runtime the app is built on (runtime.py, as for ask and chat), and so before it starts serving
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr
