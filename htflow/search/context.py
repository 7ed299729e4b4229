"""What a generator sees and the rules every generator follows.

A generator gets a :class:`ProposalContext` (the space, what is already
known, every result so far) and returns up to ``n`` new compositions. It must
be deterministic for a given context and seed, so a resumed campaign proposes
what an uninterrupted one would have. The surrogate-guided generators of the
active-learning issue plug in here, through the ``results`` they receive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from htflow.space.compositions import CompositionSpace, as_fractions, composition_key
from htflow.space.structures import StructureBuilder


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
    #: warm start: values of the first objective from elsewhere (imported data sets): one per
    #: composition and source, ``{"key", "composition", "value", "std", "n", "source"}``
    prior: list[dict] = field(default_factory=list)
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
    if getattr(builder, "exact", False):  # made as it is: in the space or not
        return counts if space.contains(as_fractions(counts), 1e-9) else None
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


class Collector:
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


