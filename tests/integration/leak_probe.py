"""A pytest plugin for a test of the tests (``-p tests.integration.leak_probe``): every ``Router.complete`` fails
once it has answered — the test's next assertion failing, as it were — and the session's end writes to
``$LEAK_PROBE_OUT`` how many routers and log writers the tests made and how many were left open. A test that
closes them in its last lines leaves them open when it fails; one that closes them in a fixture (or ``finally``)
does not."""

from __future__ import annotations

import json
import os
from typing import Any

from modelyard.ledger import LogWriter
from modelyard.router import Router

_routers: list[Router] = []
_writers: list[LogWriter] = []
_closed: set[int] = set()


def pytest_configure(config: Any) -> None:
    made, closing, complete, opened = Router.__init__, Router.aclose, Router.complete, LogWriter.__init__

    def init(self: Router, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        _routers.append(self)

    async def aclose(self: Router) -> None:
        _closed.add(id(self))
        await closing(self)

    async def failing(self: Router, *args: Any, **kwargs: Any) -> Any:
        await complete(self, *args, **kwargs)
        raise AssertionError("leak probe: the test fails here")

    def writer(self: LogWriter, *args: Any, **kwargs: Any) -> None:
        opened(self, *args, **kwargs)
        _writers.append(self)

    Router.__init__, Router.aclose, Router.complete = init, aclose, failing  # type: ignore[method-assign]
    LogWriter.__init__ = writer  # type: ignore[method-assign]


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    with open(os.environ["LEAK_PROBE_OUT"], "w") as out:
        json.dump({"routers": len(_routers), "routers_open": sum(id(r) not in _closed for r in _routers),
                   "writers": len(_writers), "writers_open": sum(not w._closed for w in _writers)}, out)
