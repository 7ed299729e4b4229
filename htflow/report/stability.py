"""Stability and trade-off plots: the convex hull (binary or ternary) and the Pareto front of two
objectives."""

from __future__ import annotations

from typing import Any

import numpy as np

from htflow.analysis.hull import phase_diagram
from htflow.analysis.pareto import pareto_mask
from htflow.report.style import figure, label, save
from htflow.schemas.documents import Status


def _triangle(f: np.ndarray) -> np.ndarray:
    """Ternary fractions as points of the composition triangle."""
    return np.c_[f[:, 1] + f[:, 2] / 2, f[:, 2] * np.sqrt(3) / 2]


def _ternary(ax: Any, pd: Any, els: list, frac: np.ndarray, ehull: np.ndarray, is_stable: np.ndarray,
             cmap: str, vmax: float) -> Any:
    """The composition triangle with the hull's tie lines; returns the scatter of unstable entries."""
    corners = _triangle(np.eye(3))
    ax.plot(*np.vstack([corners, corners[:1]]).T, color="0.6", lw=1)
    for el, (cx, cy) in zip(els, corners, strict=True):
        ax.annotate(el.symbol, (cx, cy), textcoords="offset points", xytext=(0, -12 if cy == 0 else 6),
                    ha="center", fontsize=10, weight="bold")
    qfrac = [[e.composition.get_atomic_fraction(el) for el in els] for e in pd.qhull_entries]
    qxy = _triangle(np.array(qfrac))
    for facet in pd.facets:
        for a in range(len(facet)):
            for b in range(a + 1, len(facet)):
                ax.plot(*qxy[[facet[a], facet[b]]].T, color="k", lw=0.8, zorder=1)
    p = _triangle(frac)
    sc = ax.scatter(p[~is_stable, 0], p[~is_stable, 1], c=ehull[~is_stable], cmap=cmap, vmin=0,
                    vmax=vmax, s=22, zorder=2)
    ax.scatter(p[is_stable, 0], p[is_stable, 1], color="C3", s=36, marker="s", zorder=3, label="on the hull")
    ax.set_aspect("equal")
    ax.axis("off")
    return sc


def hull_plot(results: list[dict], references: dict[str, float], path: Any, title: str = "",
              phases: list[dict] | None = None) -> Any:
    """The convex hull of a binary (formation energy against composition) or ternary (composition
    triangle with the hull's tie lines) system; PNG path, or None for another number of elements
    or no results. Stable entries are labelled; the others are coloured by energy above hull."""
    pd = phase_diagram(results, references, phases)
    if pd is None or len(pd.elements) not in (2, 3):
        return None
    els = sorted(pd.elements, key=lambda e: e.symbol)
    stable = set(pd.stable_entries)
    entries = list(pd.all_entries)
    ehull = np.array([max(0.0, pd.get_e_above_hull(e, allow_negative=True)) for e in entries])
    form = np.array([pd.get_form_energy_per_atom(e) for e in entries])
    frac = np.array([[e.composition.get_atomic_fraction(el) for el in els] for e in entries])
    is_stable = np.array([e in stable for e in entries])
    fig, ax = figure(figsize=(6.4, 4.8), dpi=120)
    cmap = "viridis"  # as the composition map: low values dark, high values yellow
    vmax = max(float(ehull.max()), 1e-3)
    if len(els) == 2:
        x = frac[:, 1]
        order = np.argsort(x[is_stable])
        ax.plot(x[is_stable][order], form[is_stable][order], "-", color="k", lw=1.2, zorder=1)
        sc = ax.scatter(x[~is_stable], form[~is_stable], c=ehull[~is_stable], cmap=cmap, vmin=0,
                        vmax=vmax, s=22, zorder=2)
        ax.scatter(x[is_stable], form[is_stable], color="C3", s=36, marker="s", zorder=3, label="on the hull")
        ax.set_xlabel(f"fraction of {els[1].symbol} (rest {els[0].symbol})")
        ax.set_ylabel("formation energy (eV/atom)")
    else:
        sc = _ternary(ax, pd, els, frac, ehull, is_stable, cmap, vmax)
    xs = frac[:, 1] if len(els) == 2 else None
    for k in np.flatnonzero(is_stable):
        if len(entries[k].composition.elements) > 1:
            pos = (xs[k], form[k]) if xs is not None else tuple(_triangle(frac[k:k + 1])[0])
            ax.annotate(entries[k].composition.reduced_formula, pos, textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
    if (~is_stable).any():
        fig.colorbar(sc, ax=ax, label="energy above hull (eV/atom)", shrink=0.8)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or f"convex hull: {'-'.join(e.symbol for e in els)}", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def pareto_plot(results: list[dict], objectives: list, path, title: str = ""):
    """The first two objectives against each other, the Pareto front drawn through; PNG path or None."""
    if len(objectives) < 2:
        return None
    a, b = objectives[0], objectives[1]
    rows = [r for r in results if r.get("status", Status.DONE) == Status.DONE
            and r.get(a.name) is not None and r.get(b.name) is not None]
    if len(rows) < 2:
        return None
    y = np.array([[r[a.name], r[b.name]] for r in rows], dtype=float)
    front = pareto_mask(y, [a.goal, b.goal])
    fig, ax = figure(figsize=(6, 4.5), dpi=120)
    ax.scatter(y[~front, 0], y[~front, 1], s=14, alpha=0.5, color="C0", label="evaluated")
    order = np.argsort(y[front, 0])
    ax.plot(y[front, 0][order], y[front, 1][order], "o-", color="C3", ms=5,
            label=f"Pareto front ({int(front.sum())})")
    ax.set_xlabel(f"{label(a.name)} — {a.goal}")
    ax.set_ylabel(f"{label(b.name)} — {b.goal}")
    ax.set_title(title or "trade-off between the first two objectives")
    ax.legend()
    fig.tight_layout()
    return save(fig, path)
