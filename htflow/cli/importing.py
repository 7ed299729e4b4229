"""``htflow import``: a table of measured or computed compositions into the store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from htflow.cli.app import StoreOpt, app, console
from htflow.cli.common import campaign_doc, store_config
from htflow.errors import InputError
from htflow.schemas.config import NAME_PATTERN

FileOpt = Annotated[Path | None, typer.Argument(
        help="CSV, TSV, JSON (a list of records) or Excel (.xlsx) table.")]
CampaignOpt = Annotated[str, typer.Option("--campaign", "-c", help="Name the rows are stored under.")]
OptimadeOpt = Annotated[str | None, typer.Option(
        "--optimade", help="Instead of a file: an OPTIMADE base URL, e.g. "
        "https://optimade.materialsproject.org (see docs/data.md).")]
MpOpt = Annotated[str | None, typer.Option(
        "--mp", help="Instead of a file: Materials Project entries of a chemical system through MP's API "
        "(Fe-Ni: exactly these elements; Fe,Ni: at least these). Needs MP_API_KEY.")]
FilterOpt = Annotated[str, typer.Option(
        "--filter", help="--optimade: an OPTIMADE filter, e.g. "
        "'elements HAS ALL \"Fe\",\"Ni\" AND nelements=2'.")]
MaxResultsOpt = Annotated[int, typer.Option(
        min=0, help="--optimade, --mp: stop after this many entries (0: all).")]
PropOpt = Annotated[list[str] | None, typer.Option(
        "--property", "-p", help="A property column: COLUMN or COLUMN=NAME (e.g. 'HV=hardness'). "
        "Repeatable.")]
FormulaOpt = Annotated[str | None, typer.Option(
        help="Column of formulas (default: a column named formula/composition/alloy, else one column "
             "per element).")]
CompositionUnitOpt = Annotated[str, typer.Option(
        help="auto, ratio, fraction, at% or wt% (wt% is converted to atomic fractions).")]
UncertaintyOpt = Annotated[list[str] | None, typer.Option(
        help="COLUMN=NAME: the uncertainty of property NAME. Repeatable.")]
UnitOpt = Annotated[list[str] | None, typer.Option(help="NAME=UNIT of a property, e.g. hardness=HV.")]
SourceOpt = Annotated[str | None, typer.Option(help="Column naming each row's source.")]
DoiOpt = Annotated[str | None, typer.Option(help="Column of DOIs.")]
ProcessingOpt = Annotated[str | None, typer.Option(help="Column describing processing.")]
FidelityOpt = Annotated[str | None, typer.Option(
        help="A label for every row (e.g. experiment, dft) where no fidelity column says.")]
SheetOpt = Annotated[str | None, typer.Option(help="Excel: the sheet (default: the first).")]
SkipBadRowsOpt = Annotated[bool, typer.Option(
        "--skip-bad-rows", help="Import the good rows and list the bad ones (default: refuse the file).",
    )]


@app.command("import")
def import_data(
    file: FileOpt = None,
    campaign: CampaignOpt = "",
    optimade: OptimadeOpt = None,
    mp: MpOpt = None,
    filter: FilterOpt = "",
    max_results: MaxResultsOpt = 0,
    prop: PropOpt = None,
    formula: FormulaOpt = None,
    composition_unit: CompositionUnitOpt = "auto",
    uncertainty: UncertaintyOpt = None,
    unit: UnitOpt = None,
    source: SourceOpt = None,
    doi: DoiOpt = None,
    processing: ProcessingOpt = None,
    fidelity: FidelityOpt = None,
    sheet: SheetOpt = None,
    skip_bad_rows: SkipBadRowsOpt = False,
    store: StoreOpt = None,
) -> None:
    """Import a table of compositions and their properties (measured or from elsewhere), or the
    entries of a public database through OPTIMADE (--optimade URL --filter ...).

    Each row is stored (repeated measurements of a composition are kept); importing the same file
    again adds nothing. Every row is checked first: by default one bad row refuses the file, and
    each bad row is listed with its number and column.
    """
    from htflow.datasets import ColumnMap  # lazy: CLI start-up (pymatgen)
    from htflow.datasets.importer import prepare, store_rows  # lazy: CLI start-up
    from htflow.datasets.tables import read_table  # lazy: CLI start-up
    from htflow.store.db import CampaignDB  # lazy: CLI start-up

    if not campaign:
        raise InputError("--campaign: give the name the rows are stored under, e.g. --campaign hea-hardness")
    if not re.match(NAME_PATTERN, campaign):
        raise InputError(f"--campaign: {campaign!r} is not a name; use letters, digits, '_', '-', '.'")
    cfg = store_config(store)
    if sum(x is not None for x in (file, optimade, mp)) != 1:
        raise InputError("give one source: a FILE to import, --optimade URL (with --filter), or --mp CHEMSYS")
    if optimade is not None:
        _import_optimade(cfg, optimade, filter, campaign, max_results)
        return
    if mp is not None:
        _import_mp(cfg, mp, campaign, max_results)
        return
    df = read_table(file, sheet)
    cmap = ColumnMap.resolve(list(df.columns), prop or [], formula=formula, uncertainty=uncertainty or [],
                             units=unit or [], unit=composition_unit,
                             meta={"source": source, "doi": doi, "processing": processing}, fidelity=fidelity)
    with Progress(TextColumn("checking rows"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True, disable=len(df) < 5000) as progress:
        task = progress.add_task("rows", total=len(df))
        prepared = prepare(df, file, campaign, cmap, skip_bad_rows,
                           advance=lambda n: progress.advance(task, n))
    with CampaignDB(cfg) as db:  # opened only once every row is checked: a refused file writes nothing
        summary = store_rows(db, prepared)
        location = db.location
    _report(summary, ", ".join(sorted(set(cmap.properties.values()))), location)


def _import_optimade(cfg: Any, url: str, flt: str, campaign: str, max_results: int) -> None:
    from htflow.datasets.optimade_import import import_optimade  # lazy: CLI start-up
    from htflow.store.db import CampaignDB  # lazy: CLI start-up

    if not url.startswith(("http://", "https://")):
        raise InputError(f"--optimade: {url!r} is not an http(s) URL of an OPTIMADE API")
    with Progress(TextColumn(f"OPTIMADE {url}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("entries", total=max_results or None)
        with CampaignDB(cfg) as db:
            counts = import_optimade(db, url, flt, campaign, max_results,
                                     on_page=lambda n: progress.advance(task, n))
            location = db.location
    console().print(f"{url}: {counts['fetched']} entries fetched, {counts['new']} imported into "
                    f"{campaign!r}, {counts['already']} already there, {counts['unusable']} without a "
                    f"composition; store {location}", soft_wrap=True)


def _import_mp(cfg: Any, spec: str, campaign: str, max_results: int) -> None:
    from htflow.datasets.mp_import import import_mp, query_of  # lazy: CLI start-up

    query_of(spec)  # a bad chemical system is refused before the store is opened
    columns = (TextColumn(f"Materials Project {spec}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("entries", total=max_results or None)
        counts, location = import_mp(cfg, spec, campaign, max_results,
                                     on_page=lambda n: progress.advance(task, n))
    console().print(f"Materials Project {spec}: {counts['fetched']} entries fetched, {counts['new']} "
                    f"imported into {campaign!r}, {counts['already']} already there, {counts['unusable']} "
                    f"without a composition; store {location}", soft_wrap=True)


def _report(summary: Any, what: str, location: str) -> None:
    err = console(stderr=True)
    for line in summary.skipped[:20]:
        err.print(f"skipped: {line}", soft_wrap=True)
    if len(summary.skipped) > 20:
        err.print(f"skipped: ... {len(summary.skipped) - 20} more bad rows", soft_wrap=True)
    out = console()
    out.print(f"{summary.file}: {summary.new} rows imported into {summary.campaign!r} ({what}); "
              f"{summary.already} already there, {len(summary.skipped)} bad rows skipped, {summary.empty} "
              f"without a value left out; {summary.compositions} compositions, {summary.repeated} measured "
              f"more than once; store {location}", soft_wrap=True)
    out.print(f"see them with: htflow query --collection imported --campaign {summary.campaign}",
              soft_wrap=True)


def _ingest_store(store: str | None, file: Path) -> Any:
    """``--store``, else ``$HTFLOW_STORE``, else the store whose ``worksheets/`` folder holds the file,
    else the default store."""
    from htflow.settings import get_settings  # lazy: CLI start-up
    from htflow.store.db import CampaignDB  # lazy: CLI start-up

    if store or get_settings().store:
        return store_config(store)
    folder = file.resolve().parent
    if folder.name == "worksheets":
        cfg = store_config(str(folder.parent))
        if CampaignDB(cfg).exists():
            return cfg
    return store_config(None)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="The filled-in worksheet (CSV or Excel), or any table with "
                                              "key or formula and the objective columns.")],
    campaign: Annotated[str | None, typer.Option(
        "--campaign", "-c", help="The experiment campaign (default: from the worksheet's name).")] = None,
    sheet: SheetOpt = None,
    store: StoreOpt = None,
) -> None:
    """Record a laboratory's measurements of an experiment campaign's samples.

    Each row is a sample (by key, or by formula): a value for every objective (optional
    <objective>_uncertainty), or status 'failed' with the reason in 'note'; rows left empty are
    still awaited. Every row is checked first: one bad row refuses the file, nothing is written.
    """
    from htflow.campaign import experiment  # lazy: CLI start-up (the campaign loop imports atomate2)
    from htflow.datasets.tables import read_table  # lazy: CLI start-up
    from htflow.schemas.config import stored_config  # lazy: CLI start-up
    from htflow.store.db import CampaignDB  # lazy: CLI start-up

    df = read_table(file, sheet)
    cfg = _ingest_store(store, file)
    db = CampaignDB(cfg)
    if not db.exists():
        raise InputError(f"no htflow store at {db.location}; pass --store (the store of the campaign)")
    with db:
        names = db.campaigns.distinct("name")
        if campaign is None:
            waiting = [d["name"] for d in db.campaigns.query({"state": "waiting"}, ["name"])]
            campaign = experiment.campaign_for_file(file, names, waiting)
        doc = campaign_doc(db, campaign)
        summary = experiment.ingest(db, stored_config(doc["config"], cfg), file, df)
    out = console()
    left = sum(summary.awaiting.values())
    by_round = ", ".join(f"round {r}: {n}" for r, n in sorted(summary.awaiting.items()))
    out.print(f"{file.name}: {summary.measured} measurements and {summary.failed} failed samples recorded "
              f"for {summary.campaign!r}; {summary.already} already recorded; "
              + (f"{left} still awaited ({by_round})" if left else "the round is complete"),
              soft_wrap=True, highlight=False)
    out.print("next: htflow run <campaign file>" + (" (or --proceed-with-partial to go on without them)"
                                                       if left else ""), soft_wrap=True, highlight=False)
