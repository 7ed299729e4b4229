"""The ``htflow`` command line.

Bad input of any kind (campaign file, arguments, store, query) ends with one
``error:`` line per problem on stderr and exit status 2, before anything is
written. Ctrl-C stops cleanly: finished results are already in the store and
the same command continues the campaign.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="htflow",
    help="Closed-loop composition screening: propose, compute, store, repeat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ExecutorOpt = Annotated[str | None, typer.Option(
    "--executor", help="Where evaluations run: local (this process), dask, fireworks.")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Dask: worker processes of a local cluster (default: one per core).")]
ClusterOpt = Annotated[Path | None, typer.Option(
    "--cluster", help="Dask: a cluster file, e.g. cluster/slurm.yaml (implies --executor dask).")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Dask: a running scheduler, tcp://host:8786 (implies --executor dask).")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store to use: a folder (embedded, default ./htflow-data), mongodb://..., "
        "memory://, or a stores/*.yaml file.",
    ),
]


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _store_config(store: str | None, default_path: str = "htflow-data"):
    from pydantic import ValidationError

    from htflow.config import StoreConfig, format_validation_error, store_from_shorthand
    from htflow.errors import InputError
    from htflow.store.db import check_store_config

    data = store_from_shorthand(store) if store else {"backend": "embedded", "path": default_path}
    try:
        cfg = StoreConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, "--store", StoreConfig)) from None
    check_store_config(cfg)
    return cfg


def _open_db(store: str | None):
    from htflow.errors import InputError
    from htflow.store.db import CampaignDB

    db = CampaignDB(_store_config(store))
    if not db.exists():
        raise InputError(
            f"no htflow store at {db.location}; run a campaign first (htflow run FILE) or pass --store"
        )
    return db


def _campaign_doc(db, name: str) -> dict:
    from htflow.config import _suggest
    from htflow.errors import InputError

    doc = db.campaigns.query_one({"name": name})
    if doc is None:
        names = db.campaigns.distinct("name")
        hint = _suggest(name, names)
        known = ", ".join(sorted(names)) or "none"
        raise InputError(f"no campaign named {name!r} in {db.location}{hint}; campaigns: {known}")
    return doc


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.4g}"
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)


def best_table(rows: list[dict], objective: str, title: str):
    """A rich table of the best results."""
    from rich.table import Table

    short = {"formation_energy_per_atom": "E_form", "energy_per_atom": "E",
             "volume_per_atom": "V", "density": "density"}  # fmt: skip
    table = Table(title=title, caption="E_form, E: eV/atom; V: Å³/atom; density: g/cm³")
    table.add_column("#", justify="right")
    table.add_column("key", no_wrap=True)
    table.add_column("formula", no_wrap=True)
    extra = [c for c in ("energy_per_atom", "volume_per_atom") if c != objective]
    for col in (objective, *extra):
        table.add_column(short.get(col, col), justify="right")
    table.add_column("round", justify="right")
    for i, r in enumerate(rows, 1):
        table.add_row(str(i), r["key"], r.get("formula", ""), _fmt(r.get(objective)),
                      *(_fmt(r.get(c)) for c in extra), str(r.get("round")))
    return table


class _Progress:
    """Rich progress bars, one per round."""

    def __init__(self, console, objective: str, budget: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console, self.objective, self.budget = console, objective, budget
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[best]}"), console=console,
        )  # fmt: skip
        self.task = None

    def start_round(self, rnd: int, n: int, label: str = "") -> None:
        self.bar.start()
        self.task = self.bar.add_task(f"round {rnd}" + (f", {label}" if label else ""), total=n, best="")

    def advance(self, outcome, best: dict | None) -> None:
        text = f"best {best['formula']} {best['value']:.4f}" if best else ""
        if not outcome.ok:
            self.console.print(f"  [yellow]failed[/] {outcome.key}: {outcome.error}")
        self.bar.update(self.task, advance=1, best=text)

    def end_round(self, summary) -> None:
        self.bar.stop()
        self.bar.remove_task(self.task)
        self.console.print(
            f"round {summary.round}{', ' + summary.label if summary.label else ''}: "
            f"{summary.evaluated} evaluated, {summary.failed} failed; "
            f"best {summary.best_key} ({self.objective} = {_fmt(summary.best_value)})"
        )
        cv = getattr(summary, "cv", None)
        if cv:
            r2 = "n/a" if cv.get("r2") is None else f"{cv['r2']:.3f}"
            self.console.print(
                f"  model before this round ({cv['folds']}-fold CV on {cv['n']} results): "
                f"MAE {_fmt(cv['mae'])}, R² {r2}, {cv['within_2sigma']:.0%} within ±2σ"
                + (f"; {summary.pruned} pruned" if getattr(summary, "pruned", 0) else "")
            )


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
) -> None:
    """Run a campaign to its budget, or continue it where it stopped.

    Validates the whole file first. Every result is stored as soon as it is
    computed; run the same command again after a crash or Ctrl-C to continue.
    Where the work runs (--executor, --workers, --cluster, --address) may
    change between runs of the same campaign.
    """
    from htflow.campaign import Campaign
    from htflow.config import load_config

    overrides = {k: v for k, v in {"type": executor, "workers": workers, "address": address,
                                   "cluster": str(cluster) if cluster else None}.items() if v is not None}
    if overrides and "type" not in overrides:
        overrides["type"] = "dask"
    cfg = load_config(file, store=store, executor=overrides or None)
    console = _console()
    camp = Campaign(cfg, announce=lambda line: console.print(line, highlight=False, soft_wrap=True))
    console.print(
        f"[bold]{cfg.name}[/]: {len(cfg.space.elements)} elements ({', '.join(camp.space.elements)}), "
        f"{cfg.structure.prototype} {cfg.structure.n_atoms} atoms, calculator {cfg.calculator.name}, "
        f"sampler {cfg.search.sampler}, budget {cfg.search.budget}; store {camp.db.location}"
    )
    with camp.db:
        before = camp.db.results.count({"campaign": cfg.name})
    progress = None if quiet else _Progress(console, cfg.objective.name, cfg.search.budget)
    doc = camp.run(progress=progress)
    st = camp.status()["counts"]
    with camp.db:
        new = camp.db.results.count({"campaign": cfg.name}) - before
    if new == 0:
        console.print(f"campaign {cfg.name!r} is complete ({doc['stop_reason']}); nothing to compute")
    console.print(
        f"{new} computed now; {st['done']} done and {st['failed']} failed in all; "
        f"stopped: {doc['stop_reason']}"
    )
    rows = camp.best(top)
    if rows:
        console.print(best_table(rows, cfg.objective.name, f"best {len(rows)} by {cfg.objective.name} "
                                 f"({cfg.objective.goal})"))
    plot = _plot(camp)
    if plot:
        console.print(f"plot: {plot}")
    if camp.promoted is not None:
        p = camp.promoted.status()["counts"]
        console.print(f"promoted to {cfg.promote.calculator.name}: {p['done']} done and {p['failed']} failed "
                      f"in campaign {camp.promoted.name!r} (htflow status {camp.promoted.name})")
    console.print(f"results in {camp.db.location}; try: htflow status {cfg.name}")


def _plot(camp) -> Path | None:
    """The convergence plot beside an embedded store (or in the working folder)."""
    from htflow.report import convergence_plot

    cfg = camp.config
    folder = Path(cfg.store.path) if cfg.store.backend == "embedded" else Path(".")
    return convergence_plot(
        camp.summaries(), cfg.objective.name, cfg.objective.goal,
        folder / "plots" / f"{cfg.name}-convergence.png", f"{cfg.name}: best so far",
    )  # fmt: skip


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Campaign file (YAML).")]) -> None:
    """Check a campaign file without running or writing anything."""
    from htflow.config import load_config

    cfg = load_config(file)
    space = cfg.space.build()
    size = f"{space.grid_size():,} grid compositions" if space.is_grid else "continuous"
    _console().print(f"{file}: valid ({cfg.name}: {size}, budget {cfg.search.budget})")


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="Campaign name (the 'name' in its file).")],
    store: StoreOpt = None,
    top: Annotated[int, typer.Option(min=1, max=1000, help="Rows of best candidates.")] = 5,
) -> None:
    """Show a campaign's progress: state, rounds, counts and best candidates."""

    db = _open_db(store)
    with db:
        doc = _campaign_doc(db, name)
        counts = {
            s: db.candidates.count({"campaign": name, "status": s})
            for s in ("proposed", "running", "done", "failed", "pruned")
        }
        obj = doc["config"]["objectives"][0]
        direction = 1 if obj["goal"] == "minimize" else -1
        best = list(
            db.results.query(
                {"campaign": name, "status": "done", obj["name"]: {"$ne": None}},
                sort={obj["name"]: direction}, limit=top,
            )
        )  # fmt: skip
    console = _console()
    budget = doc["config"]["search"]["budget"]
    used = sum(v for k, v in counts.items() if k != "pruned")
    console.print(
        f"[bold]{name}[/]: {doc['state']}"
        + (f" ({doc.get('stop_reason')})" if doc.get("stop_reason") else "")
        + f"; {used}/{budget} of budget; done {counts['done']}, failed {counts['failed']}, "
        f"pending {counts['proposed'] + counts['running']}"
        + (f", pruned {counts['pruned']}" if counts["pruned"] else "")
        + f"; store {db.location}"
    )
    console.print(rounds_table(doc.get("rounds", []), obj["name"]))
    model = model_table(doc.get("rounds", []))
    if model is not None:
        console.print(model)
    if best:
        console.print(best_table(best, obj["name"], f"best {len(best)} by {obj['name']} ({obj['goal']})"))


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Campaign name (see htflow status).")],
    store: StoreOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for index.html and the PNGs (default: <store>/reports/NAME).")] = None,
) -> None:
    """Write a campaign's report: one self-contained HTML page, with its plots also as PNGs.

    Learning curve against random orderings of the same evaluations, the
    surrogate's cross-validation (parity plot, MAE/RMSE/R² per round), a map
    of the compositions coloured by the objective, the best results and the
    failures.
    """
    from htflow.campaign import Campaign
    from htflow.config import CampaignConfig
    from htflow.report import write_report

    db = _open_db(store)
    with db:
        doc = _campaign_doc(db, name)
    cfg = CampaignConfig.model_validate({**doc["config"], "executor": {}, "store": db.cfg.model_dump()})
    camp = Campaign(cfg, db=db)
    if out is None:
        out = (Path(db.cfg.path) if db.cfg.backend == "embedded" else Path(".")) / "reports" / name
    with db:
        index = write_report(camp, out)
    pngs = sorted(p.name for p in out.glob("*.png"))
    _console().print(f"report: {index} (plots: {', '.join(pngs) or 'none yet'})")


@app.command()
def build(store: StoreOpt = None) -> None:
    """Gather every campaign's results into one materials collection (one document per material).

    A material is a composition (as realised) on one prototype and cell; the
    result of the highest fidelity is kept (DFT over ML potentials over EMT).
    Reruns only rebuild materials with newer results. Query it with
    `htflow query --collection materials`.
    """
    from htflow.builder import MaterialsBuilder

    db = _open_db(store)
    with db:
        builder = MaterialsBuilder(db.results, db.materials)
        n = builder.build()
        total = db.materials.count()
    _console().print(f"materials: {n} built or updated, {total} in all; store {db.location}")


@app.command()
def serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the store to the network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    public_url: Annotated[str | None, typer.Option(
        help="Where clients reach the server, e.g. https://db.example.org behind a proxy "
             "(OPTIMADE links are absolute). Default: http://HOST:PORT.")] = None,
) -> None:
    """Serve the store read-only: a dashboard, /api/campaigns, /api/results?filter=... and OPTIMADE."""
    from htflow.server import serve as run_server

    if public_url is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", public_url):
        from htflow.errors import InputError

        raise InputError(f"--public-url: {public_url!r} is not an http(s) URL such as https://db.example.org")
    db = _open_db(store)
    run_server(db.cfg, host=host, port=port, public_url=public_url,
               announce=lambda line: _console().print(line, soft_wrap=True))


def rounds_table(rounds: list[dict], objective: str):
    """One row per round: what was computed and the best so far."""
    from rich.table import Table

    table = Table(title="rounds")
    for col in ("round", "evaluated", "failed", "best so far", objective):
        table.add_column(col, justify="left" if col == "best so far" else "right")
    for r in sorted(rounds, key=lambda r: r["round"]):
        table.add_row(str(r["round"]), str(r.get("evaluated", "-")), str(r.get("failed", "-")),
                      r.get("best_key") or "", _fmt(r.get("best_value")))
    return table


def model_table(rounds: list[dict]):
    """The surrogate's k-fold CV before each round, or None when no round used a model."""
    from rich.table import Table

    rows = [r for r in sorted(rounds, key=lambda r: r["round"]) if r.get("cv")]
    if not rows:
        return None
    table = Table(title="model: k-fold cross-validation on all results before each round")
    for col in ("round", "n", "MAE", "RMSE", "R²", "in ±1σ", "in ±2σ", "pruned"):
        table.add_column(col, justify="right")
    for r in rows:
        cv = r["cv"]
        table.add_row(str(r["round"]), str(cv["n"]), _fmt(cv["mae"]), _fmt(cv["rmse"]),
                      _fmt(cv.get("r2"), 3), f"{cv['within_1sigma']:.0%}", f"{cv['within_2sigma']:.0%}",
                      str(r.get("pruned", 0)))
    return table


def _parse_json(text: str | None, what: str, default: Any) -> Any:
    from htflow.errors import InputError

    if text is None:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: not valid JSON ({exc.msg} at column {exc.colno}): {text}") from None


def _query_rows(db, collection: str, filt: dict, fields: list[str] | None, sort: list[str],
                limit: int, campaign: str | None) -> list[dict]:
    from htflow.errors import InputError
    from htflow.store.query import QueryError, check_field, check_filter

    try:
        check_filter(filt)
        for f in fields or []:
            check_field(f)
        sort_spec = {}
        for s in sort:
            desc = s.startswith("-")
            sort_spec[check_field(s.lstrip("-+"))] = -1 if desc else 1
    except QueryError as exc:
        raise InputError(str(exc)) from None
    if campaign:
        field = {"campaigns": "name", "materials": "seen_in"}.get(collection, "campaign")
        filt = {"$and": [filt, {field: campaign}]}
    store = db.collection(collection)
    try:
        rows = list(store.query(filt, properties=fields, sort=sort_spec or None, limit=limit))
    except (QueryError, ValueError, TypeError) as exc:
        raise InputError(f"--filter: cannot run this query ({exc})") from None
    for r in rows:
        r.pop("_id", None)
    return rows


def _emit(rows: list[dict], fields: list[str] | None, fmt: Fmt, out) -> None:
    from htflow.store.sqlite import dumps

    if fmt == Fmt.json:
        out.write(dumps(rows).decode() + "\n")
        return
    cols = fields or _default_columns(rows)
    from pydash import get

    flat = [{c: get(r, c) for c in cols} for r in rows]
    if fmt == Fmt.csv:
        w = csv.writer(out)
        w.writerow(cols)
        for r in flat:
            w.writerow([_fmt(r[c]) if not isinstance(r[c], float) else repr(r[c]) for c in cols])
        return
    from rich.table import Table

    table = Table()
    for c in cols:
        table.add_column(c)
    for r in flat:
        table.add_row(*(_fmt(r[c]) for c in cols))
    _console().print(table)


def _default_columns(rows: list[dict]) -> list[str]:
    preferred = ["campaign", "key", "formula", "status", "round", "formation_energy_per_atom",
                 "energy_per_atom", "volume_per_atom", "error", "name", "state"]  # fmt: skip
    present = {k for r in rows for k in r}
    cols = [c for c in preferred if c in present]
    return cols or sorted(k for k in present if not isinstance(rows[0].get(k), dict | list))[:8]


@app.command()
def query(
    filter: Annotated[
        str | None,
        typer.Option("--filter", "-f", help='MongoDB-style JSON filter, e.g. \'{"nelements": 2}\'.'),
    ] = None,
    fields: Annotated[str | None, typer.Option(help="Comma-separated fields to return.")] = None,
    sort: Annotated[
        list[str] | None, typer.Option(help="Sort field; prefix '-' for descending. Repeatable.")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, max=1_000_000, help="At most this many (0: all).")] = 20,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    collection: Annotated[
        str, typer.Option(help="results, candidates, campaigns, jobs or materials (htflow build).")
    ] = "results",
    format: Annotated[Fmt, typer.Option("--format", help="Output format.")] = Fmt.table,
    store: StoreOpt = None,
) -> None:
    """Query the store with a MongoDB-style filter; print a table, JSON or CSV."""
    filt = _parse_json(filter, "--filter", {})
    field_list = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    db = _open_db(store)
    with db:
        rows = _query_rows(db, collection, filt, field_list, sort or [], limit, campaign)
    _emit(rows, field_list, format, sys.stdout)


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="Campaign to export.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: standard output).")
    ] = None,
    format: Annotated[Fmt, typer.Option("--format", help="json (full documents) or csv.")] = Fmt.json,
    store: StoreOpt = None,
) -> None:
    """Export every result of a campaign (JSON with structures, or CSV of properties)."""
    from htflow.errors import InputError

    if format == Fmt.table:
        raise InputError("--format: export writes json or csv; allowed: json, csv")
    if output is not None and output.is_dir():
        raise InputError(f"--output: {output} is a folder; give a file name")
    db = _open_db(store)
    with db:
        _campaign_doc(db, name)
        rows = _query_rows(db, "results", {}, None, ["round", "key"], 0, name)
    fields = None
    if format == Fmt.csv:
        fields = ["key", "formula", "status", "round", "nelements", "n_atoms", "energy_per_atom",
                  "formation_energy_per_atom", "volume_per_atom", "density", "error"]  # fmt: skip
    buf = io.StringIO()
    _emit(rows, fields, format, buf)
    if output is None:
        sys.stdout.write(buf.getvalue())
    else:
        output.write_text(buf.getvalue())
        _console(stderr=True).print(f"wrote {len(rows)} results to {output}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: pin threads, run, and turn bad input into exit status 2."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from htflow.campaign import CampaignError
    from htflow.errors import InputError

    interrupted = (
        "\ninterrupted: finished results are saved; run the same command to continue"
    )
    try:
        # Not standalone: our errors propagate here. Typer then turns Ctrl-C and
        # typer.Exit into a returned exit code instead of raising.
        rv = app(args=argv, standalone_mode=False)
        if rv == 130:
            print(interrupted, file=sys.stderr)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except CampaignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("\naborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: bad option values, unknown commands
        if hasattr(exc, "show"):
            exc.show()
        sys.exit(getattr(exc, "exit_code", 2))

if __name__ == "__main__":
    main()
