"""One machine, several front-ends: a running ``serve`` lends its slots and breakers to ``ask``,
``chat`` and ``telegram`` over a private unix socket, so limits hold machine-wide without Redis."""

from modelyard.router.lending.registry import Discovery, ServeEntry, discover

__all__ = ["Discovery", "ServeEntry", "discover"]
