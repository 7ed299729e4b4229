"""``htflow run`` and ``htflow validate``: check a campaign file, run or resume the campaign."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from htflow.cli.app import AddressOpt, ClusterOpt, ExecutorOpt, StoreOpt, WorkersOpt, app, console
from htflow.cli.tables import RoundProgress, best_table, pareto_section
from htflow.space.build import build_space


def _executor_overrides(executor: str | None, workers: int | None, address: str | None,
                        cluster: Path | None) -> dict | None:
    overrides = {k: v for k, v in {"type": executor, "workers": workers, "address": address,
                                   "cluster": str(cluster) if cluster else None}.items() if v is not None}
    if overrides and "type" not in overrides:
        overrides["type"] = "dask"
    return overrides or None


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Campaign file (YAML), e.g. workflows/demo.yaml.")],
    store: StoreOpt = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    cluster: ClusterOpt = None,
    address: AddressOpt = None,
    top: Annotated[int, typer.Option(min=1, max=1000, help="Rows in the final table.")] = 10,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Run even if another driver holds the campaign (use only when it is gone).")] = False,
    proceed_with_partial: Annotated[bool, typer.Option(
        "--proceed-with-partial", help="Experiment campaigns: propose the next round with the measurements "
        "that have arrived, without waiting for the rest of the round.")] = False,
) -> None:
    """Run a campaign to its budget, or continue it where it stopped.

    Validates the whole file first. Every result is stored as soon as it is
    computed; run the same command again after a crash or Ctrl-C to continue.
    Where the work runs (--executor, --workers, --cluster, --address) may
    change between runs of the same campaign. An experiment campaign
    (calculator: experiment) writes the round's worksheet and stops; record
    the measurements with `htflow ingest` and run again.
    """
    from htflow.campaign.loop import Campaign  # lazy: CLI start-up (atomate2 takes 3 s to import)
    from htflow.campaign.validation import load_config  # lazy: CLI start-up

    cfg = load_config(file, store=store, executor=_executor_overrides(executor, workers, address, cluster))
    out = console()
    camp = Campaign(cfg, announce=lambda line: out.print(line, highlight=False, soft_wrap=True))
    camp.db.connect()  # a damaged, locked or unwritable store is refused before anything is said or done
    elements = camp.space.elements
    replay = " (replayed from a table)" if cfg.calculator.options.get("oracle") else ""
    made = ("measured in a laboratory" + replay
            if cfg.is_experiment else f"{cfg.structure.prototype} {cfg.structure.n_atoms} atoms, "
            f"calculator {cfg.calculator.name}")
    out.print(
        f"[bold]{cfg.name}[/]: {len(elements)} elements ({', '.join(elements[:12])}"
        f"{', ...' if len(elements) > 12 else ''}), {made}, sampler {cfg.search.sampler}, "
        f"budget {cfg.search.budget}; store {camp.db.location}", soft_wrap=True,
    )
    before = camp.repo.count_results()
    progress = None if quiet else RoundProgress(out, cfg.objective.name, cfg.search.budget)
    doc = camp.run(progress=progress, force=force, proceed_with_partial=proceed_with_partial)
    if doc.get("state") == "waiting":
        _waiting(camp, doc)
    else:
        _summary(camp, doc, camp.repo.count_results() - before, top)
    camp.db.close()


def _waiting(camp: Any, doc: dict) -> None:
    """Where the worksheet is and what to do with it."""
    out, wait = console(), doc["awaiting"]
    st = camp.status()["counts"]
    sheets = wait["worksheets"]
    out.print(f"{st['done']} measured and {st['failed']} failed so far; waiting for {wait['samples']} "
              f"measurements: fill in {' and '.join(sheets)} and run `htflow ingest {sheets[-1]}`",
              soft_wrap=True, highlight=False)
    out.print("then run this command again for the next round (--proceed-with-partial: without waiting for "
              "every sample)", soft_wrap=True, highlight=False)


def _summary(camp: Any, doc: dict, new: int, top: int) -> None:
    """What the run did, the best results and where to look next."""
    cfg, out = camp.config, console()
    st = camp.status()["counts"]
    if new == 0:
        out.print(f"campaign {cfg.name!r} is complete ({doc['stop_reason']}); nothing to compute")
    verb = "measured" if cfg.is_experiment else "computed"
    out.print(f"{new} {verb} now; {st['done']} done and {st['failed']} failed in all; "
              f"stopped: {doc['stop_reason']}")
    rows = camp.best(top)
    others = tuple(o.name for o in cfg.objectives[1:])
    if rows:
        out.print(best_table(rows, cfg.objective.name, f"best {len(rows)} by {cfg.objective.name} "
                             f"({cfg.objective.goal})", others, {o.name: o.unit for o in cfg.objectives}))
    front = pareto_section(camp.repo, doc, [o.model_dump() for o in cfg.objectives])
    if front is not None:
        out.print(front)
    plot = _plot(camp)
    if plot:
        out.print(f"plot: {plot}")
    if camp.promoted is not None:
        p = camp.promoted.status()["counts"]
        out.print(f"promoted to {cfg.promote.calculator.name}: {p['done']} done and {p['failed']} failed "
                  f"in campaign {camp.promoted.name!r} (htflow status {camp.promoted.name})")
    out.print(f"results in {camp.db.location}; try: htflow status {cfg.name}")


def _plot(camp: Any) -> Path | None:
    """The convergence plot beside an embedded store (or in the working folder)."""
    from htflow.report.plots import convergence_plot  # lazy: CLI start-up (matplotlib)

    cfg = camp.config
    folder = Path(cfg.store.path) if cfg.store.backend == "embedded" else Path(".")
    return convergence_plot(
        camp.summaries(), cfg.objective.name, cfg.objective.goal,
        folder / "plots" / f"{cfg.name}-convergence.png", f"{cfg.name}: best so far",
    )  # fmt: skip


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Campaign file (YAML).")]) -> None:
    """Check a campaign file without running or writing anything."""
    from htflow.campaign.validation import load_config  # lazy: CLI start-up


    cfg = load_config(file)
    space = build_space(cfg.space)
    size = (f"{space.grid_size():,} listed compositions" if space.points is not None
            else f"{space.grid_size():,} grid compositions" if space.is_grid else "continuous")
    console().print(f"{file}: valid ({cfg.name}: {size}, budget {cfg.search.budget})")
