"""Which columns of a user's table mean what, and each row turned into a record or a problem.

A row's composition is a formula (``Zr41.2Ti13.8Cu12.5Ni10Be22.5``, ``Al0.5CoCrFeNi``) or one
column per element; amounts are read in the unit given (``--composition-unit``):

- ``auto`` (default): a formula's subscripts are atom ratios; element columns are fractions if
  they sum to 1 and at% if they sum to 100;
- ``ratio``: atom ratios, normalised; ``fraction`` (sum 1), ``at%`` (sum 100): atomic;
- ``wt%``: weight per cent (sum 100), converted to atomic fractions with pymatgen's masses.

A row is refused, with its number and column, for an unreadable formula, a symbol that is not an
element, a negative or non-numeric amount, a sum away from 100 % (or 1) by more than
:data:`SUM_TOLERANCE`, or a non-numeric or non-finite property value. A row with no value for
any of the chosen properties is left out (a database of many properties has such rows), and
counted.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pymatgen.core import Composition

from htflow.errors import InputError
from htflow.space.compositions import composition_key, fractions_key, is_element
from htflow.space.formulas import FormulaError, formula_amounts

UNITS = ("auto", "ratio", "fraction", "at%", "wt%")
#: how far from 100 % a composition's amounts may sum (relative)
SUM_TOLERANCE = 0.01
FORMULA_NAMES = ("formula", "composition", "alloy", "chemical_formula", "formula_pretty")
META_NAMES = ("source", "doi", "processing", "fidelity", "note")


@dataclass
class ColumnMap:
    """What each column of a table holds: ``properties`` maps a column to a property name."""

    properties: dict[str, str]
    formula: str | None = None
    elements: list[str] = field(default_factory=list)
    uncertainty: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    unit: str = "auto"
    meta: dict[str, str] = field(default_factory=dict)  # source/doi/processing/fidelity/note -> column
    fidelity: str | None = None

    @classmethod
    def resolve(cls, columns: list[str], properties: list[str], formula: str | None = None,
                uncertainty: list[str] = (), units: list[str] = (), unit: str = "auto",
                meta: dict[str, str | None] | None = None, fidelity: str | None = None) -> ColumnMap:
        """Check the user's column choices against the table's columns; detect the rest."""
        if unit not in UNITS:
            raise InputError(f"--composition-unit: {unit!r} is not allowed; allowed: {', '.join(UNITS)}")
        have = set(columns)
        listing = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")

        def column(name: str, option: str) -> str:
            if name not in have:
                raise InputError(f"{option}: no column {name!r}; columns: {listing}")
            return name

        if formula is not None:
            column(formula, "--formula")
        else:
            formula = next((c for c in columns if c.lower() in FORMULA_NAMES), None)
        elements = [] if formula else [c for c in columns if is_element(c)]
        if not formula and not elements:
            raise InputError("no composition: name a formula column with --formula COLUMN, or give one "
                             f"column per element (headed Fe, Ni, ...); columns: {listing}")
        if not properties:
            raise InputError("name the property columns with --property COLUMN[=NAME] (repeat for several); "
                             f"columns: {listing}")
        props = _pairs(properties, "--property", column)
        taken = set(props.values())
        unc = _pairs(uncertainty, "--uncertainty", column)
        for col, name in unc.items():
            if name not in taken:
                raise InputError(f"--uncertainty: {col}={name} names no property; properties: "
                                 f"{', '.join(sorted(taken))}")
        unit_map = dict(_split(u, "--unit") for u in units)
        for name in unit_map:
            if name not in taken:
                raise InputError(f"--unit: {name!r} names no property; properties: "
                                 f"{', '.join(sorted(taken))}")
        found = {m: column(c, f"--{m}") for m, c in (meta or {}).items() if c}
        for m in META_NAMES:
            found.setdefault(m, next((c for c in columns if c.lower() == m), None))
        return cls(properties=props, formula=formula, elements=elements, uncertainty=unc, units=unit_map,
                   unit=unit, meta={m: c for m, c in found.items() if c}, fidelity=fidelity)


def _split(spec: str, option: str) -> tuple[str, str]:
    col, sep, name = spec.partition("=")
    col, name = col.strip(), (name.strip() if sep else col.strip())
    if not col or not name:
        raise InputError(f"{option}: {spec!r} is not COLUMN or COLUMN=NAME")
    return col, name


def _pairs(specs: list[str], option: str, column) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        col, name = _split(spec, option)
        column(col, option)
        if name in out.values():
            raise InputError(f"{option}: two columns are mapped to {name!r}; give each its own name")
        out[col] = name
    return out


class RowError(ValueError):
    """One bad cell of one row: the column and what is wrong."""

    def __init__(self, column: str, message: str):
        super().__init__(f"column {column!r}: {message}")
        self.column, self.message = column, message


def number(text: str, column: str) -> float | None:
    """A cell as a finite number, None when empty; :class:`RowError` naming the column otherwise."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowError(column, f"{text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise RowError(column, f"{text[:40]!r} is not a finite number")
    return value


def _amounts_from_formula(text: str, column: str) -> dict[str, float]:
    try:
        return formula_amounts(text)
    except FormulaError as exc:
        raise RowError(column, str(exc)) from None


def _to_fractions(amounts: dict[str, float], unit: str, column: str, from_columns: bool) -> dict[str, float]:
    total = sum(amounts.values())
    if min(amounts.values(), default=0.0) < 0:
        raise RowError(column, "a negative amount")
    if total <= 0:
        raise RowError(column, "no element has a positive amount")
    if unit == "auto" and from_columns:
        sums = (("fraction", 1.0), ("at%", 100.0))
        unit = next((u for u, t in sums if abs(total - t) <= t * SUM_TOLERANCE), "")
        if not unit:
            raise RowError(column, f"the amounts sum to {total:g}, neither 1 (fractions) nor 100 (at%); "
                                   "give --composition-unit")
    expected = {"fraction": 1.0, "at%": 100.0, "wt%": 100.0}.get(unit)
    if expected is not None and abs(total - expected) > expected * SUM_TOLERANCE:
        raise RowError(column, f"the amounts sum to {total:g}, not {expected:g} ({unit})")
    if unit == "wt%":
        return dict(Composition.from_weight_dict(amounts).fractional_composition.get_el_amt_dict())
    return {el: v / total for el, v in amounts.items() if v > 0}


@functools.lru_cache(maxsize=65536)
def _formula_composition(text: str, unit: str, column: str) -> tuple[dict[str, float], str]:
    """A formula's fractions (sorted, rounded) and key; cached, since measurements repeat compositions."""
    fractions = _to_fractions(_amounts_from_formula(text, column), unit, column, False)
    key = fractions_key(fractions)  # as composition_key(formula) gives it, without normalising twice
    return {el: round(v, 9) for el, v in sorted(fractions.items())}, key


def parse_row(row: Mapping[str, str], cmap: ColumnMap) -> dict | None:
    """One row as a record (composition, key, properties, uncertainties, metadata), None for a row
    without a value for any property; raises RowError."""
    for col in cmap.properties:
        if str(row[col]).strip():
            break
    else:
        return None
    if cmap.formula:
        given = str(row[cmap.formula])
        fractions, key = _formula_composition(given, cmap.unit, cmap.formula)
    else:
        amounts = {el: number(str(row[el]), el) or 0.0 for el in cmap.elements}
        fractions = _to_fractions(amounts, cmap.unit, "+".join(cmap.elements[:3]) + "...", True)
        given = " ".join(f"{el}{amounts[el]:g}" for el in cmap.elements if amounts[el])
        fractions = {el: round(v, 9) for el, v in sorted(fractions.items())}
        key = composition_key(fractions)
    properties = {name: v for col, name in cmap.properties.items()
                  if (v := number(str(row[col]), col)) is not None}
    uncertainty = {name: v for col, name in cmap.uncertainty.items()
                   if name in properties and (v := number(str(row[col]), col)) is not None}
    if uncertainty and min(uncertainty.values()) < 0:
        raise RowError(next(iter(cmap.uncertainty)), "a negative uncertainty")
    record = {"key": key, "composition": dict(fractions), "elements": sorted(fractions),
              "nelements": len(fractions), "formula": given.strip(), "properties": properties}
    if uncertainty:
        record["uncertainty"] = uncertainty
    for m, col in cmap.meta.items():
        if str(row[col]).strip():
            record[m] = str(row[col]).strip()[:1000]
    if cmap.fidelity and "fidelity" not in record:
        record["fidelity"] = cmap.fidelity
    return record
