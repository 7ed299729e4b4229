"""The model's explanation as plots: element importance (bar), Shapley values per composition
(beeswarm) and partial dependence of the two leading elements, from what a round stored
(:func:`htflow.search.explain.explain`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from htflow.report.style import figure, label, save

#: the explanation plots, by name (``NAME.png``)
EXPLAIN_PLOTS = ("explain-importance", "explain-beeswarm", "explain-dependence")
#: several objectives: each element's effect on each of them, side by side
OBJECTIVES_PLOT = "explain-objectives"
#: players drawn (the rest are listed by ``htflow explain``)
SHOWN = 12


def importance_plot(ex: dict, objective: str, path: Path) -> Path | None:
    """Mean |Shapley value| per element, most important on top, coloured by the direction of its
    effect (more of the element raises or lowers the objective); the leading pairs beside."""
    rows = ex.get("elements") or []
    if not rows:
        return None
    rows = rows[:SHOWN]
    pairs = [p for p in (ex.get("pairs") or [])[:6] if p["importance"] > 0]
    fig = Figure(figsize=(8.6 if pairs else 5.4, 0.32 * max(len(rows), len(pairs)) + 1.6), dpi=120)
    ax = fig.add_subplot(1, 2 if pairs else 1, 1)
    y = np.arange(len(rows))[::-1]
    colours = ["C3" if r["direction"] > 0 else "C0" for r in rows]
    ax.barh(y, [r["importance"] for r in rows], color=colours)
    ax.set_yticks(y, [r["element"] for r in rows])
    ax.set_xlabel(f"mean |Shapley value| ({label(objective)})", fontsize=8)
    ax.set_title("elements (red: more raises it, blue: lowers it)", fontsize=8)
    if pairs:
        ax2 = fig.add_subplot(1, 2, 2)
        yp = np.arange(len(pairs))[::-1]
        ax2.barh(yp, [p["importance"] for p in pairs], color="0.5")
        ax2.set_yticks(yp, ["–".join(p["pair"]) for p in pairs])
        ax2.set_xlabel("mean |Shapley interaction|", fontsize=8)
        ax2.set_title("element pairs", fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def beeswarm_plot(ex: dict, objective: str, path: Path) -> Path | None:
    """Each explained composition's Shapley value per element (one dot each), coloured by the element's
    fraction: which way and how strongly each element pushes each prediction."""
    shap = ex.get("shap") or {}
    values, fracs = (np.asarray(shap.get(k) or [], float) for k in ("values", "fractions"))
    if values.size == 0:
        return None
    names = list(shap["players"])
    order = [names.index(r["element"]) for r in ex["elements"][:SHOWN]]
    fig, ax = figure(figsize=(6.2, 0.34 * len(order) + 1.6), dpi=120)
    rng = np.random.default_rng(0)
    sc = None
    for row, j in enumerate(order):
        yj = len(order) - 1 - row + rng.uniform(-0.25, 0.25, len(values))
        span = np.ptp(fracs[:, j]) or 1.0
        sc = ax.scatter(values[:, j], yj, c=(fracs[:, j] - fracs[:, j].min()) / span, cmap="coolwarm",
                        vmin=0, vmax=1, s=10, alpha=0.8)
    ax.axvline(0, color="0.4", lw=0.6)
    ax.set_yticks(np.arange(len(order))[::-1], [names[j] for j in order])
    ax.set_xlabel(f"Shapley value: effect on {label(objective)}", fontsize=8)
    ax.set_title(f"{len(values)} compositions against {ex.get('background')} background ones", fontsize=8)
    cb = fig.colorbar(sc, ax=ax, ticks=[0, 1])
    cb.ax.set_yticklabels(["low", "high"])
    cb.set_label("fraction of the element", fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def dependence_plot(ex: dict, objective: str, path: Path) -> Path | None:
    """Partial dependence on the two leading elements: the model's mean as one element's fraction
    sweeps its range, the other elements scaled in proportion."""
    pd = ex.get("partial_dependence") or {}
    if not pd:
        return None
    fig = Figure(figsize=(4.0 * len(pd) + 0.6, 3.6), dpi=120)
    for k, (el, curve) in enumerate(pd.items(), 1):
        ax = fig.add_subplot(1, len(pd), k, sharey=fig.axes[0] if k > 1 else None)
        ax.plot(curve["x"], curve["mean"], marker="o", ms=3)
        ax.set_xlabel(f"fraction of {el}")
        if k == 1:
            ax.set_ylabel(f"mean predicted {label(objective)}", fontsize=8)
    fig.suptitle("partial dependence (other elements scaled in proportion)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def objectives_plot(explanations: dict[str, dict], goals: dict[str, str], path: Path) -> Path | None:
    """Several objectives: one panel per objective, each element's mean |Shapley value| signed by the
    direction of its effect (right: more of the element raises that objective; grey, centred: mixed), in
    the objective's own units, under each objective's goal; elements in the order of their importance
    to the first objective. An element that moves two objectives the ways their goals disagree is the
    trade-off."""
    if len(explanations) < 2:
        return None
    first = next(iter(explanations.values()))
    names = [r["element"] for r in first.get("elements", [])][:SHOWN]
    if not names:
        return None
    fig = Figure(figsize=(3.0 * len(explanations) + 1.0, 0.3 * len(names) + 1.7), dpi=120)
    y = np.arange(len(names))[::-1]
    for k, (objective, ex) in enumerate(explanations.items()):
        ax = fig.add_subplot(1, len(explanations), k + 1, sharey=fig.axes[0] if k else None)
        rows = {r["element"]: r for r in ex.get("elements", [])}
        for yi, el in zip(y, names, strict=True):
            r = rows.get(el)
            if r is None:
                continue
            imp, d = r["importance"], r["direction"]
            if abs(d) <= 0.3:
                ax.barh(yi, imp, left=-imp / 2, color="0.65")
            else:
                ax.barh(yi, imp if d > 0 else -imp, color="C3" if d > 0 else "C0")
        ax.axvline(0, color="0.3", lw=0.6)
        ax.set_xlabel(f"signed mean |Shapley|\n{label(objective)}", fontsize=8)
        ax.set_title(f"{objective.replace('_', ' ')} ({goals.get(objective, '')})", fontsize=9)
        if k == 0:
            ax.set_yticks(y, names)
        else:
            ax.tick_params(labelleft=False)
    fig.suptitle("each element's effect on each objective\n"
                 "(red: more raises it, blue: lowers it, grey: mixed)", fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def explanation_plots(ex: dict | None, objective: str, out: Path) -> dict[str, Path | None]:
    """The three explanation plots of a round's ``explain`` record, ``None`` where there is none."""
    if not ex:
        return dict.fromkeys((f"{n}.png" for n in EXPLAIN_PLOTS), None)
    return {
        "explain-importance.png": importance_plot(ex, objective, out / "explain-importance.png"),
        "explain-beeswarm.png": beeswarm_plot(ex, objective, out / "explain-beeswarm.png"),
        "explain-dependence.png": dependence_plot(ex, objective, out / "explain-dependence.png"),
    }
