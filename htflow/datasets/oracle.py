"""A laboratory replayed from a table: ``calculator: {name: experiment, options: {oracle: FILE}}``.

The table (CSV, TSV, JSON or Excel) has a composition per row (a ``formula`` column or one column
per element, read as by ``htflow import``) and one column per objective. A composition listed
several times answers with the mean of its rows. A row with ``status`` ``failed`` (or a composition
without a value) answers "could not be made", so replays exercise the feasibility model too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from htflow.datasets.rows import ColumnMap, RowError, parse_row
from htflow.datasets.tables import read_table
from htflow.errors import InputError

#: how far (largest difference of an element's atomic fraction) a sample may be from a table row
TOLERANCE = 1e-4


class Oracle:
    """Answers a sample's measurement from the table."""

    def __init__(self, path: str, objectives: tuple[str, ...]):
        self.path, self.objectives = path, objectives
        self.rows = _load(path, objectives)

    def answer(self, key: str, composition: dict[str, float]) -> dict:
        """``{"status": "done", "values": {...}}`` or ``{"status": "failed", "note": why}``."""
        row = self.rows.get(key)
        if row is None:
            near = [r for r in self.rows.values() if set(r["composition"]) == set(composition) and
                    max(abs(r["composition"][el] - x) for el, x in composition.items()) <= TOLERANCE]
            row = near[0] if near else None
        if row is None:
            return {"status": "failed", "note": f"not in the oracle table {Path(self.path).name}"}
        if row.get("failed") or len(row["values"]) < len(self.objectives):
            return {"status": "failed", "note": row.get("note") or "could not be made (oracle table)"}
        return {"status": "done", "values": dict(row["values"])}


@lru_cache(maxsize=4)
def _load(path: str, objectives: tuple[str, ...]) -> dict[str, dict]:
    where = "calculator.options.oracle"
    file = Path(path).expanduser()
    try:
        df = read_table(file)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    missing = [o for o in objectives if o not in df.columns]
    if missing:
        raise InputError(f"{where}: {file.name} has no column {', '.join(missing)} (the campaign's "
                         "objectives); "
                         f"columns: {', '.join(list(df.columns)[:20])}")
    try:
        cmap = ColumnMap.resolve(list(df.columns), list(objectives))
    except InputError as exc:
        raise InputError(f"{where}: {file.name}: {exc}") from None
    status = next((c for c in df.columns if c.lower() == "status"), None)
    groups: dict[str, dict] = {}
    for i, values in enumerate(df.itertuples(index=False, name=None)):
        row = dict(zip(df.columns, values, strict=True))
        failed = status is not None and str(row[status]).strip().lower() in ("failed", "fail")
        if failed:  # parsed for its composition only
            row = {**row, objectives[0]: "0"}
        try:
            rec = parse_row(row, cmap)
        except RowError as exc:
            raise InputError(f"{where}: {file.name} row {i + 1} (line {i + 2}), {exc}") from None
        if rec is None:
            continue
        g = groups.setdefault(rec["key"], {"composition": rec["composition"], "n": {}, "sum": {}})
        if failed:
            g["failed"] = True
            g["note"] = str(row.get("note", "")).strip() or "could not be made (oracle table)"
            continue
        for name, v in rec["properties"].items():
            g["sum"][name] = g["sum"].get(name, 0.0) + v
            g["n"][name] = g["n"].get(name, 0) + 1
    if not groups:
        raise InputError(f"{where}: {file.name} has no row with a value of {', '.join(objectives)}")
    for g in groups.values():
        g["values"] = {k: g["sum"][k] / g["n"][k] for k in g["sum"]}
    return groups
