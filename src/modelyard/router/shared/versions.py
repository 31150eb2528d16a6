"""Processes of another modelyard version on the same Redis prefix — said, not silent.

Two versions share a model's limit only where they name its keys alike and their scripts follow the same rules. They
have not always: a model on a loopback endpoint, or the embedded one, was counted team-wide (``PREFIX:{model}``) before
its slots became each host's own (``PREFIX:{model@host}``), so an older and a newer process on one host each handed
out the whole ``max_concurrent`` of that host's server; and before the caps (:data:`.lua.CAPS`) an older process grants
up to its own config's limit, not the smallest. Nothing said so: each process saw only its own count.

So every process registers, beside its limits (the instance entry's JSON, ``PREFIX:configs``), the version of the
slots' protocol it speaks (:data:`PROTOCOL` under :data:`KEY`), and a process that finds a live one with another — or
none, a version from before the marker — says so (a warning, ``/healthz``'s state detail, ``models``), naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the version of the slots' protocol: the keys' layout and what the scripts do with them. Raise it with any change a
#: process of the version before would not follow (a key renamed, a rule of a script another version would break)
PROTOCOL = 1
#: where a process's registered limits say it (an older version registers none; never a model's name)
KEY = "@slots"
#: how a finding starts among the link's disagreements
SAID = "modelyard version: "

#: what it risks and what to do, said once in the log and in /healthz's state detail
RISK = ("a process of another version may count a model's slots under other keys (a model on a loopback endpoint or "
        "the embedded one: PREFIX:{model} in versions before per-host slots, PREFIX:{model@host} since) or by other "
        "rules (up to its own max_concurrent, not the smallest of every config), so the backend may get both "
        "versions' limits at once — run one modelyard version on every host of this prefix (upgrade or stop the "
        "others)")


def finding(theirs: Mapping[str, Any], where: str) -> str | None:
    """What to say of a live process (``theirs``: its registered limits; ``where``: its instance entry) whose slots'
    protocol is not this one's; None when it is."""
    protocol = theirs.get(KEY)
    if protocol == PROTOCOL:
        return None
    if protocol is None:
        return f"{SAID}a version older than this one's slots protocol {PROTOCOL} (it registers none) at {where}"
    return f"{SAID}slots protocol {protocol} there, {PROTOCOL} here, at {where}"
