"""Importing a table into the ``imported`` collection: every row checked first, then stored.

One document per row (``row_id``: the file's SHA-256 and the row number), so repeated
measurements of one composition are all kept, and importing the same file again adds nothing.
By default one bad row refuses the whole file (every bad row listed, nothing written);
``skip_bad_rows`` keeps the good ones. :func:`aggregate` gives the model one value per
composition (mean, spread, count).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from htflow.datasets.rows import ColumnMap, RowError, parse_row
from htflow.errors import InputError
from htflow.schemas.documents import IMPORTED
from htflow.store.db import CampaignDB

MAX_LISTED = 20
CHUNK = 5000


@dataclass
class ImportSummary:
    """What an import did."""

    campaign: str
    file: str
    rows: int
    new: int
    already: int
    compositions: int
    repeated: int
    #: rows without a value for any of the chosen properties (left out)
    empty: int = 0
    skipped: list[str] = field(default_factory=list)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _label(path: Path, i: int) -> str:
    return f"record {i + 1}" if path.suffix.lower() == ".json" else f"row {i + 1} (line {i + 2})"


def check_rows(df: pd.DataFrame, cmap: ColumnMap, path: Path, advance: Callable[[int], None] | None = None
               ) -> tuple[list[tuple[int, dict]], list[str], int]:
    """Every row parsed: (row index, record) for the good ones, one line per bad one, and the
    number of rows without any property value."""
    good, bad, empty = [], [], 0
    columns = list(df.columns)
    for i, values in enumerate(df.itertuples(index=False, name=None)):
        row = dict(zip(columns, values, strict=True))
        try:
            record = parse_row(row, cmap)
        except RowError as exc:
            bad.append(f"{path.name}: {_label(path, i)}, {exc}")
        else:
            if record is None:
                empty += 1
            else:
                good.append((i, record))
        if advance and i % 1000 == 999:
            advance(1000)
    if advance:
        advance(len(df) % 1000)
    return good, bad, empty


@dataclass
class Prepared:
    """Checked rows of one file, ready to store."""

    docs: list[dict]
    summary: ImportSummary


def prepare(df: pd.DataFrame, path: Path, campaign: str, cmap: ColumnMap, skip_bad_rows: bool = False,
            advance: Callable[[int], None] | None = None) -> Prepared:
    """Check every row of ``df`` (read from ``path``) without touching a store; the documents to
    store, or :class:`InputError` listing the bad rows."""
    good, bad, empty = check_rows(df, cmap, path, advance)
    if bad and not skip_bad_rows:
        listed = f" (the first {MAX_LISTED} listed)" if len(bad) > MAX_LISTED else ""
        raise InputError("\n".join(bad[:MAX_LISTED]) + f"\n{path.name}: {len(bad)} of {len(df)} rows are bad"
                         f"{listed}; nothing imported (fix them, or keep the good rows with --skip-bad-rows)")
    if not good:
        names = ", ".join(sorted(cmap.properties.values()))
        raise InputError(f"{path.name}: no row has a value for {names}; nothing imported")
    digest = file_digest(path)
    now = datetime.now(UTC)
    units = {"units": dict(cmap.units)} if cmap.units else {}
    docs = [{**rec, **units, "row_id": f"{campaign}:{digest[:20]}:{i + 1}", "campaign": campaign,
             "row": i + 1, "file": path.name, "file_sha256": digest, "imported_at": now} for i, rec in good]
    counts = pd.Series([d["key"] for d in docs]).value_counts()
    summary = ImportSummary(campaign=campaign, file=path.name, rows=len(df), new=0, already=0,
                            compositions=len(counts), repeated=int((counts > 1).sum()), empty=empty,
                            skipped=bad)
    return Prepared(docs, summary)


def store_rows(db: CampaignDB, prepared: Prepared) -> ImportSummary:
    """Store the checked rows not stored before (same file, same campaign); the summary."""
    docs, summary = prepared.docs, prepared.summary
    store = db.collection(IMPORTED)
    seen = {d["row_id"] for d in store.query({"campaign": summary.campaign,
                                              "file_sha256": docs[0]["file_sha256"]}, ["row_id"])}
    new = [d for d in docs if d["row_id"] not in seen]
    with db.transaction():
        for start in range(0, len(new), CHUNK):
            store.update(new[start:start + CHUNK], key="row_id")
    summary.new, summary.already = len(new), len(docs) - len(new)
    return summary


def aggregate(db: CampaignDB, campaign: str, prop: str) -> dict[str, dict]:
    """One value per composition for the model: mean, spread (sample standard deviation, 0 for a
    single row), count, and the composition."""
    groups: dict[str, list[float]] = {}
    comps: dict[str, dict] = {}
    crit = {"campaign": campaign, f"properties.{prop}": {"$exists": True}}
    for d in db.collection(IMPORTED).query(crit, ["key", "composition", "properties"]):
        groups.setdefault(d["key"], []).append(float(d["properties"][prop]))
        comps[d["key"]] = d["composition"]
    return {k: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v),
                "composition": comps[k]} for k, v in groups.items()}
