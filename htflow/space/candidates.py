"""A list of candidate compositions (``space: {mode: list, file: candidates.csv}``): the pool is
exactly the listed compositions.

The file is a CSV with a ``formula`` (or ``composition``/``alloy``) column, or one column per
element (headed ``Fe``, ``Ni``, ...; amounts in any unit, normalised). Other columns are ignored.
A composition listed twice counts once. Every bad row is reported with its row number.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from htflow.space.compositions import SpaceError, as_fractions, composition_key
from htflow.space.formulas import SYMBOLS, FormulaError, formula_amounts

FORMULA_COLUMNS = ("formula", "composition", "alloy")
MAX_LISTED = 10


def _row_amounts(row: dict, formula: str | None, elements: list[str]) -> dict[str, float]:
    if formula:
        return formula_amounts(str(row[formula]))
    amounts = {}
    for el in elements:
        text = str(row[el]).strip()
        try:
            value = float(text) if text else 0.0
        except ValueError:
            raise FormulaError(f"column {el!r}: {text[:30]!r} is not a number") from None
        if value < 0 or value != value:
            raise FormulaError(f"column {el!r}: {text[:30]!r} is not an amount of at least 0")
        amounts[el] = value
    return amounts


def read_candidates(path: str | Path) -> list[dict[str, float]]:
    """The listed compositions as fractions, in file order, without repeats; :class:`SpaceError`."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SpaceError(f"space.file: {str(path)!r} does not exist (a CSV of candidate compositions)")
    try:
        df = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"space.file: cannot read {path} as CSV ({str(exc).splitlines()[0]})") from None
    columns = [str(c).strip() for c in df.columns]
    formula = next((c for c in columns if c.lower() in FORMULA_COLUMNS), None)
    elements = [c for c in columns if c in SYMBOLS]
    if not formula and not elements:
        raise SpaceError(f"space.file: {path} has no formula column and no element columns (headed Fe, Ni, "
                         f"...); columns: {', '.join(columns[:20])}")
    df.columns = columns
    points: dict[str, dict[str, float]] = {}
    bad = []
    for i, row in enumerate(df.to_dict("records")):
        try:
            fractions = as_fractions(_row_amounts(row, formula, elements))
        except (FormulaError, ValueError) as exc:
            bad.append(f"space.file: {file.name} row {i + 1} (line {i + 2}): {exc}")
            continue
        points.setdefault(composition_key(fractions), fractions)
    if bad:
        more = f" ({len(bad)} bad rows, the first {MAX_LISTED} listed)" if len(bad) > MAX_LISTED else ""
        raise SpaceError("\n".join(bad[:MAX_LISTED]) + more)
    if not points:
        raise SpaceError(f"space.file: {path} lists no composition")
    return list(points.values())
