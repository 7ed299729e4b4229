"""Thermodynamic stability of a campaign's results: the convex hull and the energy above it.

The hull is pymatgen's :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram`
over every computed result of the campaign's chemical system, with the
campaign's elemental reference calculations as the elements' entries (the
same calculator and settings as the results, so energies are comparable).
Total energies are used, so the hull does not depend on how formation
energies were referenced. It is recomputed after every round and each
result's ``e_above_hull`` (eV/atom) is updated where it changed.
"""

from __future__ import annotations

from typing import Any

CHANGED_EV = 1e-9
"""A stored ``e_above_hull`` is rewritten only when it moved by more than this (eV/atom)."""


def entries(results: list[dict], references: dict[str, float]) -> list[Any]:
    """PDEntries: one per done result with an energy, plus one per element at its reference energy.

    ``results`` need ``key``, ``counts`` and ``energy_per_atom``; the entry's
    ``entry_id`` is the result's key (``ref:El`` for the references).
    """
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    out = [PDEntry(Composition({el: 1}), e, name=el, attribute=f"ref:{el}") for el, e in references.items()]
    for r in results:
        if r.get("status", "done") != "done" or r.get("energy_per_atom") is None or not r.get("counts"):
            continue
        comp = Composition(r["counts"])
        out.append(PDEntry(comp, r["energy_per_atom"] * comp.num_atoms, name=r.get("formula"),
                           attribute=r["key"]))
    return out


def phase_diagram(results: list[dict], references: dict[str, float]) -> Any:
    """The convex hull of ``results`` with the elemental references (None with no result)."""
    from pymatgen.analysis.phase_diagram import PhaseDiagram

    es = entries(results, references)
    if len(es) <= len(references):
        return None
    return PhaseDiagram(es, elements=None)


def e_above_hull(results: list[dict], references: dict[str, float]) -> dict[str, float]:
    """Energy above the hull (eV/atom) of every done result, by key (0 for a vertex of the hull)."""
    pd = phase_diagram(results, references)
    if pd is None:
        return {}
    out: dict[str, float] = {}
    for entry in pd.all_entries:
        if entry.attribute and not str(entry.attribute).startswith("ref:"):
            out[entry.attribute] = max(0.0, float(pd.get_e_above_hull(entry, allow_negative=True)))
    return out


def hull_plot(results: list[dict], references: dict[str, float], path: Any, title: str = "") -> Any:
    """The convex hull (formation energy against composition) for a binary or ternary system; PNG path
    or None (another number of elements, or no results)."""
    from htflow.report import _plt, _save

    pd = phase_diagram(results, references)
    if pd is None or len(pd.elements) not in (2, 3):
        return None
    from pymatgen.analysis.phase_diagram import PDPlotter

    plt = _plt()
    plotter = PDPlotter(pd, show_unstable=0.2, backend="matplotlib")
    ax = plotter.get_plot(label_stable=True, label_unstable=False)
    fig = ax.figure
    fig.set_size_inches(6, 4.5)
    fig.set_dpi(120)
    ax.set_title(title or f"convex hull: {'-'.join(str(e) for e in pd.elements)}")
    return _save(fig, path, plt)
