"""Replay a ground-truth table instead of calculating: the ``lookup`` calculator.

A table is a CSV with one row per composition (columns ``key``, one column of
atom counts per element, ``energy_per_atom`` and optionally
``volume_per_atom``), as written by ``benchmarks/emt_pool.py``. A campaign
with ``calculator: {name: lookup, options: {table: emt-fcc7}}`` runs exactly
like an EMT campaign (same flow, store and search), but each evaluation
returns the recorded energy in microseconds, so search strategies can be
compared on thousands of compositions and many seeds. Bundled tables live in
``htflow/data``; any other value of ``table`` is a file path.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jobflow import Maker, job
from pymatgen.core import Structure

from htflow.calculators.base import CalculatorSpec
from htflow.errors import InputError
from htflow.schemas.config import CampaignConfig
from htflow.space.compositions import CompositionSpace, composition_key, is_element

DATA = Path(__file__).resolve().parents[1] / "data"


def bundled_tables() -> list[str]:
    """Names of the tables shipped with htflow."""
    return sorted(p.stem for p in DATA.glob("*.csv"))


def table_path(name: str) -> Path:
    """The file of a bundled table name or a path; InputError when neither exists."""
    if (DATA / f"{name}.csv").is_file():
        return DATA / f"{name}.csv"
    path = Path(name).expanduser()
    if path.is_file():
        return path
    raise InputError(
        f"calculator.options.table: {name!r} is neither a bundled table "
        f"({', '.join(bundled_tables()) or 'none'}) nor a CSV file"
    )


@lru_cache(maxsize=8)
def _load(path: str) -> tuple[tuple[str, ...], dict[str, dict]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "energy_per_atom" not in fields:
            raise InputError(f"calculator.options.table: {path} has no energy_per_atom column")
        elements = tuple(f for f in fields if is_element(f))
        rows = {}
        for row in reader:
            counts = {el: int(row[el]) for el in elements if int(row[el] or 0)}
            rows[composition_key(counts)] = {
                "energy_per_atom": float(row["energy_per_atom"]),
                "volume_per_atom": float(row["volume_per_atom"]) if row.get("volume_per_atom") else None,
            }
    return elements, rows


@lru_cache(maxsize=8)
def _column(path: str, column: str) -> dict[str, float] | None:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if column not in (reader.fieldnames or []):
            return None
        elements = [f for f in reader.fieldnames or [] if is_element(f)]
        return {composition_key({el: int(row[el]) for el in elements if int(row[el] or 0)}):
                float(row[column]) for row in reader if row[column]}


def table_column(name: str, column: str) -> dict[str, float] | None:
    """``{composition key: value}`` of one column of a table (None when it has no such column)."""
    return _column(str(table_path(name)), column)


def load_table(name: str) -> tuple[tuple[str, ...], dict[str, dict]]:
    """``(elements, {composition key: row})`` of a table."""
    return _load(str(table_path(name)))


@job
def lookup_energy(structure: Structure, table: str) -> dict:
    """A task document (as atomate2's ASE jobs write) with the table's energy for ``structure``."""
    _, rows = load_table(table)
    counts = {str(el): round(n) for el, n in structure.composition.items()}
    key = composition_key(counts)
    if key not in rows:
        raise KeyError(f"{key} is not in table {table}")
    row = rows[key]
    out = structure.copy()
    if row["volume_per_atom"]:
        out.scale_lattice(row["volume_per_atom"] * len(out))
    return {
        "structure": out,
        "output": {"energy": row["energy_per_atom"] * len(out), "mol_or_struct": out, "n_steps": 0,
                   "elapsed_time": 0.0},
        "is_force_converged": True,
    }


@dataclass
class LookupMaker(Maker):
    """Maker of :func:`lookup_energy` jobs for one table."""

    name: str = "lookup"
    table: str = "emt-fcc7"

    def make(self, structure: Structure):
        return lookup_energy(structure, self.table)


class LookupSpec(CalculatorSpec):
    """The ``lookup`` calculator: energies replayed from a ground-truth table."""

    def __init__(self) -> None:
        super().__init__("lookup", lambda cfg: LookupMaker(table=cfg.options["table"]),
                         meta={"method": "lookup in a ground-truth table"})

    def check(self, campaign: CampaignConfig, space: CompositionSpace) -> None:
        opts = campaign.calculator.options
        if not opts.get("table"):
            raise InputError(
                "calculator.options: the lookup calculator needs the option table "
                f"(a bundled table: {', '.join(bundled_tables()) or 'none'}, or a CSV path)")
        elements, _ = load_table(str(opts["table"]))
        bad = [el for el in space.elements if el not in elements]
        if bad:
            raise InputError(
                f"space.elements: table {opts['table']!r} has no {', '.join(bad)}; it covers "
                f"{', '.join(elements)}"
            )
