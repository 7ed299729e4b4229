"""Pareto fronts of several objectives (each minimised or maximised)."""

from __future__ import annotations

import numpy as np


def _as_minimised(values, goals: list[str]) -> np.ndarray:
    y = np.asarray(values, dtype=float)
    if y.ndim != 2 or y.shape[1] != len(goals):
        raise ValueError(f"values must be (n, {len(goals)}), got {y.shape}")
    sign = np.array([1.0 if g == "minimize" else -1.0 for g in goals])
    return y * sign


def pareto_mask(values, goals: list[str]) -> np.ndarray:
    """True for the rows no other row dominates (at least as good in every objective, better in one).

    Rows with a NaN are never on the front. Duplicated optimal rows are all kept.
    """
    y = _as_minimised(values, goals)
    ok = ~np.isnan(y).any(axis=1)
    mask = np.zeros(len(y), dtype=bool)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return mask
    z = y[idx]
    # z[j] dominates z[i]: all(z[j] <= z[i]) and any(z[j] < z[i]); done in blocks to bound memory
    keep = np.ones(len(z), dtype=bool)
    for start in range(0, len(z), 512):
        block = z[start:start + 512]
        le = (z[None, :, :] <= block[:, None, :]).all(axis=2)
        lt = (z[None, :, :] < block[:, None, :]).any(axis=2)
        keep[start:start + 512] = ~(le & lt).any(axis=1)
    mask[idx[keep]] = True
    return mask


def hypervolume(values, reference, goals: list[str]) -> float:
    """Exact hypervolume dominated by ``values`` up to ``reference`` (same units and goals).

    Points that do not strictly dominate the reference contribute nothing.
    Two objectives: a sweep, O(n log n); more: slicing along the last
    objective (exact; meant for fronts of up to a few hundred points).
    """
    y = _as_minimised(values, goals)
    sign = np.array([1.0 if g == "minimize" else -1.0 for g in goals])
    r = np.asarray(reference, dtype=float) * sign
    y = y[~np.isnan(y).any(axis=1)]
    y = y[(y < r).all(axis=1)]
    if not len(y):
        return 0.0
    y = y[pareto_mask(y, ["minimize"] * y.shape[1])]
    return float(_hv(np.unique(y, axis=0), r))


def _hv(y: np.ndarray, r: np.ndarray) -> float:
    n, d = y.shape
    if n == 0:
        return 0.0
    if d == 1:
        return float(r[0] - y[:, 0].min())
    if d == 2:
        hv, prev = 0.0, r[1]
        for x, z in y[np.lexsort((y[:, 1], y[:, 0]))]:
            if z < prev:
                hv += (r[0] - x) * (prev - z)
                prev = z
        return hv
    order = np.argsort(y[:, -1], kind="stable")
    hv = 0.0
    for k in range(n):
        lo = y[order[k], -1]
        hi = y[order[k + 1], -1] if k + 1 < n else r[-1]
        if hi > lo:
            sub = y[order[: k + 1], :-1]
            sub = sub[pareto_mask(sub, ["minimize"] * (d - 1))]
            hv += (hi - lo) * _hv(np.unique(sub, axis=0), r[:-1])
    return hv


def default_reference(values, goals: list[str], margin: float = 0.1) -> list[float]:
    """A reference point just beyond the worst value of each objective (by ``margin`` of its range)."""
    y = np.asarray(values, dtype=float)
    y = y[~np.isnan(y).any(axis=1)]
    lo, hi = y.min(axis=0), y.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    return [float(h + margin * s) if g == "minimize" else float(low - margin * s)
            for h, low, s, g in zip(hi, lo, span, goals, strict=True)]


def ranks(values, goals: list[str]) -> np.ndarray:
    """Non-dominated sorting: 0 for the Pareto front, 1 for the front without it, ... (NaN rows last)."""
    y = np.asarray(values, dtype=float)
    out = np.full(len(y), len(y), dtype=int)
    left = np.flatnonzero(~np.isnan(y).any(axis=1))
    level = 0
    while len(left):
        front = pareto_mask(y[left], goals)
        out[left[front]] = level
        left = left[~front]
        level += 1
    return out


def crowding(values) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (infinite at the ends)."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(y.shape[1]):
        order = np.argsort(y[:, j], kind="stable")
        span = y[order[-1], j] - y[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (y[order[2:], j] - y[order[:-2], j]) / span
    return dist
