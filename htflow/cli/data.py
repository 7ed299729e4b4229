"""``htflow query`` and ``htflow export``: documents out of the store as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from pydash import get
from rich.table import Table

from htflow.cli.app import ExportFmt, Fmt, StoreOpt, app, console
from htflow.cli.common import campaign_doc, open_db
from htflow.cli.common import fmt as fmt_value
from htflow.errors import InputError
from htflow.store.db import CampaignDB, redact
from htflow.store.filters import QUERY_FAILURES, check_filter
from htflow.store.query import QueryError, check_field
from htflow.store.sqlite import dumps


def _parse_json(text: str | None, what: str, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: not valid JSON ({exc.msg} at column {exc.colno}): {text}") from None


def _query_rows(db: CampaignDB, collection: str, filt: dict, fields: list[str] | None, sort: list[str],
                limit: int, campaign: str | None) -> list[dict]:
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
    except QUERY_FAILURES as exc:
        raise InputError(f"--filter: cannot run this query ({exc})") from None
    for r in rows:
        r.pop("_id", None)
        if collection == "campaigns" and isinstance(r.get("config", {}).get("store"), dict) and \
                isinstance(r["config"]["store"].get("uri"), str):  # stored before URIs were redacted
            r["config"]["store"]["uri"] = redact(r["config"]["store"]["uri"])
    return rows


def _emit(rows: list[dict], fields: list[str] | None, fmt: Fmt, out: TextIO) -> None:
    if fmt == Fmt.json:
        out.write(dumps(rows).decode() + "\n")
        return
    cols = fields or _default_columns(rows)

    flat = [{c: _source_text(get(r, c)) if c == "source" else get(r, c) for c in cols} for r in rows]
    if fmt == Fmt.csv:
        w = csv.writer(out)
        w.writerow(cols)
        for r in flat:
            w.writerow([fmt_value(r[c]) if not isinstance(r[c], float) else repr(r[c]) for c in cols])
        return

    heads = [SHORT.get(c, (c,))[0] for c in cols]
    named = [f"{SHORT[c][0]}: {c}{SHORT[c][1]}" for c in cols if c in SHORT]
    table = Table(caption="; ".join(named) or None)
    cells = [[fmt_value(r[c]) for c in cols] for r in flat]
    numeric = [all(isinstance(r[c], int | float) or r[c] is None for r in flat) for c in cols]
    for i, width in enumerate(_widths(heads, cells, numeric, console().width)):
        table.add_column(heads[i], justify="right" if numeric[i] else "left", no_wrap=True,
                         overflow="ellipsis", width=width)
    for row in cells:
        table.add_row(*row)
    console().print(table)


#: short table headings of long field names (the caption spells them out, with units)
SHORT = {"formation_energy_per_atom": ("E_form", " (eV/atom)"), "energy_per_atom": ("E", " (eV/atom)"),
         "volume_per_atom": ("V", " (Å³/atom)"), "e_above_hull": ("E_hull", " (eV/atom)")}


def _widths(cols: list[str], cells: list[list[str]], numeric: list[bool], room: int) -> list[int]:
    """Column widths that fit ``room`` characters: numbers whole; long text (keys, formulas,
    sources) narrowed, widest first, down to its header (then the terminal wraps the table)."""
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    floor = [w if numeric[i] else min(w, max(len(cols[i]), 6)) for i, w in enumerate(widths)]
    over = sum(widths) + 3 * len(cols) + 1 - room
    while over > 0:
        i = max(range(len(cols)), key=lambda j: widths[j] - floor[j])
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1
        over -= 1
    return widths


def _source_text(source: object) -> object:
    """Where a measured or imported row comes from, short: ``file lab-round-1.csv row 3``."""
    if not isinstance(source, dict):
        return source
    keys = ("imported", "oracle", "file", "row", "doi")
    return ", ".join(f"{k} {source[k]}" for k in keys if source.get(k))


def _default_columns(rows: list[dict]) -> list[str]:
    preferred = ["campaign", "key", "formula", "status", "round", "formation_energy_per_atom",
                 "energy_per_atom", "volume_per_atom", "error", "name", "state", "file", "doi"]  # fmt: skip
    present = {k for r in rows for k, v in r.items() if v not in (None, "")}  # an empty column says nothing
    cols = [c for c in preferred if c in present]
    # measured results name their properties (a list); imported rows hold them (a mapping)
    props = dict.fromkeys(p if isinstance(r.get("properties"), list) else f"properties.{p}"
                          for r in rows for p in r.get("properties") or [])
    cols += [*props, *(["source"] if "source" in present else [])]
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
    db = open_db(store)
    with db:
        rows = _query_rows(db, collection, filt, field_list, sort or [], limit, campaign)
    _emit(rows, field_list, format, sys.stdout)


def _parquet_writer(output: Path | None) -> Any:
    """The function that writes rows as a Parquet table (columns as in CSV), or an InputError saying
    what is missing: a file to write, or pyarrow."""
    if output is None:
        raise InputError("--format parquet writes a binary file: give --output FILE.parquet")
    try:
        import pyarrow as pa  # heavy: optional (htflow[parquet])
        import pyarrow.parquet as pq  # heavy: optional (htflow[parquet])
    except ImportError:
        raise InputError("--format parquet needs pyarrow, which is not installed: pip install "
                         "'htflow[parquet]' (or use --format csv)") from None

    def write(rows: list[dict], fields: list[str], path: Path) -> None:
        flat = [{c: _source_text(get(r, c)) if c == "source" else get(r, c) for c in fields} for r in rows]
        table = pa.Table.from_pylist(flat, schema=None) if flat else pa.table({c: [] for c in fields})
        try:
            pq.write_table(table, str(path))
        except OSError as exc:
            raise InputError(f"--output: cannot write {path} ({exc})") from None

    return write


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="Campaign to export.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: standard output).")
    ] = None,
    format: Annotated[ExportFmt, typer.Option(
        "--format", help="json (full documents), csv or parquet (properties and atomic fractions; parquet "
                         "needs --output and pyarrow: pip install 'htflow[parquet]').")] = ExportFmt.json,
    store: StoreOpt = None,
) -> None:
    """Export every result of a campaign (JSON with structures, or a CSV/Parquet table of properties)."""
    # before the store is opened: nothing to do without a file or pyarrow
    write_parquet = _parquet_writer(output) if format == ExportFmt.parquet else None
    if output is not None and output.is_dir():
        raise InputError(f"--output: {output} is a folder; give a file name")
    if output is not None and not output.parent.is_dir():
        raise InputError(f"--output: the folder {output.parent} does not exist; create it or give another "
                         "path")
    db = open_db(store)
    with db:
        doc = campaign_doc(db, name)
        rows = _query_rows(db, "results", {}, None, ["round", "key"], 0, name)
    fields = None
    if format != ExportFmt.json:
        fields = ["key", "formula", "status", "round", "nelements", "n_atoms", "energy_per_atom",
                  "formation_energy_per_atom", "e_above_hull", "volume_per_atom", "density",
                  "error"]  # fmt: skip
        objectives = [o["name"] for o in doc["config"]["objectives"] if o["name"] not in fields]
        elements = sorted({el for r in rows for el in r.get("composition") or {}})
        for r in rows:  # every element's atomic fraction, 0 where absent
            r["composition"] = {el: (r.get("composition") or {}).get(el, 0.0) for el in elements}
        fields += objectives + [f"composition.{el}" for el in elements]
        fields += ["source"] if any("source" in r for r in rows) else []
    if write_parquet is not None and output is not None:
        write_parquet(rows, fields or [], output)
        console(stderr=True).print(f"wrote {len(rows)} results to {output}")
        return
    buf = io.StringIO()
    _emit(rows, fields, Fmt(format.value), buf)
    if output is None:
        sys.stdout.write(buf.getvalue())
    else:
        try:
            output.write_text(buf.getvalue())
        except OSError as exc:
            raise InputError(f"--output: cannot write {output} ({exc.strerror or exc})") from None
        console(stderr=True).print(f"wrote {len(rows)} results to {output}")
