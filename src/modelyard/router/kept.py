"""The share of a request's time an attempt leaves the models after it, until the client has been sent something.

``timeouts.total`` bounds the whole request, every attempt included; the first-token and idle bounds catch a model
that says nothing. A model that keeps answering, only slowly — a token every few seconds from an overloaded local
server, a relay trickling its upstream — passes both, and an answer nothing of which has reached the client yet (a
buffered request; a stream still thinking) spent the whole total on it: its fallbacks were never asked and the request
failed with ``deadline`` (users of peer routers report the same shape: "a ~2 tok/s turn never times out, never
retries, and never falls back", code-yeongyu/senpi#1739; fast first token, then 0.8–1.6 tok/s until a downstream
timeout, maximhq/bifrost#6472; a per-model timeout equal to the run's leaves the fallback no time,
openclaw/openclaw#43400). A throughput floor is the wrong bound (senpi reverted its own: it failed healthy
thinking-heavy turns, senpi#1759), so the bound is the request's time itself: such an attempt ends where the next
model that may be asked would no longer have its own first-token bound left (at least half of the time the attempt
began with is its own). Once the client has the answer's start, nothing is cut to make room: the total ends it, said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelyard.errors import ProviderError, Reason
from modelyard.router.state import ModelState


class _Usable(Protocol):
    def unavailable_reason(self) -> str | None: ...


class _FirstToken(Protocol):
    @property
    def first_token(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Kept:
    """The time kept for ``model``, the next one of the chain that may be asked: its first-token bound."""

    seconds: float
    model: str

    def cut(self, started: float, deadline: float) -> float:
        """Where an attempt begun at ``started`` ends while it has sent the client nothing."""
        return max(deadline - self.seconds, started + (deadline - started) / 2)

    def cut_short(self, pieces: int, spent: float, *, begun: bool) -> ProviderError:
        """The failure of an attempt ended where this time begins: the policy for a model too slow for the chain.

        It counts towards the model's cooldown, as the bounds of its own do (chats only: an embeddings batch's time
        is the work asked, errors.WORK_TIMEOUTS). Not counted, a model that is always that slow — an overloaded
        local server, a relay trickling its upstream — was asked first by every request, each of which waited most of
        ``timeouts.total`` before its fallback was asked; counted, ``cooldown.failures`` such cuts in a row cool it
        and the fallback is asked at once until its probe. Nothing yet: the first token did not come in the time the
        attempt had, a ``first_token_timeout`` (so an Ollama model being loaded is still not cooled for it); once
        something came (``begun``): ``too_slow``. Once the client has the answer's start nothing is cut: neither comes
        then."""
        if begun:
            return ProviderError(Reason.TOO_SLOW, self.said(pieces, spent))
        return ProviderError(Reason.FIRST_TOKEN_TIMEOUT, self.said(pieces, spent))

    def said(self, pieces: int, spent: float) -> str:
        """The attempt's detail: how far it got, and for whom the rest of the time was kept."""
        got = (f"{pieces} token{'s' * (pieces != 1)} in {spent:.1f}s ({pieces / spent:.2f} tok/s)" if pieces
               else f"no answer in {spent:.1f}s")
        return (f"{got} and nothing sent to the client yet: the request's last {self.seconds:g}s kept for "
                f"{self.model}")


def kept_for(chain: Sequence[str], index: int, states: Mapping[str, ModelState], providers: Mapping[str, _Usable],
             agent: str, bounds_of: Callable[[str, str], _FirstToken]) -> Kept | None:
    """What the attempt of ``chain[index]`` leaves the first later model that may be asked now (not cooling down,
    usable here), or None when there is none: then it may use the request's whole time."""
    for model in chain[index + 1:]:
        if states[model].cooling()[0] or providers[model].unavailable_reason():
            continue
        return Kept(bounds_of(agent, model).first_token, model)
    return None
