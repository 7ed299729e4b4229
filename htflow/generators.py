"""Generators: which compositions to compute next.

A generator gets a :class:`ProposalContext` (the space, what is already
known, every result so far) and returns up to ``n`` new compositions. It must
be deterministic for a given context and seed, so a resumed campaign proposes
what an uninterrupted one would have. The surrogate-guided generators of the
active-learning issue plug in here, through the ``results`` they receive.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from htflow.errors import InputError
from htflow.space import CompositionSpace, composition_key
from htflow.structures import StructureBuilder


@dataclass
class ProposalContext:
    """Everything a generator may use to choose the next batch."""

    space: CompositionSpace
    builder: StructureBuilder
    known: set[str]
    round: int
    seed: int
    #: every result so far, without structures (key, round, status, composition, counts, objectives)
    results: list[dict] = field(default_factory=list)
    objective: Any = None
    #: every objective (the first is ``objective``); two or more make the search multi-objective
    objectives: list = field(default_factory=list)
    #: several objectives: the campaign's hypervolume reference point (fixed the first time)
    reference: list | None = None
    #: the elements' reference energies per atom and the user's reference phases (for the hull)
    references: dict | None = None
    phases: list | None = None
    #: what the generator wants recorded for this round (model metrics, predictions, pruned keys)
    report: dict = field(default_factory=dict)
    _pool: list[dict[str, float]] | None = None

    @property
    def pool(self) -> list[dict[str, float]]:
        """The enumerated grid (grid spaces only), computed once."""
        if self._pool is None:
            self._pool = self.space.pool()
        return self._pool

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator seeded by the campaign seed, the round and ``salt``."""
        return np.random.default_rng([self.seed, self.round, salt])


class Generator(Protocol):
    """Proposes compositions."""

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        """Return up to ``n`` compositions whose realised keys are not in ``ctx.known``."""


def realise_within(space: CompositionSpace, builder: StructureBuilder,
                   fractions: dict[str, float]) -> dict[str, int] | None:
    """Atom counts for ``fractions`` on the supercell that stay in the space, or None.

    Rounding to whole atoms can push an element past its bound (0.4 of 32 atoms is 12.8: 13
    atoms is 0.406); then single atoms move from elements over their bound to the present
    element with the most room, and to elements under their minimum from the one with the
    most to spare. Constraints are checked on the result.
    """
    counts = builder.realise(fractions)
    n = sum(counts.values())

    def ok(c: dict[str, int]) -> bool:
        return space.contains({el: k / n for el, k in c.items() if k}, 1e-9)

    if ok(counts):
        return counts
    if space.is_grid:  # grid points are realised exactly: nothing to move
        return None
    limits = space.limits
    lo = {el: math.ceil(limits[el][0] * n - 1e-9) for el in counts}
    hi = {el: math.floor(limits[el][1] * n + 1e-9) for el in counts}
    c = dict(counts)
    for _ in range(n):
        over = [el for el in c if c[el] > hi[el]]
        under = [el for el in c if c[el] < lo[el]]
        if not over and not under:
            break
        if over:
            src = over[0]
            dst = max((el for el in c if el != src and c[el] < hi[el]), key=lambda e: (hi[e] - c[e], e),
                      default=None)
        else:
            dst = under[0]
            src = max((el for el in c if el != dst and c[el] > lo[el]), key=lambda e: (c[e] - lo[e], e),
                      default=None)
        if src is None or dst is None:
            return None
        c[src] -= 1
        c[dst] += 1
    c = {el: k for el, k in c.items() if k}
    return c if ok(c) else None


class _Collector:
    """Accumulates realised, not yet known, distinct compositions."""

    def __init__(self, ctx: ProposalContext, n: int):
        self.ctx, self.n = ctx, n
        self.keys: set[str] = set()
        self.out: list[dict[str, float]] = []

    def add(self, fractions: dict[str, float]) -> bool:
        counts = realise_within(self.ctx.space, self.ctx.builder, fractions)
        if counts is None:
            return False
        total = sum(counts.values())
        realised = {el: c / total for el, c in counts.items()}
        key = composition_key(counts)
        if key in self.ctx.known or key in self.keys:
            return False
        self.keys.add(key)
        self.out.append(realised)
        return True

    @property
    def full(self) -> bool:
        return len(self.out) >= self.n


class GridGenerator:
    """Every grid point, in the space's fixed order (an exhaustive screen)."""

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        if not ctx.space.is_grid:
            raise InputError("search.sampler: grid needs space.mode: grid")
        c = _Collector(ctx, n)
        for point in ctx.pool:
            if c.full:
                break
            c.add(point)
        return c.out


class RandomGenerator:
    """Uniform random choice: from the pool (grid) or the simplex (continuous)."""

    max_tries = 200

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        c = _Collector(ctx, n)
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
        import warnings

        from scipy.stats import qmc

        d = len(ctx.space.elements) + 1
        engine = qmc.Sobol(d, scramble=True, seed=np.random.default_rng([ctx.seed, 0x50B0]))
        # Skip what earlier rounds drew: the sequence continues across rounds and resumes.
        if ctx.known:
            engine.fast_forward(per_known * len(ctx.known))
        with warnings.catch_warnings():  # balance properties need powers of two; not needed here
            warnings.simplefilter("ignore")
            return engine.random(count)

    def _tree(self, ctx: ProposalContext):
        """A k-d tree over the pool's fractions, built once per pool."""
        from scipy.spatial import cKDTree

        cached = getattr(self, "_cached_tree", None)
        if cached is None or cached[0] is not ctx.pool:
            els = ctx.space.elements
            tree = cKDTree(np.array([[p.get(e, 0.0) for e in els] for p in ctx.pool]))
            self._cached_tree = (ctx.pool, tree)
        return self._cached_tree[1]

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        c = _Collector(ctx, n)
        rng = ctx.rng(2)
        if not ctx.space.is_grid:
            for u in self._points(ctx, n * self.max_tries, self.max_tries):
                if c.full:
                    break
                point = ctx.space.sample(rng, u)
                if point is not None:
                    c.add(point)
            return c.out
        tree = self._tree(ctx)
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
        from htflow.pareto import crowding, ranks

        objectives = ctx.objectives or ([ctx.objective] if ctx.objective is not None else [])
        names = [o.name for o in objectives]
        goals = [o.goal for o in objectives]
        done = sorted((r for r in ctx.results if r.get("status") == "done"
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
        from htflow.structures import round_to_atoms

        parents = self._parents(ctx)
        if parents is None:
            ctx.report["phase"] = "initial (sobol)"
            return SobolGenerator().propose(ctx, n)
        X, fitness = parents
        ctx.report["phase"] = "genetic"
        els, space = ctx.space.elements, ctx.space
        rng = ctx.rng(11)
        c = _Collector(ctx, n)

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
            if space.is_grid:
                units = round(1 / space.step)
                fractions = {e: k / units for e, k in round_to_atoms(fractions, units).items() if k}
            c.add(fractions)
        if not c.full:  # the parents' neighbourhood is spent: fill with random compositions
            for point in RandomGenerator().propose(ctx, n):
                if c.full:
                    break
                c.add(point)
        return c.out


GENERATORS: dict[str, Callable[[], Generator]] = {
    "grid": GridGenerator,
    "random": RandomGenerator,
    "sobol": SobolGenerator,
    "ga": GeneticGenerator,
}


def get_generator(name: str, surrogate: Any = None) -> Generator:
    """A generator by name or ``package.module:object`` (a class or an instance).

    ``surrogate`` holds the settings of the ``surrogate`` sampler (``search.surrogate``).
    """
    if name == "surrogate":
        from htflow.active import SurrogateGenerator, settings

        return SurrogateGenerator(settings(surrogate))
    if name in GENERATORS:
        return GENERATORS[name]()
    if ":" in name:
        from htflow.calculators import import_object

        obj = import_object(name, "search.sampler")
        gen = obj() if isinstance(obj, type) else obj
        if not callable(getattr(gen, "propose", None)):
            raise InputError(f"search.sampler: {name!r} has no propose(ctx, n) method")
        return gen
    raise InputError(
        f"search.sampler: unknown sampler {name!r}; allowed: surrogate, {', '.join(GENERATORS)} "
        "or an import path package.module:object"
    )
