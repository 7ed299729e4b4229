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


def pareto_plot(results: list[dict], objectives: list, path, title: str = ""):
    """The first two objectives against each other, the Pareto front drawn through; PNG path or None."""
    from htflow.report import _label, _plt, _save

    if len(objectives) < 2:
        return None
    a, b = objectives[0], objectives[1]
    rows = [r for r in results if r.get("status", "done") == "done"
            and r.get(a.name) is not None and r.get(b.name) is not None]
    if len(rows) < 2:
        return None
    y = np.array([[r[a.name], r[b.name]] for r in rows], dtype=float)
    front = pareto_mask(y, [a.goal, b.goal])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.scatter(y[~front, 0], y[~front, 1], s=14, alpha=0.5, color="C0", label="evaluated")
    order = np.argsort(y[front, 0])
    ax.plot(y[front, 0][order], y[front, 1][order], "o-", color="C3", ms=5,
            label=f"Pareto front ({int(front.sum())})")
    ax.set_xlabel(f"{_label(a.name)} — {a.goal}")
    ax.set_ylabel(f"{_label(b.name)} — {b.goal}")
    ax.set_title(title or "trade-off between the first two objectives")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path, plt)
