"""One htflow plug-in of each kind, registered through entry points (see pyproject.toml).

Each is small but real: the calculator is EMT with its own name, the sampler
proposes the pure elements first and then random compositions, the surrogate
predicts the mean of what it saw with the spread as its uncertainty, the
featurizer counts the elements present, and the acquisition prefers the lowest
predicted mean.
"""

from __future__ import annotations

import numpy as np
from atomate2.ase.jobs import EmtRelaxMaker

from htflow.calculators.base import EMT_ELEMENTS, CalculatorSpec, ase_relax_kwargs
from htflow.search.context import Collector, ProposalContext

DEMO_EMT = CalculatorSpec("demo-emt", lambda cfg: EmtRelaxMaker(**ase_relax_kwargs(cfg)), EMT_ELEMENTS,
                          meta={"method": "EMT through the demo plug-in"})


class CornersFirst:
    """Pure elements first (in the space's order), then uniform random compositions."""

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        c = Collector(ctx, n)
        for el in ctx.space.elements:
            if c.full:
                return c.out
            c.add({el: 1.0})
        rng = ctx.rng(99)
        for _ in range(200 * n):
            if c.full:
                break
            point = ctx.space.sample(rng)
            if point is not None:
                c.add(point)
        return c.out


class MeanModel:
    """Predicts the mean of the training targets everywhere; their spread is its uncertainty."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> MeanModel:
        self.mean, self.std = float(np.mean(y)), float(np.std(y) or 1.0)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(X), self.mean), np.full(len(X), self.std)


class ElementCount:
    """One feature: how many elements a composition has."""

    def __init__(self, elements: list[str]):
        self.elements = elements

    def labels(self) -> list[str]:
        return ["n_elements"]

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        return (fractions > 0).sum(axis=1, keepdims=True).astype(float)


def lowest_mean(mean: np.ndarray, std: np.ndarray, best: float, rng=None, **_) -> np.ndarray:
    """Larger is better: the negative predicted mean."""
    return -np.asarray(mean, float)
