"""``htflow report``: the campaign's plots and one self-contained HTML page (``data/report.html``)."""

from __future__ import annotations

import base64
import html
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

from htflow.report.explain import EXPLAIN_PLOTS, OBJECTIVES_PLOT, explanation_plots, objectives_plot
from htflow.report.generative import GENERATIVE_PLOTS, generative_plot
from htflow.report.plots import composition_map, learning_curve_plot, parity_plot
from htflow.report.stability import hull_plot, pareto_plot
from htflow.report.style import fmt
from htflow.report.view import CampaignView, pool_values
from htflow.schemas.documents import IMPORTED, CampaignDoc, Status

PLOTS = ("learning-curve", "composition-map", "parity", "hull", "pareto", *EXPLAIN_PLOTS, *GENERATIVE_PLOTS)
"""The report's plots, by name (``NAME.png``)."""


def _parity(view: CampaignView, doc: CampaignDoc, out: Path) -> Path | None:
    rounds = sorted(doc.get("rounds", []), key=lambda r: r["round"])
    last_cv = next((r["cv"] for r in reversed(rounds) if r.get("cv")), None)
    if not last_cv or not doc.get("cv_predictions"):
        return None
    objectives = view.config.objectives
    target = (objectives[0].name if len(objectives) == 1
              else last_cv.get("of") or "ParEGO scalar (that round's weights)")
    return parity_plot(doc["cv_predictions"], last_cv, target, out / "parity.png")


def campaign_plots(view: CampaignView, doc: CampaignDoc, results: list[dict], out: Path,
                   only: str | None = None, pool: tuple[list, str] | None = None) -> dict[str, Path | None]:
    """Write the campaign's plots (or ``only`` one of :data:`PLOTS`) into ``out``; ``None`` where
    there is not enough data yet."""
    objective, goal = view.config.objective.name, view.config.objective.goal
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path | None] = {}
    if only in (None, "learning-curve"):
        values, source = pool if pool is not None else pool_values(view, results, objective)
        plots["learning-curve.png"] = learning_curve_plot(results, objective, goal,
                                                          out / "learning-curve.png", values, source)
    if only in (None, "composition-map"):
        plots["composition-map.png"] = composition_map(results, list(view.space.elements), objective,
                                                       out / "composition-map.png")
    if only in (None, "parity"):
        plots["parity.png"] = _parity(view, doc, out)
    if only in (None, "hull"):
        plots["hull.png"] = hull_for(view, doc, out / "hull.png")
    if only in (None, "pareto"):
        plots["pareto.png"] = pareto_plot(results, list(view.config.objectives), out / "pareto.png")
    if only is None or only in EXPLAIN_PLOTS:
        got = explanation_plots(latest(doc, "explain"), objective, out)
        plots.update({k: v for k, v in got.items() if only is None or k == f"{only}.png"})
    if len(view.config.objectives) > 1 and only in (None, OBJECTIVES_PLOT):
        name = f"{OBJECTIVES_PLOT}.png"
        goals = {o.name: o.goal for o in view.config.objectives}
        plots[name] = objectives_plot(every_objective(doc), goals, out / name)
    if only in (None, *GENERATIVE_PLOTS):
        plots["generative.png"] = generative_plot(latest(doc, "generative"), objective,
                                                  out / "generative.png")
    for o in view.config.objectives[1:]:  # several objectives: a learning curve for each of the others too
        if only in (None, f"learning-curve-{o.name}"):
            name = f"learning-curve-{o.name}.png"
            values, source = pool_values(view, results, o.name)
            plots[name] = learning_curve_plot(results, o.name, o.goal, out / name, values, source)
    return plots


def latest(doc: CampaignDoc, key: str) -> dict | None:
    """The latest round's record of ``key`` (``explain``, ``generative``), or None."""
    rounds = sorted((r for r in doc.get("rounds", []) if r.get(key)), key=lambda r: r["round"])
    return {**rounds[-1][key], "round": rounds[-1]["round"]} if rounds else None


def every_objective(doc: CampaignDoc) -> dict[str, dict]:
    """The latest explained round's explanation of each objective, the first objective's first."""
    ex = latest(doc, "explain")
    if not ex:
        return {}
    objectives = [o["name"] for o in doc["config"]["objectives"]]
    entry = next(r for r in doc["rounds"] if r["round"] == ex["round"])
    return {ex.get("objective", objectives[0]): ex, **(entry.get("explain_objectives") or {})}


def _ranking(ex: dict) -> str:
    return _table(["rank", "element", "importance", "more of it", "per +10 at.%"],
                  [[i, r["element"], fmt(r["importance"]),
                    "raises it" if r["direction"] > 0.3 else "lowers it" if r["direction"] < -0.3
                    else "mixed", fmt(r.get("per_10_percent"))]
                   for i, r in enumerate(ex["elements"], 1)])


def _explain_section(doc: CampaignDoc, plots: dict) -> str:
    """Why the latest model predicts what it does, and what the generative sampler learned."""
    text = ""
    ex = latest(doc, "explain")
    each = every_objective(doc)
    if ex:
        of = f", {ex['objective']}" if len(each) > 1 else ""
        what = f"<p>{html.escape(ex['model'])}</p>" if ex.get("model") else ""
        text += (f"<h3>Why the model predicts what it does (round {ex['round']}{of})</h3>" + what
                 + _ranking(ex)
                 + _img(plots.get("explain-importance.png"), f"mean |Shapley value| per element and pair "
                        f"({ex['method']}, {ex['points']} results against {ex['background']})")
                 + _img(plots.get("explain-beeswarm.png"), "each result's Shapley value per element, "
                        "coloured by the element's fraction")
                 + _img(plots.get("explain-dependence.png"),
                        "partial dependence on the two leading elements"))
    for objective, other in list(each.items())[1:]:
        text += (f"<h3>{html.escape(objective)}: the elements that matter</h3>"
                 f"<p>{html.escape(other.get('model') or '')}</p>" + _ranking(other))
    if len(each) > 1:
        text += _img(plots.get(f"{OBJECTIVES_PLOT}.png"), "each element's effect on each objective: where "
                     "one element pushes two objectives the way their goals disagree, that is the trade-off")
    if plots.get("generative.png"):
        text += "<h3>Generative sampler</h3>" + _img(plots["generative.png"], (
            "the conditional VAE's training loss, and the results at their latent means; the round "
            "sampled compositions conditioned on the target range and ranked them by the acquisition"))
    return text


def plot_names(objectives: list[dict]) -> list[str]:
    """The plots of a campaign with these objectives (config dicts): :data:`PLOTS` and a learning
    curve of each objective after the first."""
    more = [OBJECTIVES_PLOT] if len(objectives) > 1 else []
    return [*PLOTS, *more, *(f"learning-curve-{o['name']}" for o in objectives[1:])]


def hull_system(view: CampaignView, doc: CampaignDoc) -> list[str] | None:
    """The elements of the hull to draw: the space's own for two or three elements, else the
    chemical system of the best result when it has two or three (None otherwise)."""
    elements = list(view.space.elements)
    if len(elements) in (2, 3):
        return sorted(elements)
    best = doc.get("best") or {}
    if not best.get("key"):
        return None
    r = view.repo.result(best["key"], ["elements"])
    return sorted(r["elements"]) if r and len(r.get("elements", [])) in (2, 3) else None


def hull_for(view: CampaignView, doc: CampaignDoc, path: Path) -> Path | None:
    """The convex hull plot of :func:`hull_system` over the campaign's results."""
    system = hull_system(view, doc)
    refs = {el: r["energy_per_atom"] for el, r in (doc.get("references") or {}).items()}
    if not system or not all(el in refs for el in system):
        return None
    rows = view.repo.results(Status.DONE, ["key", "counts", "energy_per_atom", "status", "formula"])
    rows = [r for r in rows if set(r.get("counts") or {}) <= set(system)]
    whole = len(system) == len(view.space.elements)
    title = (f"convex hull: {'-'.join(system)}" if whole else
             f"convex hull of the best result's system, {'-'.join(system)}")
    phases = [ph for ph in view.phases if set(ph["counts"]) <= set(system)]
    return hull_plot(rows, {el: refs[el] for el in system}, path, title, phases=phases)


def _table(head: list[str], rows: list[list]) -> str:
    e = html.escape
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _img(path: Path | None, alt: str) -> str:
    e = html.escape
    if not path:
        return f"<p class='none'>{e(alt)}: not enough results yet.</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure><img alt='{e(alt)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{e(alt)}</figcaption></figure>")


def model_cell(r: dict) -> str:
    """The round's model, and with ``model: auto`` why: each candidate's CV score."""
    choice = r.get("model_choice")
    if not choice:
        return str(r.get("model", "—")) if r.get("cv") else "—"
    scores = ", ".join(f"{k} {v['nlpd']:.3g}" for k, v in choice["scores"].items())
    return f"{choice['chosen']} (auto; CV NLPD {scores})"


def _model_rows(rounds: list[dict]) -> list[list]:
    rows = []
    for r in rounds:
        cv = r.get("cv") or {}
        rows.append([r["round"], r.get("phase", "—"), model_cell(r), cv.get("n", "—"), fmt(cv.get("mae")),
                     fmt(cv.get("rmse")), fmt(cv.get("r2"), 3), f"{cv['within_2sigma']:.0%}" if cv else "—",
                     r.get("pruned", 0), r.get("evaluated", "—"), r.get("failed", "—")])
    return rows


def _source(result: dict) -> str:
    src = result.get("source") or {}
    if src.get("file"):
        return f"{src['file']} row {src.get('row', '?')}"
    return f"replayed from {src['oracle']}" if src.get("oracle") else "—"


def data_sources(view: CampaignView) -> list[list]:
    """Where the campaign's data come from: measured (per worksheet or table) and the imported
    data sets it was warm-started with (rows, files, DOIs)."""
    cfg, rows = view.config, []
    if cfg.is_experiment:
        per: dict[str, int] = {}
        for r in view.repo.results(properties=["source"]):
            src = r.get("source") or {}
            label = src.get("file") or (f"oracle {src['oracle']}" if src.get("oracle") else "?")
            per[label] = per.get(label, 0) + 1
        rows += [["measured", cfg.name, label, n, "—"] for label, n in sorted(per.items())]
    store = view.db.collection(IMPORTED)
    for name in cfg.search.prior:
        docs = list(store.query({"campaign": name}, ["file", "doi"]))
        names = sorted({d.get("file") or "?" for d in docs})
        dois = sorted({d["doi"] for d in docs if d.get("doi")})
        rows.append(["prior (imported)", name, ", ".join(names[:3]) + (" ..." if len(names) > 3 else ""),
                     len(docs), ", ".join(dois[:3]) + (f" and {len(dois) - 3} more" if len(dois) > 3 else "")
                     or "—"])
    return rows


def _tradeoff(cfg: Any, doc: CampaignDoc, plots: dict) -> str:
    """Several objectives: the Pareto plot, and the front's size and hypervolume after each round."""
    if len(cfg.objectives) < 2:
        return ""
    text = "<h2>Trade-off</h2>" + _img(plots.get("pareto.png"), (
        f"{cfg.objectives[0].name} against {cfg.objectives[1].name}; the Pareto front (no result is "
        "better in both) in red"))
    per_round = [[r["round"], r["pareto"].get("size"), fmt(r["pareto"].get("hypervolume"))]
                 for r in sorted(doc.get("rounds", []), key=lambda r: r["round"]) if r.get("pareto")]
    if per_round:
        text += "<p>The front and its hypervolume after each round:</p>" + _table(
            ["round", "results on the front", "hypervolume"], per_round)
    for o in cfg.objectives[1:]:
        text += _img(plots.get(f"learning-curve-{o.name}.png"),
                     f"best {o.name} so far ({o.goal}) against evaluations, beside random selection")
    return text


def write_report(view: CampaignView, out: Path) -> Path:
    """``out/index.html`` (self-contained: the PNGs are embedded) plus the PNGs beside it."""
    cfg = view.config
    objective, goal = cfg.objective.name, cfg.objective.goal
    doc, counts, results = view.doc() or {}, view.repo.counts(), view.summaries()
    out.mkdir(parents=True, exist_ok=True)
    pool = pool_values(view, results, objective)
    plots = campaign_plots(view, doc, results, out, pool=pool)
    best, b = view.best(10), doc.get("best") or {}
    failed = view.repo.results(Status.FAILED, ["key", "round", "error"])
    st = cfg.structure
    made = "made in a laboratory" if cfg.is_experiment else f"{st.prototype} {st.n_atoms} atoms"
    summary = _table(
        ["elements", "structure", "calculator", "objective", "sampler", "budget", "done", "failed", "pruned",
         "state", "best"],
        [[" ".join(view.space.elements), made,
          cfg.calculator.name, f"{objective} ({goal})", cfg.search.sampler, cfg.search.budget,
          counts["done"], counts["failed"], counts["pruned"], doc.get("state"),
          f"{b.get('formula', '—')} {fmt(b.get('value'))}"]])
    sources = data_sources(view)
    if sources:
        summary += "<h2>Data</h2>" + _table(["kind", "data set", "files", "rows", "DOIs"], sources)
    tradeoff = _tradeoff(cfg, doc, plots)
    page = Template((files("htflow") / "data" / "report.html").read_text(encoding="utf-8")).substitute(
        name=html.escape(cfg.name),
        description=f"<p>{html.escape(cfg.description)}</p>" if cfg.description else "",
        summary=summary,
        learning_curve=_img(plots.get("learning-curve.png"), (
            f"best so far against evaluations, beside random selection from the {len(pool[0])} compositions "
            + (f"of the space ({pool[1]}: computed values where known, the surrogate's estimate elsewhere)"
               if pool[1] == "estimated by the model" else f"of the space, exact (values from {pool[1]})"))),
        parity=_img(plots.get("parity.png"), "out-of-fold predictions of the latest model"),
        model_table=_table(["round", "phase", "model", "n", "MAE", "RMSE", "R²", "in ±2σ", "pruned",
                            "evaluated", "failed"],
                           _model_rows(sorted(doc.get("rounds", []), key=lambda r: r["round"]))),
        tradeoff=tradeoff,
        explain=_explain_section(doc, plots),
        hull=_img(plots.get("hull.png"), "convex hull of the computed results (formation energy per "
                                         "atom against composition; stable phases labelled)"),
        composition_map=_img(plots.get("composition-map.png"),
                             f"evaluated compositions coloured by {objective}"),
        n_best=len(best),
        best_table=(_table(["#", "key", "formula", objective, "source", "round"],
                           [[i, r["key"], r.get("formula"), fmt(r.get(objective)), _source(r), r.get("round")]
                            for i, r in enumerate(best, 1)]) if cfg.is_experiment else
                    _table(["#", "key", "formula", objective, "E above hull (eV/atom)", "round"],
                           [[i, r["key"], r.get("formula"), fmt(r.get(objective)), fmt(r.get("e_above_hull")),
                             r.get("round")] for i, r in enumerate(best, 1)])),
        n_failed=len(failed),
        failures=(_table(["key", "round", "error"],
                         [[r["key"], r.get("round"), r.get("error")] for r in failed])
                  if failed else "<p>None.</p>"),
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
