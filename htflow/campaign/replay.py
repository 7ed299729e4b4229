"""Replay search strategies against a ground-truth pool (benchmarks and tests).

:func:`replay` runs a generator round by round exactly as a campaign does
(the same :class:`ProposalContext`, the same result summaries, ordered the
same way) but looks each proposal up in a table instead of running a flow
and storing it, so one campaign over thousands of compositions takes
seconds. ``tests/test_active.py`` checks that a replay proposes what a real
campaign with the ``lookup`` calculator proposes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from htflow.calculators.flows import formation_energy
from htflow.calculators.lookup import load_table
from htflow.schemas.config import CampaignConfig
from htflow.schemas.documents import Status
from htflow.search.context import Generator, ProposalContext
from htflow.space.build import build_space, make_builder
from htflow.space.compositions import composition_key
from htflow.space.structures import StructureBuilder


@dataclass
class Trace:
    """One replayed campaign: what was evaluated, in order, and the model's reports."""

    keys: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)

    def best_so_far(self, minimize: bool = True) -> np.ndarray:
        v = np.asarray(self.values, float)
        return np.minimum.accumulate(v) if minimize else np.maximum.accumulate(v)

    def evaluations_to(self, keys: set[str], batch_size: int) -> int | None:
        """Evaluations spent (whole batches) until any of ``keys`` was computed; None if never."""
        for i, k in enumerate(self.keys):
            if k in keys:
                return self.rounds[i] * batch_size
        return None


def pool_values(config: CampaignConfig, table: str) -> dict[str, float]:
    """The objective of every grid point of ``config``'s space, from ``table``."""
    space = build_space(config.space)
    builder = StructureBuilder(config.structure.prototype, config.structure.n_atoms)
    _, rows = load_table(table)
    refs = {el: rows[composition_key({el: 1})]["energy_per_atom"] for el in space.elements}
    out = {}
    name = config.objective.name
    for p in space.pool():
        counts = builder.realise(p)
        row = rows[composition_key(counts)]
        if name == "formation_energy_per_atom":
            out[composition_key(counts)] = formation_energy(row["energy_per_atom"], counts, refs)
        else:
            out[composition_key(counts)] = row[name]
    return out


def replay(config: CampaignConfig, generator: Generator, values: dict[str, float], budget: int,
           stop: Callable[[Trace], bool] | None = None, prior: list[dict] | None = None) -> Trace:
    """Run ``generator`` on ``config``'s space against ``values`` until ``budget`` or ``stop``
    (``prior``: warm-start rows, as :attr:`ProposalContext.prior`)."""
    space = build_space(config.space)
    builder = make_builder(config)  # a supercell's whole atoms, or (experiment campaigns) exact compositions
    name = config.objective.name
    search = config.search
    results: list[dict] = []
    known: set[str] = set()
    trace = Trace()
    pool = None
    rnd = 0
    while len(known) < budget:
        rnd += 1
        ctx = ProposalContext(space=space, builder=builder, known=set(known), round=rnd, seed=search.seed,
                              results=list(results), objective=config.objective, prior=prior or [],
                              _pool=pool)
        proposals = generator.propose(ctx, min(search.batch_size, budget - len(known)))
        pool = ctx._pool
        trace.reports.append(ctx.report)
        if not proposals:
            break
        for fractions in proposals:
            counts = builder.realise(fractions)
            key = composition_key(counts)
            if key in known:
                continue
            known.add(key)
            total = sum(counts.values())
            value = values[key]
            results.append({"key": key, "round": rnd, "status": Status.DONE.value, "counts": counts,
                            "composition": {el: c / total for el, c in counts.items()}, name: value})
            trace.keys.append(key)
            trace.values.append(value)
            trace.rounds.append(rnd)
        if stop is not None and stop(trace):
            break
    return trace
