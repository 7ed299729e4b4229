"""Laboratory worksheets: a round's samples written out to be made and measured, and the filled-in
sheet read back (``htflow ingest``), every problem one line naming its row and column.

A worksheet (``NAME-round-R.csv``, and the same as ``.xlsx``) has one row per sample: ``key``,
``formula`` (atomic per cent), one empty column per objective (and ``<objective>_uncertainty``),
``status`` and ``note``, then what the laboratory needs to make it (at% and wt% of each element,
grams of each element for the sample mass) and why the model chose it (prediction ± std, reason).

Reading back, a row is found by ``key`` (or, without one, by ``formula``: the candidate of that
composition, within :data:`FORMULA_TOLERANCE`). A row is

- measured: a value for every objective (``status`` empty or ``done``);
- failed: ``status: failed`` with the reason in ``note`` (the sample could not be made or
  measured; the feasibility model learns from it), and no values;
- not yet measured: no value and no status (a partial batch is allowed: it is awaited still).

Anything else (a key that is not a candidate, a row given twice, a value that is not a number, a
row with some objectives but not all, a failed row without a reason, a sample already recorded
with another value) refuses the whole file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Element

from htflow.datasets.rows import RowError, number
from htflow.errors import InputError
from htflow.space.compositions import as_fractions, composition_key
from htflow.space.formulas import FormulaError, formula_amounts

#: how far (largest difference of an element's atomic fraction) a formula may be from a candidate's
FORMULA_TOLERANCE = 1e-3
STATUSES = {"": "", "done": "done", "measured": "done", "ok": "done", "failed": "failed", "fail": "failed"}
UNCERTAINTY_SUFFIXES = ("_uncertainty", "_std")
MAX_LISTED = 10


def at_formula(composition: dict[str, float]) -> str:
    """A formula in atomic per cent, e.g. ``Fe62Ni38`` or ``Zr41.2Ti13.8Cu12.5Ni10Be22.5``."""
    return "".join(f"{el}{100 * x:.4g}" for el, x in sorted(composition.items()))


def _reason(cand: dict, phase: str | None, sampler: str) -> str:
    p = cand.get("prediction") or {}
    if "acquisition" in p:
        return f"model: acquisition {p['acquisition']:.4g} (the round's best not yet made)"
    if phase and phase.startswith("initial"):
        return f"space-filling start, before there is a model: {phase}"
    if phase:
        return f"{phase} ({sampler} sampler)"
    return f"sampler {sampler}"


def worksheet_table(cands: list[dict], objectives: list[Any], sample_mass_g: float,
                    phase: str | None = None, sampler: str = "") -> pd.DataFrame:
    """The worksheet of ``cands`` (one row each) as a DataFrame; columns as the module says."""
    elements = sorted({el for c in cands for el in c["composition"]}, key=lambda el: Element(el).Z)
    rows = []
    for c in cands:
        frac = c["composition"]
        mass = {el: frac.get(el, 0.0) * float(Element(el).atomic_mass) for el in elements}
        total = sum(mass.values())
        row: dict[str, Any] = {"key": c["key"], "formula": at_formula(frac)}
        for o in objectives:
            row[o.name] = ""
            row[f"{o.name}_uncertainty"] = ""
        row.update(status="", note="")
        for el in elements:
            row[f"{el}_at%"] = round(100 * frac.get(el, 0.0), 4)
        for el in elements:
            row[f"{el}_wt%"] = round(100 * mass[el] / total, 4)
        for el in elements:
            row[f"{el}_g"] = round(sample_mass_g * mass[el] / total, 5)
        p = c.get("prediction") or {}
        for o in objectives:
            mine = "mean" in p and p.get("of", objectives[0].name) == o.name
            row[f"predicted_{o.name}"] = round(p["mean"], 6) if mine else ""
            row[f"predicted_{o.name}_std"] = round(p["std"], 6) if mine and p.get("std") is not None else ""
        row["chosen_because"] = _reason(c, phase, sampler)
        rows.append(row)
    return pd.DataFrame(rows)


def write_worksheets(df: pd.DataFrame, folder: Path, stem: str, formats: list[str]) -> list[Path]:
    """``folder/stem.csv`` (and ``.xlsx``); a worksheet that exists already is left as it is (the
    laboratory may be filling it in). Each file appears whole (written aside, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        paths.append(path)
        if path.exists():
            continue
        tmp = folder / f".{stem}.{os.getpid()}.tmp.{fmt}"
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
                df.to_excel(xw, index=False, sheet_name="worksheet")
                sheet = xw.sheets["worksheet"]
                sheet.freeze_panes = "C2"
                for col in sheet.columns:
                    width = max(len(str(cell.value or "")) for cell in col)
                    sheet.column_dimensions[col[0].column_letter].width = min(max(8, width + 2), 40)
        os.replace(tmp, path)
    return paths


@dataclass
class Measurements:
    """What a filled-in worksheet holds, checked against the campaign."""

    #: one per measured or failed sample: key, status, values, uncertainty, note, row
    records: list[dict] = field(default_factory=list)
    #: rows already recorded with the same values (a file ingested twice adds nothing)
    already: int = 0


class _Bad(Exception):
    def __init__(self, column: str | None, message: str):
        super().__init__(f", column {column!r}: {message}" if column else f": {message}")


def _number(text: str, column: str) -> float | None:
    try:
        return number(text, column)
    except RowError as exc:
        raise _Bad(exc.column, exc.message) from None


class _Finder:
    """A row's candidate, by key or by formula."""

    def __init__(self, candidates: dict[str, dict], campaign: str):
        self.candidates, self.campaign = candidates, campaign
        self.keys = list(candidates)

    def by_key(self, key: str) -> str:
        if key not in self.candidates:
            raise _Bad("key", f"{key[:60]!r} is not a sample of campaign {self.campaign!r}")
        return key

    def by_formula(self, text: str) -> str:
        try:
            fractions = as_fractions(formula_amounts(text))
        except (FormulaError, ValueError) as exc:
            raise _Bad("formula", str(exc)) from None
        key = composition_key(fractions)
        if key in self.candidates:
            return key

        def distance(k: str) -> float:
            comp = self.candidates[k]["composition"]
            return max(abs(comp.get(el, 0.0) - fractions.get(el, 0.0)) for el in set(comp) | set(fractions))

        ranked = sorted(self.keys, key=distance)
        if not ranked or distance(ranked[0]) > FORMULA_TOLERANCE:
            near = f" (nearest: {at_formula(self.candidates[ranked[0]]['composition'])})" if ranked else ""
            raise _Bad("formula", f"{text[:60]!r} is not a sample of campaign {self.campaign!r}{near}")
        return ranked[0]


def _columns(df: pd.DataFrame, objectives: list[str], path: Path) -> tuple[str | None, str | None, dict]:
    cols = list(df.columns)
    lower = {c.lower(): c for c in cols}
    key, formula = lower.get("key"), lower.get("formula")
    if key is None and formula is None:
        raise InputError(f"{path.name}: no key or formula column; a worksheet names each sample by key "
                         f"(or formula). Columns: {', '.join(cols[:20])}")
    present = [o for o in objectives if o in cols]
    if not present:
        raise InputError(f"{path.name}: no column of the campaign's objectives ({', '.join(objectives)}); "
                         f"columns: {', '.join(cols[:20])}")
    missing = [o for o in objectives if o not in cols]
    if missing:
        raise InputError(f"{path.name}: no column {', '.join(missing)}; every objective of the campaign "
                         f"({', '.join(objectives)}) needs a column")
    unc = {o: next((c for s in UNCERTAINTY_SUFFIXES if (c := f"{o}{s}") in cols), None) for o in objectives}
    return key, formula, unc


def _row(row: dict, objectives: list[str], unc: dict, finder: _Finder, key_col: str | None,
         formula_col: str | None) -> dict | None:
    """One row as a record, None when nothing is filled in yet; raises _Bad."""
    status_text = str(row.get("status", "")).strip().lower()
    if status_text not in STATUSES:
        raise _Bad("status", f"{status_text[:30]!r} is not a status; allowed: done, failed, or empty")
    status = STATUSES[status_text]
    note = str(row.get("note", "")).strip()[:1000]
    values = {o: v for o in objectives if (v := _number(str(row[o]), o)) is not None}
    uncertainty = {o: v for o, c in unc.items()
                   if c and o in values and (v := _number(str(row[c]), c)) is not None}
    given_key = str(row[key_col]).strip() if key_col else ""
    given_formula = str(row[formula_col]).strip() if formula_col else ""
    if not given_key and not given_formula:
        if values or status:
            raise _Bad(None, "no key or formula: which sample is it?")
        return None
    key = finder.by_key(given_key) if given_key else finder.by_formula(given_formula)
    if status == "failed":
        if values:
            raise _Bad(next(iter(values)), "the sample is marked failed but has a value; a failed sample "
                                           "has no measurement (empty the value or the status)")
        if not note:
            raise _Bad("note", "the sample is marked failed; say why in the note column")
        return {"key": key, "status": "failed", "values": {}, "note": note}
    if not values:
        if status == "done":
            raise _Bad(objectives[0], "the sample is marked done but has no value")
        return {"key": key, "status": None}
    empty = [o for o in objectives if o not in values]
    if empty:
        raise _Bad(empty[0], f"empty, but {', '.join(values)} is given; fill in every objective "
                             f"({', '.join(objectives)}) or mark the sample failed")
    if any(v < 0 for v in uncertainty.values()):
        raise _Bad(unc[next(o for o, v in uncertainty.items() if v < 0)], "a negative uncertainty")
    record = {"key": key, "status": "done", "values": values, "note": note}
    if uncertainty:
        record["uncertainty"] = uncertainty
    return record


def _same(record: dict, result: dict, objectives: list[str]) -> bool:
    if record["status"] != result.get("status"):
        return False
    if record["status"] == "failed":
        return True
    return all(math.isclose(record["values"][o], result.get(o, math.nan), rel_tol=1e-9) for o in objectives)


def read_measurements(df: pd.DataFrame, path: Path, campaign: str, objectives: list[str],
                      candidates: dict[str, dict], recorded: dict[str, dict]) -> Measurements:
    """Check every row of a filled-in worksheet against the campaign's samples (``candidates``, by
    key) and what is already recorded (``recorded``: key → result); :class:`InputError` lists every
    bad row (nothing may be stored then)."""
    key_col, formula_col, unc = _columns(df, objectives, path)
    finder = _Finder(candidates, campaign)
    out, bad, seen = Measurements(), [], {}
    cols = list(df.columns)
    for i, values in enumerate(df.itertuples(index=False, name=None)):
        where = f"{path.name}: row {i + 1} (line {i + 2})"
        row = dict(zip(cols, values, strict=True))
        try:
            record = _row(row, objectives, unc, finder, key_col, formula_col)
        except _Bad as exc:
            bad.append(f"{where}{exc}")
            continue
        if record is None:
            continue
        key = record["key"]
        if key in seen:
            bad.append(f"{where}, column {'key' if key_col else 'formula'!r}: sample {key} is also in row "
                       f"{seen[key]}; give each sample once")
            continue
        seen[key] = i + 1
        if record["status"] is None:  # not measured yet: still awaited (the store says how many)
            continue
        old = recorded.get(key)
        if old is not None:
            if _same(record, old, objectives):
                out.already += 1
                continue
            was = "failed" if old.get("status") == "failed" else ", ".join(
                f"{o} {old.get(o)}" for o in objectives)
            bad.append(f"{where}: sample {key} is already recorded ({was}); a recorded measurement is not "
                       "replaced (import repeats with htflow import)")
            continue
        out.records.append({**record, "row": i + 1})
    if bad:
        listed = f" (the first {MAX_LISTED} listed)" if len(bad) > MAX_LISTED else ""
        raise InputError("\n".join(bad[:MAX_LISTED]) + f"\n{path.name}: {len(bad)} bad rows{listed}; nothing "
                         "ingested")
    if not out.records and not out.already:
        raise InputError(f"{path.name}: no measurement: no row has a value of {', '.join(objectives)} or "
                         "status failed; fill in the measured samples and ingest again")
    return out
