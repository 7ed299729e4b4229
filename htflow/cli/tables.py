"""Tables and progress bars of the command line (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from htflow.cli.common import fmt
from htflow.schemas.calculators import UNITS


def best_table(rows: list[dict], objective: str, title: str, others: tuple[str, ...] = (),
               units: dict[str, str | None] | None = None) -> Table:
    """A rich table of the best results (``others``: further objectives, a column each; ``units``: of
    the objectives, named in the caption; htflow's own properties' are known)."""
    short = {"formation_energy_per_atom": "E_form", "energy_per_atom": "E",
             "volume_per_atom": "V", "density": "density"}  # fmt: skip
    # energy and volume as context while the table fits 80 columns (two value columns beside the objective)
    context = [c for c in ("energy_per_atom", "volume_per_atom")
               if c != objective and c not in others and any(r.get(c) is not None for r in rows)]
    spread = [((r.get("configurations") or {}).get("std") or {}).get(objective) for r in rows]
    k = max(((r.get("configurations") or {}).get("n") or 1) for r in rows) if rows else 1
    extra = [*others, *context[:max(0, 2 - len(others) - (k > 1))]]
    more = {c: (units or {}).get(c) or UNITS.get(c) for c in (objective, *others) if c not in short}
    caption = "; ".join(["E_form, E: eV/atom; V: Å³/atom; density: g/cm³",
                         *(f"{c}: {u}" for c, u in more.items() if u)])
    table = Table(title=title, caption=caption if extra or objective in short or any(more.values()) else None)
    table.add_column("#", justify="right", no_wrap=True, min_width=2)
    # long keys and formulas (many elements) give way; the values never do
    table.add_column("key", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("formula", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column(short.get(objective, objective), justify="right", no_wrap=True, min_width=7)
    if k > 1:  # the spread over the decorations averaged (structure.configurations)
        table.add_column(f"σ of {k}", justify="right", no_wrap=True, min_width=7)
    for col in extra:
        table.add_column(short.get(col, col), justify="right", no_wrap=True, min_width=7)
    table.add_column("round", justify="right", no_wrap=True, min_width=5)
    for i, (r, sd) in enumerate(zip(rows, spread, strict=True), 1):
        table.add_row(str(i), r["key"], r.get("formula", ""), fmt(r.get(objective)),
                      *([fmt(sd)] if k > 1 else []), *(fmt(r.get(c)) for c in extra), str(r.get("round")))
    return table


class RoundProgress:
    """Rich progress bars, one per round."""

    def __init__(self, console: Console, objective: str, budget: int):
        self.console, self.objective, self.budget = console, objective, budget
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[best]}"), console=console,
        )  # fmt: skip
        self.task = None

    def start_round(self, rnd: int, n: int, label: str = "") -> None:
        self.bar.start()
        self.task = self.bar.add_task(f"round {rnd}" + (f", {label}" if label else ""), total=n, best="")

    def advance(self, outcome: Any, best: dict | None) -> None:
        text = f"best {best['formula']} {best['value']:.4f}" if best else ""
        if not outcome.ok:
            self.console.print(f"  [yellow]failed[/] {outcome.key}: {outcome.error}")
        self.bar.update(self.task, advance=1, best=text)

    def end_round(self, summary: Any) -> None:
        if self.task is not None:  # (a round measured elsewhere and summarised now has no bar)
            self.bar.stop()
            self.bar.remove_task(self.task)
            self.task = None
        self.console.print(
            f"round {summary.round}{', ' + summary.label if summary.label else ''}: "
            f"{summary.evaluated} evaluated, {summary.failed} failed; "
            f"best {summary.best_key} ({self.objective} = {fmt(summary.best_value)})"
        )
        cv = getattr(summary, "cv", None)
        if cv:
            r2 = "n/a" if cv.get("r2") is None else f"{cv['r2']:.3f}"
            self.console.print(
                f"  model before this round ({cv['folds']}-fold CV on {cv['n']} results): "
                f"MAE {fmt(cv['mae'])}, R² {r2}, {cv['within_2sigma']:.0%} within ±2σ"
                + (f"; {summary.pruned} pruned" if getattr(summary, "pruned", 0) else "")
            )


def rounds_table(rounds: list[dict], objective: str) -> Table:
    """One row per round: what was computed and the best so far."""
    short = {"formation_energy_per_atom": "E_form (eV/atom)", "energy_per_atom": "E (eV/atom)"}
    table = Table(title="rounds")
    for col in ("round", "evaluated", "failed"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("best so far", no_wrap=True, overflow="ellipsis", max_width=30)  # a key: may give way
    table.add_column(short.get(objective, objective), justify="right", no_wrap=True)
    for r in sorted(rounds, key=lambda r: r["round"]):
        table.add_row(str(r["round"]), str(r.get("evaluated", "-")), str(r.get("failed", "-")),
                      r.get("best_key") or "", fmt(r.get("best_value")))
    return table


def model_table(rounds: list[dict]) -> Table | None:
    """The surrogate's k-fold CV before each round, or None when no round used a model."""

    rows = [r for r in sorted(rounds, key=lambda r: r["round"]) if r.get("cv")]
    if not rows:
        return None
    auto = any(r.get("model_choice") for r in rows)
    table = Table(title="model: k-fold cross-validation on all results before each round",
                  caption="model: auto chose by the CV's mean negative log predictive density (lower is "
                          "better), shown for each candidate" if auto else None)
    table.add_column("round", justify="right")
    table.add_column("model", no_wrap=True)
    for col in ("n", "MAE", "RMSE", "R²", "in ±1σ", "in ±2σ", "pruned"):
        table.add_column(col, justify="right")
    for r in rows:
        cv, choice = r["cv"], r.get("model_choice")
        model = str(r.get("model", "—"))
        if choice:
            scores = ", ".join(f"{k} {v['nlpd']:.3g}" for k, v in choice["scores"].items())
            model = f"{choice['chosen']} ({scores})"
        table.add_row(str(r["round"]), model, str(cv["n"]), fmt(cv["mae"]), fmt(cv["rmse"]),
                      fmt(cv.get("r2"), 3), f"{cv['within_1sigma']:.0%}", f"{cv['within_2sigma']:.0%}",
                      str(r.get("pruned", 0)))
    return table


def pareto_table(rows: list[dict], objectives: list[dict], hv: float | None, limit: int = 15) -> Table:
    """The Pareto front (no result better in every objective), one row per result, every objective."""
    names = [o["name"] for o in objectives]
    title = f"Pareto front: {len(rows)} results" + (f", hypervolume {fmt(hv)}" if hv is not None else "")
    table = Table(title=title)
    table.add_column("formula", no_wrap=True, overflow="ellipsis", max_width=28)
    for o in objectives:
        table.add_column(f"{o['name']} ({o['goal'][:3]})", justify="right", no_wrap=True)
    table.add_column("round", justify="right", no_wrap=True)
    first = objectives[0]
    ordered = sorted(rows, key=lambda r: (1 if first["goal"] == "minimize" else -1) * r[first["name"]])
    for r in ordered[:limit]:
        table.add_row(r.get("formula", r["key"]), *(fmt(r.get(n)) for n in names), str(r.get("round")))
    if len(ordered) > limit:
        table.caption = f"the first {limit} of {len(ordered)} by {first['name']}; all: htflow report"
    return table


def pareto_section(repo: Any, doc: dict, objectives: list[dict]) -> Table | None:
    """The campaign's Pareto front as a table (several objectives), or None."""
    keys = doc.get("pareto_front") or []
    if len(objectives) < 2 or not keys:
        return None
    names = [o["name"] for o in objectives]
    rows = repo.results(properties=["key", "formula", "round", *names], keys=keys)
    rounds = sorted(doc.get("rounds", []), key=lambda r: -r["round"])
    last = next((r["pareto"] for r in rounds if r.get("pareto")), {})
    return pareto_table(rows, objectives, last.get("hypervolume"))
