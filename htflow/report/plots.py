"""The campaign's plots: learning curve (against random selection), parity of the model's CV, and the
map of evaluated compositions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from htflow.report.style import figure, label, save
from htflow.schemas.documents import Status


def convergence_plot(results: list[dict], objective: str, goal: str, path: Path, title: str) -> Path | None:
    """Best-so-far of ``objective`` against evaluations (rounds marked); returns the PNG path."""
    ordered = evaluation_order(results)
    values = [r.get(objective) if r.get("status") == Status.DONE else None for r in ordered]
    if all(v is None for v in values):
        return None
    best = best_so_far(values, goal)
    fig, ax = figure(figsize=(6, 4), dpi=120)
    ax.scatter([i for i, v in enumerate(values, 1) if v is not None], [v for v in values if v is not None],
               s=12, alpha=0.5, label="evaluated")
    start = next(i for i, b in enumerate(best) if b is not None)
    ax.step(range(start + 1, len(best) + 1), best[start:], where="post", color="C3", label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(label(objective))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return save(fig, path)


def evaluation_order(results: list[dict]) -> list[dict]:
    """Results in the order they were evaluated (round, then time)."""
    return sorted(results, key=lambda r: (r.get("round", 0), str(r.get("created_at"))))


def best_so_far(values: list[float | None], goal: str) -> list[float | None]:
    """Running best of ``values`` (failed evaluations as ``None`` count but do not improve)."""
    out, current = [], None
    for v in values:
        if v is not None and (current is None or (v < current if goal == "minimize" else v > current)):
            current = v
        out.append(current)
    return out


def random_baseline(pool_values, goal: str, n_evals: int, n: int = 500, seed: int = 0):
    """Best so far after k random picks from the space: (median, 10th, 90th percentile), k = 1..n_evals.

    ``pool_values`` holds a value for every composition of the space (a
    sample of it in continuous mode), ``None`` for a failed one.
    """
    rng = np.random.default_rng(seed)
    sign = 1.0 if goal == "minimize" else -1.0
    arr = np.array([np.inf if v is None else sign * v for v in pool_values], dtype=float)
    k = min(n_evals, len(arr))
    curves = np.empty((n, k))
    for i in range(n):
        curves[i] = np.minimum.accumulate(arr[rng.permutation(len(arr))[:k]])
    curves[~np.isfinite(curves)] = np.nan
    with np.errstate(all="ignore"):
        q = np.nanpercentile(curves, [50, 10, 90], axis=0) * sign
    return q[0], q[1], q[2]


def learning_curve_plot(results: list[dict], objective: str, goal: str, path: Path,
                        pool: list | None = None, source: str = "estimated by the model") -> Path | None:
    """Best so far against evaluations, beside random selection from the space (``pool``: the
    objective over the space and ``source`` where its values come from, see :func:`pool_values`)."""
    ordered = evaluation_order(results)
    values = [r.get(objective) if r.get("status") == Status.DONE else None for r in ordered]
    if not any(v is not None for v in values):
        return None
    x = np.arange(1, len(values) + 1)
    fig, ax = figure(figsize=(6.4, 4.2), dpi=120)
    if pool:
        med, lo, hi = random_baseline(pool, goal, len(values))
        xr = x[: len(med)]
        how = "estimated by the model" if source == "estimated by the model" else "exact"
        ax.fill_between(xr, lo, hi, color="0.85", label=f"random selection, 10-90% ({how})")
        ax.plot(xr, med, color="0.4", ls="--", label=f"random selection, median ({how})")
    ax.scatter([i for i, v in zip(x, values, strict=True) if v is not None],
               [v for v in values if v is not None], s=10, alpha=0.5, label="evaluated")
    ax.step(x, [np.nan if b is None else b for b in best_so_far(values, goal)], where="post", color="C3",
            label="this campaign, best so far")
    ax.set_xlabel("evaluations")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole evaluations, not 2.5
    ax.set_ylabel(label(objective))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def parity_plot(cv_predictions: dict, metrics: dict, objective: str, path: Path) -> Path | None:
    """Out-of-fold predictions against computed values, with MAE, RMSE and R²."""
    y, p = cv_predictions.get("y_true") or [], cv_predictions.get("y_pred") or []
    if not y:
        return None
    s = cv_predictions.get("y_std") or [0.0] * len(y)
    fig, ax = figure(figsize=(4.6, 4.4), dpi=120)
    ax.errorbar(y, p, yerr=s, fmt="o", ms=3, alpha=0.6, elinewidth=0.6)
    lo, hi = min(min(y), min(p)), max(max(y), max(p))
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8)
    ax.set_xlabel(f"computed {label(objective)}")
    ax.set_ylabel("predicted (k-fold CV)")
    title = f"MAE {metrics['mae']:.4g}   RMSE {metrics['rmse']:.4g}   R² {metrics['r2']:.3f}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def composition_map(results: list[dict], elements: list[str], objective: str, path: Path) -> Path | None:
    """Where the evaluated compositions sit, coloured by the objective: a ternary diagram for three
    elements, a binary line for two, a principal-component projection of the fractions otherwise."""
    done = [r for r in results if r.get("status") == Status.DONE and r.get(objective) is not None]
    if not done or len(elements) < 2:
        return None
    X = np.array([[r["composition"].get(el, 0.0) for el in elements] for r in done])
    c = np.array([r[objective] for r in done])
    fig, ax = figure(figsize=(5.6, 4.6), dpi=120)
    if len(elements) == 3:
        corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
        xy = X @ corners
        ax.plot(*np.vstack([corners, corners[:1]]).T, color="0.3", lw=0.8)
        for (cx, cy), el in zip(corners, elements, strict=True):
            ax.annotate(el, (cx, cy), textcoords="offset points", xytext=(0, 6 if cy else -14), ha="center")
        ax.set_aspect("equal")
        ax.axis("off")
    elif len(elements) == 2:
        xy = np.column_stack([X[:, 1], c])
        ax.set_xlabel(f"fraction of {elements[1]}")
        ax.set_ylabel(label(objective))
    else:
        centred = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        # where each pure element projects: the elements that shape the map most, none on another
        ends = (np.eye(len(elements)) - X.mean(axis=0)) @ vt[:2].T
        span = np.ptp(np.vstack([xy, ends]), axis=0).max() or 1.0
        shown: list[np.ndarray] = []
        for j in np.argsort(-np.linalg.norm(vt[:2].T, axis=1))[:10]:
            if all(np.linalg.norm(ends[j] - p) > 0.06 * span for p in shown):
                ax.annotate(elements[j], ends[j], color="0.35", ha="center", va="center", fontsize=9)
                shown.append(ends[j])
        every = np.vstack([xy, *shown]) if shown else xy
        lo, hi = every.min(axis=0), every.max(axis=0)
        pad = 0.08 * np.maximum(hi - lo, 1e-6)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])  # element labels inside the frame, not clipped
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_xlabel("first principal component of the fractions")
        ax.set_ylabel("second principal component")
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=c, cmap="viridis", s=28, edgecolors="k", linewidths=0.3)
    fig.colorbar(sc, ax=ax, label=label(objective))
    fig.tight_layout()
    return save(fig, path)
