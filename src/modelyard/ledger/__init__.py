"""The routing log: every request and attempt in SQLite, written off the request path."""

from modelyard.ledger.db import connect
from modelyard.ledger.writer import LogWriter

__all__ = ["LogWriter", "connect"]
