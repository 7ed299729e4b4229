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

from typing import Any

CHANGED_EV = 1e-9
"""A stored ``e_above_hull`` is rewritten only when it moved by more than this (eV/atom)."""


def load_phases(path: str, elements: list[str]) -> list[dict]:
    """Reference phases from a CSV file with columns ``formula`` and ``energy_per_atom`` (eV/atom,
    total energies from the campaign's own calculator and settings): known compounds that join
    the hull. Phases with an element outside ``elements`` are left out. Raises :class:`InputError`."""
    import csv
    import math
    from pathlib import Path

    from pymatgen.core import Composition

    from htflow.errors import InputError

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
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    out = [PDEntry(Composition({el: 1}), e, name=el, attribute=f"ref:{el}") for el, e in references.items()]
    for ph in phases or []:
        comp = Composition(ph["counts"])
        out.append(PDEntry(comp, ph["energy_per_atom"] * comp.num_atoms, name=ph["formula"],
                           attribute=f"phase:{ph['formula']}"))
    for r in results:
        if r.get("status", "done") != "done" or r.get("energy_per_atom") is None or not r.get("counts"):
            continue
        comp = Composition(r["counts"])
        out.append(PDEntry(comp, r["energy_per_atom"] * comp.num_atoms, name=r.get("formula"),
                           attribute=r["key"]))
    return out


def phase_diagram(results: list[dict], references: dict[str, float], phases: list[dict] | None = None) -> Any:
    """The convex hull of ``results`` with the elemental references (None with no result)."""
    from pymatgen.analysis.phase_diagram import PhaseDiagram

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
    from pymatgen.analysis.phase_diagram import PhaseDiagram

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
    import numpy as np
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    pts: list[tuple[dict, float]] = [({el: 1.0}, 0.0) for el in elements]
    for r in results:
        f = r.get("formation_energy_per_atom")
        if r.get("status", "done") == "done" and f is not None and r.get("counts"):
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


def hull_plot(results: list[dict], references: dict[str, float], path: Any, title: str = "",
              phases: list[dict] | None = None) -> Any:
    """The convex hull of a binary (formation energy against composition) or ternary (composition
    triangle with the hull's tie lines) system; PNG path, or None for another number of elements
    or no results. Stable entries are labelled; the others are coloured by energy above hull."""
    import numpy as np

    from htflow.report import _plt, _save

    pd = phase_diagram(results, references, phases)
    if pd is None or len(pd.elements) not in (2, 3):
        return None
    els = sorted(pd.elements, key=lambda e: e.symbol)
    stable = set(pd.stable_entries)
    entries = list(pd.all_entries)
    ehull = np.array([max(0.0, pd.get_e_above_hull(e, allow_negative=True)) for e in entries])
    form = np.array([pd.get_form_energy_per_atom(e) for e in entries])
    frac = np.array([[e.composition.get_atomic_fraction(el) for el in els] for e in entries])
    is_stable = np.array([e in stable for e in entries])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    cmap = "viridis_r"
    vmax = max(float(ehull.max()), 1e-3)
    if len(els) == 2:
        x = frac[:, 1]
        order = np.argsort(x[is_stable])
        ax.plot(x[is_stable][order], form[is_stable][order], "-", color="k", lw=1.2, zorder=1)
        sc = ax.scatter(x[~is_stable], form[~is_stable], c=ehull[~is_stable], cmap=cmap, vmin=0,
                        vmax=vmax, s=22, zorder=2)
        ax.scatter(x[is_stable], form[is_stable], color="C3", s=36, marker="s", zorder=3, label="on the hull")
        ax.set_xlabel(f"fraction of {els[1].symbol} (rest {els[0].symbol})")
        ax.set_ylabel("formation energy (eV/atom)")
    else:
        def xy(f: np.ndarray) -> np.ndarray:
            return np.c_[f[:, 1] + f[:, 2] / 2, f[:, 2] * np.sqrt(3) / 2]

        corners = xy(np.eye(3))
        ax.plot(*np.vstack([corners, corners[:1]]).T, color="0.6", lw=1)
        for el, (cx, cy) in zip(els, corners, strict=True):
            ax.annotate(el.symbol, (cx, cy), textcoords="offset points", xytext=(0, -12 if cy == 0 else 6),
                        ha="center", fontsize=10, weight="bold")
        qfrac = np.array([[e.composition.get_atomic_fraction(el) for el in els] for e in pd.qhull_entries])
        qxy = xy(qfrac)
        for facet in pd.facets:
            for a in range(len(facet)):
                for b in range(a + 1, len(facet)):
                    i, j = facet[a], facet[b]
                    ax.plot(*qxy[[i, j]].T, color="k", lw=0.8, zorder=1)
        p = xy(frac)
        sc = ax.scatter(p[~is_stable, 0], p[~is_stable, 1], c=ehull[~is_stable], cmap=cmap, vmin=0,
                        vmax=vmax, s=22, zorder=2)
        ax.scatter(p[is_stable, 0], p[is_stable, 1], color="C3", s=36, marker="s", zorder=3,
                   label="on the hull")
        ax.set_aspect("equal")
        ax.axis("off")
    xs = frac[:, 1] if len(els) == 2 else None
    for k in np.flatnonzero(is_stable):
        if len(entries[k].composition.elements) > 1:
            pos = (xs[k], form[k]) if xs is not None else tuple(xy(frac[k:k + 1])[0])
            ax.annotate(entries[k].composition.reduced_formula, pos, textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
    if (~is_stable).any():
        fig.colorbar(sc, ax=ax, label="energy above hull (eV/atom)", shrink=0.8)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or f"convex hull: {'-'.join(e.symbol for e in els)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, plt)
