"""Several objectives for a single-objective model: ParEGO scalarisation (Knowles 2006)."""

from __future__ import annotations

import numpy as np

from htflow.settings import get_settings


def parego_scalarise(done: list[dict], objectives: list, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """ParEGO (Knowles 2006): objectives normalised to [0, 1] over ``done`` (0 best), weights drawn
    uniformly from the simplex, ``max_i(w_i f_i) + rho * sum_i(w_i f_i)`` (smaller is better)."""
    y = np.array([[float(r[o.name]) for o in objectives] for r in done])
    y = y * np.array([1.0 if o.goal == "minimize" else -1.0 for o in objectives])
    lo, hi = y.min(axis=0), y.max(axis=0)
    f = (y - lo) / np.where(hi > lo, hi - lo, 1.0)
    w = rng.dirichlet(np.ones(len(objectives)))
    return (f * w).max(axis=1) + get_settings().parego_rho * (f * w).sum(axis=1), [float(v) for v in w]


