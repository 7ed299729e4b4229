"""Space-filling and evolutionary samplers: grid, random, Sobol and a genetic algorithm.

Each is deterministic for a given :class:`~htflow.search.context.ProposalContext`
and seed, so a resumed campaign proposes what an uninterrupted one would.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import qmc

from htflow.analysis.pareto import crowding, ranks
from htflow.errors import InputError
from htflow.schemas.documents import Status
from htflow.search.context import Collector, Generator, ProposalContext
from htflow.space.structures import round_to_atoms

_TREES: dict[int, tuple[list, cKDTree]] = {}


def pool_tree(ctx: ProposalContext) -> cKDTree:
    """A k-d tree over the pool's fractions, built once per pool."""
    cached = _TREES.get(id(ctx.pool))
    if cached is None or cached[0] is not ctx.pool:
        els = ctx.space.elements
        _TREES.clear()  # one pool at a time: the tree of a finished campaign is not kept
        _TREES[id(ctx.pool)] = cached = (ctx.pool, cKDTree(np.array([[p.get(e, 0.0) for e in els]
                                                                       for p in ctx.pool])))
    return cached[1]


class GridGenerator:
    """Every grid point, in the space's fixed order (an exhaustive screen)."""

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        if not ctx.space.is_grid:
            raise InputError("search.sampler: grid needs space.mode: grid")
        c = Collector(ctx, n)
        for point in ctx.pool:
            if c.full:
                break
            c.add(point)
        return c.out


class RandomGenerator:
    """Uniform random choice: from the pool (grid) or the simplex (continuous)."""

    max_tries = 200

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        c = Collector(ctx, n)
        if ctx.space.is_grid:
            # One permutation per campaign: proposals are its not-yet-known prefix.
            order = np.random.default_rng([ctx.seed, 0xC0FFEE]).permutation(len(ctx.pool))
            for i in order:
                if c.full:
                    break
                c.add(ctx.pool[i])
            return c.out
        rng = ctx.rng(1)
        for _ in range(n * self.max_tries):
            if c.full:
                break
            point = ctx.space.sample(rng)
            if point is not None:
                c.add(point)
        return c.out


class SobolGenerator:
    """Scrambled Sobol points on the simplex (space-filling); on a grid, the nearest free point."""

    max_tries = 200

    def _points(self, ctx: ProposalContext, count: int, per_known: int) -> np.ndarray:
        d = len(ctx.space.elements) + 1
        engine = qmc.Sobol(d, scramble=True, seed=np.random.default_rng([ctx.seed, 0x50B0]))
        # Skip what earlier rounds drew: the sequence continues across rounds and resumes.
        if ctx.known:
            engine.fast_forward(per_known * len(ctx.known))
        with warnings.catch_warnings():  # balance properties need powers of two; not needed here
            warnings.simplefilter("ignore")
            return engine.random(count)

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        c = Collector(ctx, n)
        rng = ctx.rng(2)
        if not ctx.space.is_grid:
            for u in self._points(ctx, n * self.max_tries, self.max_tries):
                if c.full:
                    break
                point = ctx.space.sample(rng, u)
                if point is not None:
                    c.add(point)
            return c.out
        tree = pool_tree(ctx)
        k = min(len(ctx.pool), 64)
        for u in self._points(ctx, n * 4, 4):
            if c.full:
                break
            w = -np.log(np.clip(u[:-1], 1e-12, 1.0))
            _, idx = tree.query(w / w.sum(), k=k)
            for i in np.atleast_1d(idx):
                if c.add(ctx.pool[int(i)]):
                    break
        if not c.full:  # neighbourhoods exhausted: fill from the rest in pool order
            for point in ctx.pool:
                if c.full:
                    break
                c.add(point)
        return c.out


class GeneticGenerator:
    """The ``ga`` sampler: a genetic algorithm over compositions, no surrogate.

    Every round rebuilds its population from the results (so it is
    deterministic and resumes exactly): the ``population`` best by
    non-dominated rank, then NSGA-II crowding (one objective: by value).
    Children are convex blends of two tournament winners (a blend of two
    points on the simplex stays on it), mutated with probability ``mutation``
    by moving up to ``sigma`` of the fraction to a random element of the space
    (how new elements enter), cut to ``max_elements``, snapped to the grid
    and kept only if the space and its constraints allow them. The first
    ``initial`` evaluations are Sobol points.
    """

    def __init__(self, initial: int = 8, population: int = 16, mutation: float = 0.5, sigma: float = 0.25):
        self.initial, self.population, self.mutation, self.sigma = initial, population, mutation, sigma

    def _parents(self, ctx: ProposalContext) -> tuple[np.ndarray, np.ndarray] | None:
        objectives = ctx.objectives or ([ctx.objective] if ctx.objective is not None else [])
        names = [o.name for o in objectives]
        goals = [o.goal for o in objectives]
        done = sorted((r for r in ctx.results if r.get("status") == Status.DONE
                       and all(r.get(k) is not None for k in names)), key=lambda r: r["key"])
        if len(done) < max(self.initial, 2):
            return None
        els = ctx.space.elements
        X = np.array([[r["composition"].get(e, 0.0) for e in els] for r in done])
        Y = np.array([[float(r[k]) for k in names] for r in done])
        rank = ranks(Y, goals)
        crowd = np.zeros(len(done))
        for level in np.unique(rank):
            idx = np.flatnonzero(rank == level)
            crowd[idx] = crowding(Y[idx])
        order = np.lexsort((-crowd, rank))[: self.population]  # rank first, then crowding
        return X[order], np.arange(len(order))  # position in ``order`` is the fitness (lower = better)

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        parents = self._parents(ctx)
        if parents is None:
            ctx.report["phase"] = "initial (sobol)"
            return SobolGenerator().propose(ctx, n)
        X, fitness = parents
        ctx.report["phase"] = "genetic"
        els, space = ctx.space.elements, ctx.space
        rng = ctx.rng(11)
        c = Collector(ctx, n)

        def tournament() -> np.ndarray:
            i, j = rng.integers(len(X), size=2)
            return X[i] if fitness[i] <= fitness[j] else X[j]

        for _ in range(n * 200):
            if c.full:
                break
            a = rng.random()
            child = a * tournament() + (1 - a) * tournament()
            if rng.random() < self.mutation:
                i = rng.integers(len(els))
                donors = np.flatnonzero((child > 0) & (np.arange(len(els)) != i))
                if len(donors):
                    j = rng.choice(donors)
                    move = min(child[j], rng.random() * self.sigma)
                    child[j] -= move
                    child[i] += move
            keep = np.argsort(-child, kind="stable")[: space.max_elements]
            trimmed = np.zeros_like(child)
            trimmed[keep] = child[keep]
            if trimmed.sum() <= 0:
                continue
            fractions = {e: float(v) for e, v in zip(els, trimmed / trimmed.sum(), strict=True) if v > 0}
            if space.points is not None:  # a list: the nearest listed composition
                _, i = pool_tree(ctx).query([fractions.get(e, 0.0) for e in els])
                fractions = ctx.pool[int(i)]
            elif space.is_grid:
                units = round(1 / space.step)
                fractions = {e: k / units for e, k in round_to_atoms(fractions, units).items() if k}
            c.add(fractions)
        if not c.full:  # the parents' neighbourhood is spent: fill with random compositions
            for point in RandomGenerator().propose(ctx, n):
                if c.full:
                    break
                c.add(point)
        return c.out


#: samplers that need no model (also the initial samplers of the surrogate sampler)
SPACE_FILLING: dict[str, Callable[[], Generator]] = {
    "grid": GridGenerator,
    "random": RandomGenerator,
    "sobol": SobolGenerator,
    "ga": GeneticGenerator,
}
