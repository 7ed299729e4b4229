"""``htflow import``: a table of measured or computed compositions into the store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from htflow.cli.app import StoreOpt, app, console
from htflow.cli.common import store_config
from htflow.errors import InputError
from htflow.schemas.config import NAME_PATTERN


@app.command("import")
def import_data(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, JSON (a list of records) or Excel (.xlsx) table.")],
    campaign: Annotated[str, typer.Option("--campaign", "-c", help="Name the rows are stored under.")],
    prop: Annotated[list[str] | None, typer.Option(
        "--property", "-p", help="A property column: COLUMN or COLUMN=NAME (e.g. 'HV=hardness'). "
        "Repeatable.")] = None,
    formula: Annotated[str | None, typer.Option(
        help="Column of formulas (default: a column named formula/composition/alloy, else one column "
             "per element).")] = None,
    composition_unit: Annotated[str, typer.Option(
        help="auto, ratio, fraction, at% or wt% (wt% is converted to atomic fractions).")] = "auto",
    uncertainty: Annotated[list[str] | None, typer.Option(
        help="COLUMN=NAME: the uncertainty of property NAME. Repeatable.")] = None,
    unit: Annotated[list[str] | None, typer.Option(help="NAME=UNIT of a property, e.g. hardness=HV.")] = None,
    source: Annotated[str | None, typer.Option(help="Column naming each row's source.")] = None,
    doi: Annotated[str | None, typer.Option(help="Column of DOIs.")] = None,
    processing: Annotated[str | None, typer.Option(help="Column describing processing.")] = None,
    fidelity: Annotated[str | None, typer.Option(
        help="A label for every row (e.g. experiment, dft) where no fidelity column says.")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel: the sheet (default: the first).")] = None,
    skip_bad_rows: Annotated[bool, typer.Option(
        "--skip-bad-rows", help="Import the good rows and list the bad ones (default: refuse the file).",
    )] = False,
    store: StoreOpt = None,
) -> None:
    """Import a table of compositions and their properties (measured or from elsewhere).

    Each row is stored (repeated measurements of a composition are kept); importing the same file
    again adds nothing. Every row is checked first: by default one bad row refuses the file, and
    each bad row is listed with its number and column.
    """
    from htflow.datasets import ColumnMap  # lazy: CLI start-up (pymatgen)
    from htflow.datasets.importer import prepare, store_rows  # lazy: CLI start-up
    from htflow.datasets.tables import read_table  # lazy: CLI start-up
    from htflow.store.db import CampaignDB  # lazy: CLI start-up

    if not re.match(NAME_PATTERN, campaign):
        raise InputError(f"--campaign: {campaign!r} is not a name; use letters, digits, '_', '-', '.'")
    cfg = store_config(store)
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
