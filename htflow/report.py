"""Plots of a campaign, written to files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def convergence_plot(results: list[dict], objective: str, goal: str, path: Path, title: str) -> Path | None:
    """Best-so-far of ``objective`` against evaluations (rounds marked); returns the PNG path."""
    ordered = evaluation_order(results)
    values = [r.get(objective) if r.get("status") == "done" else None for r in ordered]
    if all(v is None for v in values):
        return None
    best = best_so_far(values, goal)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.scatter([i for i, v in enumerate(values, 1) if v is not None], [v for v in values if v is not None],
               s=12, alpha=0.5, label="evaluated")
    start = next(i for i, b in enumerate(best) if b is not None)
    ax.step(range(start + 1, len(best) + 1), best[start:], where="post", color="C3", label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(_label(objective))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path, plt)


# -- the campaign report (htflow report NAME) ---------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(objective: str) -> str:
    return objective.replace("_", " ") + (" (eV/atom)" if "energy" in objective else "")


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
    import numpy as np

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


def pool_values(camp, results: list[dict], objective: str, n_sample: int = 2000, seed: int = 0) -> list:
    """The objective over the whole space as far as the campaign knows it: the computed value where
    a composition was evaluated, the surrogate's mean (fitted on every result) elsewhere."""
    import numpy as np

    from htflow.active import settings
    from htflow.features import fraction_matrix, get_featurizer
    from htflow.space import composition_key
    from htflow.surrogates import get_surrogate

    space, builder = camp.space, camp.builder
    if space.is_grid:
        pool = space.pool()
    else:
        rng = np.random.default_rng(seed)
        pool = [p for p in (space.sample(rng) for _ in range(n_sample * 5)) if p is not None][:n_sample]
    known = {r["key"]: (r.get(objective) if r.get("status") == "done" else None) for r in results}
    keys = [composition_key(builder.realise(p)) for p in pool]
    missing = [i for i, k in enumerate(keys) if k not in known]
    values: list = [known.get(k) for k in keys]
    done = [r for r in results if r.get("status") == "done" and r.get(objective) is not None]
    if missing and len(done) >= 2:
        s = settings(camp.config.search.surrogate)
        els = list(space.elements)
        featurize = get_featurizer(s.features, els)
        X = featurize(fraction_matrix([r["composition"] for r in done], els))
        model = get_surrogate(s.model, seed=seed).fit(X, np.array([r[objective] for r in done], float))
        mean, _ = model.predict(featurize(fraction_matrix([pool[i] for i in missing], els)))
        for i, m in zip(missing, mean, strict=True):
            values[i] = float(m)
    return values


def learning_curve_plot(results: list[dict], objective: str, goal: str, path: Path,
                        pool: list | None = None) -> Path | None:
    """Best so far against evaluations, beside random selection from the space (``pool``: the
    objective over the space, see :func:`pool_values`)."""
    ordered = evaluation_order(results)
    values = [r.get(objective) if r.get("status") == "done" else None for r in ordered]
    if not any(v is not None for v in values):
        return None
    plt = _plt()
    import numpy as np

    x = np.arange(1, len(values) + 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    if pool:
        med, lo, hi = random_baseline(pool, goal, len(values))
        xr = x[: len(med)]
        ax.fill_between(xr, lo, hi, color="0.85", label="random selection, 10-90%")
        ax.plot(xr, med, color="0.4", ls="--", label="random selection, median")
    ax.scatter([i for i, v in zip(x, values, strict=True) if v is not None],
               [v for v in values if v is not None], s=10, alpha=0.5, label="evaluated")
    ax.step(x, [np.nan if b is None else b for b in best_so_far(values, goal)], where="post", color="C3",
            label="this campaign, best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(_label(objective))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def parity_plot(cv_predictions: dict, metrics: dict, objective: str, path: Path) -> Path | None:
    """Out-of-fold predictions against computed values, with MAE, RMSE and R²."""
    y, p = cv_predictions.get("y_true") or [], cv_predictions.get("y_pred") or []
    if not y:
        return None
    plt = _plt()
    s = cv_predictions.get("y_std") or [0.0] * len(y)
    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=120)
    ax.errorbar(y, p, yerr=s, fmt="o", ms=3, alpha=0.6, elinewidth=0.6)
    lo, hi = min(min(y), min(p)), max(max(y), max(p))
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8)
    ax.set_xlabel(f"computed {_label(objective)}")
    ax.set_ylabel("predicted (k-fold CV)")
    title = f"MAE {metrics['mae']:.4g}   RMSE {metrics['rmse']:.4g}   R² {metrics['r2']:.3f}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, plt)


def composition_map(results: list[dict], elements: list[str], objective: str, path: Path) -> Path | None:
    """Where the evaluated compositions sit, coloured by the objective: a ternary diagram for three
    elements, a binary line for two, a principal-component projection of the fractions otherwise."""
    import numpy as np

    done = [r for r in results if r.get("status") == "done" and r.get(objective) is not None]
    if not done or len(elements) < 2:
        return None
    plt = _plt()
    X = np.array([[r["composition"].get(el, 0.0) for el in elements] for r in done])
    c = np.array([r[objective] for r in done])
    fig, ax = plt.subplots(figsize=(5.6, 4.6), dpi=120)
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
        ax.set_ylabel(_label(objective))
    else:
        centred = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        for j, el in enumerate(elements):  # where each pure element projects
            e = (np.eye(len(elements))[j] - X.mean(axis=0)) @ vt[:2].T
            ax.annotate(el, e, color="0.35", ha="center")
        ax.set_xlabel("first principal component of the fractions")
        ax.set_ylabel("second")
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=c, cmap="viridis", s=28, edgecolors="k", linewidths=0.3)
    fig.colorbar(sc, ax=ax, label=_label(objective))
    fig.tight_layout()
    return _save(fig, path, plt)


def _save(fig, path: Path, plt) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "—"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


PLOTS = ("learning-curve", "composition-map", "parity", "hull", "pareto")
"""The report's plots, by name (``NAME.png``)."""


def campaign_plots(camp, doc: dict, results: list[dict], out: Path, only: str | None = None,
                   pool: list | None = None) -> dict[str, Path | None]:
    """Write the campaign's plots (or ``only`` one of :data:`PLOTS`) into ``out``; ``None`` where
    there is not enough data yet."""
    objective, goal = camp.config.objective.name, camp.config.objective.goal
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path | None] = {}
    if only in (None, "learning-curve"):
        pool = pool if pool is not None else pool_values(camp, results, objective)
        plots["learning-curve.png"] = learning_curve_plot(results, objective, goal,
                                                          out / "learning-curve.png", pool)
    if only in (None, "composition-map"):
        plots["composition-map.png"] = composition_map(results, list(camp.space.elements), objective,
                                                       out / "composition-map.png")
    if only in (None, "parity"):
        rounds = sorted(doc.get("rounds", []), key=lambda r: r["round"])
        last_cv = next((r["cv"] for r in reversed(rounds) if r.get("cv")), None)
        target = (objective if len(camp.config.objectives) == 1
                  else (last_cv or {}).get("of") or "ParEGO scalar (that round's weights)")
        plots["parity.png"] = (parity_plot(doc["cv_predictions"], last_cv, target, out / "parity.png")
                               if last_cv and doc.get("cv_predictions") else None)
    if only in (None, "hull"):
        plots["hull.png"] = hull_for(camp, doc, out / "hull.png")
    if only in (None, "pareto"):
        from htflow.pareto import pareto_plot

        plots["pareto.png"] = pareto_plot(results, list(camp.config.objectives), out / "pareto.png")
    return plots


def hull_system(camp, doc: dict) -> list[str] | None:
    """The elements of the hull to draw: the space's own for two or three elements, else the
    chemical system of the best result when it has two or three (None otherwise)."""
    elements = list(camp.space.elements)
    if len(elements) in (2, 3):
        return sorted(elements)
    best = doc.get("best") or {}
    if not best.get("key"):
        return None
    r = camp.db.results.query_one({"campaign": camp.name, "key": best["key"]}, ["elements"])
    return sorted(r["elements"]) if r and len(r.get("elements", [])) in (2, 3) else None


def hull_for(camp, doc: dict, path: Path) -> Path | None:
    """The convex hull plot of :func:`hull_system` over the campaign's results."""
    from htflow.thermo import hull_plot

    system = hull_system(camp, doc)
    refs = {el: r["energy_per_atom"] for el, r in (doc.get("references") or {}).items()}
    if not system or not all(el in refs for el in system):
        return None
    rows = camp.results(status="done", properties=["key", "counts", "energy_per_atom", "status", "formula"])
    rows = [r for r in rows if set(r.get("counts") or {}) <= set(system)]
    whole = len(system) == len(camp.space.elements)
    title = (f"convex hull: {'-'.join(system)}" if whole else
             f"convex hull of the best result's system, {'-'.join(system)}")
    phases = [ph for ph in camp.phases if set(ph["counts"]) <= set(system)]
    return hull_plot(rows, {el: refs[el] for el in system}, path, title, phases=phases)


def write_report(camp, out: Path) -> Path:
    """``out/index.html`` (self-contained: the PNGs are embedded) plus the PNGs beside it."""
    import base64
    import html

    cfg = camp.config
    objective, goal = cfg.objective.name, cfg.objective.goal
    status = camp.status()
    doc, counts = status["doc"], status["counts"]
    results = camp.summaries()
    rounds = sorted(doc.get("rounds", []), key=lambda r: r["round"])
    out.mkdir(parents=True, exist_ok=True)
    pool = pool_values(camp, results, objective)
    plots = campaign_plots(camp, doc, results, out, pool=pool)
    e = html.escape
    best = camp.best(10)
    failed = camp.results(status="failed", properties=["key", "round", "error"])

    def table(head: list[str], rows: list[list]) -> str:
        th = "".join(f"<th>{e(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{th}</tr>{body}</table>"

    def img(name: str, alt: str) -> str:
        path = plots.get(name)
        if not path:
            return f"<p class='none'>{e(alt)}: not enough results yet.</p>"
        data = base64.b64encode(path.read_bytes()).decode()
        return (f"<figure><img alt='{e(alt)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{e(alt)}</figcaption></figure>")

    b = doc.get("best") or {}
    parts = [
        f"<h1>{e(cfg.name)}</h1>",
        f"<p>{e(cfg.description)}</p>" if cfg.description else "",
        table(["elements", "structure", "calculator", "objective", "sampler", "budget", "done", "failed",
               "pruned", "state", "best"],
              [[" ".join(camp.space.elements), f"{cfg.structure.prototype} {cfg.structure.n_atoms} atoms",
                cfg.calculator.name, f"{objective} ({goal})", cfg.search.sampler, cfg.search.budget,
                counts["done"], counts["failed"], counts["pruned"], doc.get("state"),
                f"{b.get('formula', '—')} {_fmt(b.get('value'))}"]]),
        "<h2>Learning curve</h2>", img("learning-curve.png", "best so far against evaluations, beside "
                                      f"random selection from the {len(pool)} compositions of the space "
                                      "(computed values where known, the surrogate's estimate elsewhere)"),
        "<h2>Surrogate model</h2>", img("parity.png", "out-of-fold predictions of the latest model"),
        table(["round", "phase", "n", "MAE", "RMSE", "R²", "in ±2σ", "pruned", "evaluated", "failed"],
              [[r["round"], r.get("phase", "—"), (r.get("cv") or {}).get("n", "—"),
                _fmt((r.get("cv") or {}).get("mae")), _fmt((r.get("cv") or {}).get("rmse")),
                _fmt((r.get("cv") or {}).get("r2"), 3),
                f"{r['cv']['within_2sigma']:.0%}" if r.get("cv") else "—", r.get("pruned", 0),
                r.get("evaluated", "—"), r.get("failed", "—")] for r in rounds]),
        *(["<h2>Trade-off</h2>", img("pareto.png", f"{cfg.objectives[0].name} against "
                                     f"{cfg.objectives[1].name}; the Pareto front (no result is better "
                                     "in both) in red")]
          if len(cfg.objectives) > 1 else []),
        "<h2>Stability</h2>", img("hull.png", "convex hull of the computed results (formation energy per "
                                 "atom against composition; stable phases labelled)"),
        "<h2>Where the compositions sit</h2>", img("composition-map.png", f"evaluated compositions coloured "
                                                  f"by {objective}"),
        f"<h2>Best {len(best)}</h2>",
        table(["#", "key", "formula", objective, "E above hull (eV/atom)", "round"],
              [[i, r["key"], r.get("formula"), _fmt(r.get(objective)), _fmt(r.get("e_above_hull")),
                r.get("round")] for i, r in enumerate(best, 1)]),
        f"<h2>Failures ({len(failed)})</h2>",
        table(["key", "round", "error"], [[r["key"], r.get("round"), r.get("error")] for r in failed])
        if failed else "<p>None.</p>",
    ]
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
             "table{border-collapse:collapse;margin:0.5rem 0 1.5rem}td,th{border:1px solid #ccc;"
             "padding:0.2rem 0.5rem;font-size:0.9rem}img{max-width:100%}figcaption{color:#555;"
             "font-size:0.85rem}.none{color:#777}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>htflow report: {e(cfg.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    index = out / "index.html"
    index.write_text(page)
    return index
