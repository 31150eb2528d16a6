"""The fast path's members and their votes: linear models over a message's features, turned into probabilities.

A member's class scores are Σ over the views it reads of weights · features + bias, then a softmax (multinomial
logistic regression and naive Bayes alike). Four of the five members read the same two sparse views (word and
character TF-IDF), so :class:`Stacked` keeps their weights side by side per view — features × (member, class), so a
message's features gather contiguous rows — and scores them with one gather and one product per view instead of one
per member and view, and one softmax for all (round 23: a third of the votes' CPU). The arithmetic per score is the
same; only the order of a dot product's additions may differ (float noise, ~1e-16).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: a view's features: column indices and weights; indices None for a dense vector (every column, in order)
Features = tuple["NDArray | None", "NDArray"]


@dataclass(slots=True)
class Member:
    """One linear model of the ensemble."""

    weights: dict[Hashable, NDArray]  # classes × features of that view
    bias: NDArray

    def __post_init__(self) -> None:
        """A logistic regression of two classes comes as one row (scikit-learn's ``coef_`` of shape (1, n): the
        second class's score against the first's); naive Bayes as two. An orchestrator over two agents then ended
        `route` and every routed `ask` in numpy's "all the input array dimensions … must match" (a newcomer's walk):
        the row is made the two rows a multinomial fit gives, −w/2 and +w/2 — the same probabilities."""
        if len(self.bias) != 1:
            return
        import numpy as np

        self.weights = {view: np.vstack([-matrix / 2, matrix / 2]) for view, matrix in self.weights.items()}
        self.bias = np.concatenate([-self.bias / 2, self.bias / 2])

    def scores(self, features: Mapping[Any, Features]) -> NDArray:
        """Class scores before the softmax."""
        z = self.bias.copy()
        for view, matrix in self.weights.items():
            index, weight = features[view]
            # a dense vector: the weights as stored, which is the layout (C or Fortran) the gather of every column had,
            # so the same BLAS call and the same float32 sums
            z += matrix @ weight if index is None else matrix[:, index] @ weight
        return z

    def proba(self, features: Mapping[Any, Features]) -> NDArray:
        return softmax(self.scores(features))


def softmax(z: NDArray) -> NDArray:
    """Row-wise (or of a vector) softmax, as each member computed its own."""
    import numpy as np

    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Stacked:
    """Members that read sparse views only, scored together (see the module's doc). Their ``weights`` become
    views into the stacked arrays, so the weights are held once."""

    def __init__(self, members: Sequence[Member]):
        import numpy as np

        self.members = list(members)
        classes = len(self.members[0].bias) if self.members else 0
        self._bias = np.vstack([m.bias for m in self.members]) if self.members else np.zeros((0, 0))
        order: list[Hashable] = []
        for member in self.members:
            order.extend(v for v in member.weights if v not in order)
        #: per view: its weights (features × columns) and where each column's score goes in the flat scores
        self._views: list[tuple[Hashable, NDArray, NDArray]] = []
        for view in order:
            readers = [(i, m) for i, m in enumerate(self.members) if view in m.weights]
            stacked = np.ascontiguousarray(np.hstack([m.weights[view].T for _, m in readers]))
            at = np.concatenate([np.arange(i * classes, (i + 1) * classes) for i, _ in readers])
            self._views.append((view, stacked, at))
            for j, (_, member) in enumerate(readers):
                member.weights[view] = stacked[:, j * classes:(j + 1) * classes].T

    def scores(self, features: Mapping[Any, Features]) -> NDArray:
        """Each member's class scores before the softmax (members × classes); the views added in each member's order
        (the views are met in the order the members list them)."""
        z = self._bias.copy()
        flat = z.reshape(-1)
        for view, stacked, at in self._views:
            index, weight = features[view]
            assert index is not None
            flat[at] += weight @ stacked[index]
        return z


def vote(stacked: Stacked, others: Sequence[Member], features: Mapping[Any, Features]) -> NDArray:
    """Each member's probabilities (members × classes): the stacked ones', then ``others``' in order."""
    import numpy as np

    votes = softmax(stacked.scores(features))
    # each of the others on its own: a float32 member's softmax is in float32, as it always was
    return np.vstack([votes, *(member.proba(features) for member in others)]) if others else votes
