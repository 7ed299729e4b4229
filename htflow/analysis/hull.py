"""Thermodynamic stability of a campaign's results: the convex hull and the energy above it.

The hull is pymatgen's :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram`
over every computed result of the campaign's chemical system, with the
campaign's elemental reference calculations as the elements' entries (the
same calculator and settings as the results, so energies are comparable).
Total energies are used, so the hull does not depend on how formation
energies were referenced. It is recomputed after every round and each
result's ``e_above_hull`` (eV/atom) is updated where it changed. Distances are computed per
chemical system (exact, and far cheaper than one hull of many elements).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from htflow.errors import InputError
from htflow.schemas.documents import Status

CHANGED_EV = 1e-9
"""A stored ``e_above_hull`` is rewritten only when it moved by more than this (eV/atom)."""


def load_phases(path: str, elements: list[str]) -> list[dict]:
    """Reference phases from a CSV file with columns ``formula`` and ``energy_per_atom`` (eV/atom,
    total energies from the campaign's own calculator and settings): known compounds that join
    the hull. Phases with an element outside ``elements`` are left out. Raises :class:`InputError`."""

    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"reference_phases: file {path!r} does not exist")
    try:
        rows = list(csv.DictReader(file.read_text().splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"reference_phases: cannot read {path!r} as CSV ({exc})") from None
    if not rows or not {"formula", "energy_per_atom"} <= set(rows[0]):
        raise InputError(f"reference_phases: {path!r} needs a header with columns formula and "
                         "energy_per_atom (eV/atom, from the campaign's calculator)")
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            comp = Composition(row["formula"])
            energy = float(row["energy_per_atom"])
        except (ValueError, TypeError, KeyError):
            raise InputError(f"reference_phases: {path!r} line {i}: need a formula and a number, got "
                             f"{row.get('formula')!r}, {row.get('energy_per_atom')!r}") from None
        if not math.isfinite(energy) or not len(comp):
            raise InputError(f"reference_phases: {path!r} line {i}: {row['formula']!r} has no finite energy")
        if {el.symbol for el in comp.elements} <= set(elements):
            counts = {el.symbol: float(n) for el, n in comp.items()}
            out.append({"formula": comp.reduced_formula, "counts": counts, "energy_per_atom": energy})
    return out


def entries(results: list[dict], references: dict[str, float], phases: list[dict] | None = None) -> list[Any]:
    """PDEntries: one per done result with an energy, one per element at its reference energy, and
    one per reference phase (:func:`load_phases`).

    ``results`` need ``key``, ``counts`` and ``energy_per_atom``; the entry's
    ``attribute`` is the result's key (``ref:El`` for the references, ``phase:formula`` for phases).
    """

    out = [PDEntry(Composition({el: 1}), e, name=el, attribute=f"ref:{el}") for el, e in references.items()]
    for ph in phases or []:
        comp = Composition(ph["counts"])
        out.append(PDEntry(comp, ph["energy_per_atom"] * comp.num_atoms, name=ph["formula"],
                           attribute=f"phase:{ph['formula']}"))
    for r in results:
        usable = r.get("energy_per_atom") is not None and r.get("counts")
        if r.get("status", Status.DONE) != Status.DONE or not usable:
            continue
        comp = Composition(r["counts"])
        out.append(PDEntry(comp, r["energy_per_atom"] * comp.num_atoms, name=r.get("formula"),
                           attribute=r["key"]))
    return out


def phase_diagram(results: list[dict], references: dict[str, float], phases: list[dict] | None = None) -> Any:
    """The convex hull of ``results`` with the elemental references (None with no result)."""

    es = entries(results, references, phases)
    if len(es) <= len(references):
        return None
    return PhaseDiagram(es, elements=None)


def e_above_hull(results: list[dict], references: dict[str, float],
                 systems: set[frozenset] | None = None, phases: list[dict] | None = None) -> dict[str, float]:
    """Energy above the hull (eV/atom) of every done result, by key (0 for a vertex of the hull).

    Computed per chemical system: a result's distance to the hull depends only on the entries
    whose elements are a subset of its own (its decomposition cannot use another element), so
    each system's small hull gives exactly what the hull of the whole space would, and stays
    cheap where the whole space's hull is not (seven elements: 2.0 s for 400 results as one
    hull, 0.22 s as 50 small ones). ``systems``: only the results of these chemical systems
    (element sets), e.g. those a round's new results can have changed (:func:`affected_systems`).
    """
    es = entries(results, references, phases)
    hull_of, system = _system_hulls(es)
    by_system: dict[frozenset, list] = {}
    for e, chem in zip(es, system, strict=True):
        if not str(e.attribute).startswith(("ref:", "phase:")):
            by_system.setdefault(chem, []).append(e)
    out: dict[str, float] = {}
    for chem, members in by_system.items():
        if not chem <= set(references) or (systems is not None and chem not in systems):
            continue
        pd = hull_of(chem)
        for entry in members:
            out[entry.attribute] = max(0.0, float(pd.get_e_above_hull(entry, allow_negative=True)))
    return out


def _system_hulls(es: list) -> tuple[Any, list[frozenset]]:
    """``(chem -> PhaseDiagram of the entries whose elements lie within chem, cached)`` and each
    entry's element set: the per-system hulls :func:`e_above_hull` and :func:`formation_hull` use."""

    system = [frozenset(el.symbol for el in e.composition.elements) for e in es]
    cache: dict[frozenset, Any] = {}

    def hull_of(chem: frozenset) -> Any:
        if chem not in cache:
            cache[chem] = PhaseDiagram([e for e, s in zip(es, system, strict=True) if s <= chem])
        return cache[chem]

    return hull_of, system


def formation_hull(results: list[dict], references: dict[str, float], phases: list[dict] | None,
                   elements: list[str]) -> Any:
    """``fractions (n, len(elements)) -> formation energy per atom of the hull there`` (eV/atom):
    the lower convex hull of the done results' formation energies, the elements at 0 and the
    reference phases, per chemical system. A composition above it by more than X is not stable
    within X."""

    pts: list[tuple[dict, float]] = [({el: 1.0}, 0.0) for el in elements]
    for r in results:
        f = r.get("formation_energy_per_atom")
        if r.get("status", Status.DONE) == Status.DONE and f is not None and r.get("counts"):
            pts.append((r["counts"], float(f)))
    for ph in phases or []:
        total = sum(ph["counts"].values())
        f = ph["energy_per_atom"] - sum(n / total * references[el] for el, n in ph["counts"].items())
        pts.append((ph["counts"], f))
    es = [PDEntry(Composition(c), f * Composition(c).num_atoms) for c, f in pts]
    hull_of, _ = _system_hulls(es)

    def hull(fractions: np.ndarray) -> np.ndarray:
        out = np.zeros(len(fractions))
        for i, row in enumerate(np.asarray(fractions, float)):
            chem = frozenset(el for el, x in zip(elements, row, strict=True) if x > 1e-12)
            if len(chem) < 2:
                continue
            comp = Composition({el: x for el, x in zip(elements, row, strict=True) if x > 1e-12})
            out[i] = hull_of(chem).get_hull_energy_per_atom(comp)
        return out

    return hull


def system_of(result: dict) -> frozenset:
    """The chemical system (element set) of a result."""
    return frozenset(el for el, n in (result.get("counts") or {}).items() if n)


def affected_systems(results: list[dict], new: list[dict]) -> set[frozenset]:
    """The systems whose hull distances ``new`` results can change: every system of ``results``
    that contains the system of a new one."""
    touched = {system_of(r) for r in new}
    return {s for s in {system_of(r) for r in results} if any(t <= s for t in touched)}
