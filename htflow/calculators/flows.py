"""Evaluation flows: one jobflow ``Flow`` per candidate.

``relax`` (the calculator's Maker, e.g. atomate2's ``EmtRelaxMaker``) feeds
``properties``, which turns the relaxed task document into the numbers a
campaign stores and optimises (energy and formation energy per atom, volume
per atom, density). Property flows (atomate2's elastic workflow) run on the
relaxed structure in between, and named values of all these documents join
the properties (:mod:`htflow.calculators.properties`). The flow's output is
the ``properties`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atomate2.ase.jobs import EmtRelaxMaker
from jobflow import Flow, Maker, job
from pydash import get
from pymatgen.core import Structure

from htflow.calculators.properties import TASK, plain, read_properties


def formation_energy(energy_per_atom: float, counts: dict[str, int], references: dict[str, float]) -> float:
    """Energy per atom relative to the elements' reference energies per atom."""
    total = sum(counts.values())
    return energy_per_atom - sum(n / total * references[el] for el, n in counts.items())


def properties(structure: Structure, energy: float, references: dict[str, float] | None = None,
               n_steps: int | None = None, seconds: float | None = None,
               converged: bool | None = None) -> dict:
    """The numbers a campaign stores for a relaxed ``structure`` of total ``energy`` (eV)."""
    n = len(structure)
    counts = {str(el): round(amt) for el, amt in structure.composition.items()}
    e_pa = energy / n
    return {
        "energy": energy,
        "energy_per_atom": e_pa,
        "formation_energy_per_atom": formation_energy(e_pa, counts, references) if references else None,
        "volume_per_atom": structure.volume / n,
        "density": float(structure.density),
        "structure": structure.as_dict(),
        "n_steps": n_steps,
        "relax_seconds": seconds,
        "converged": converged,
    }


def _elastic_summary(d: dict) -> dict:
    """The elastic tensor (IEEE, GPa) and derived properties of atomate2's ElasticDocument (plain)."""
    return {"tensor_ieee_gpa": (d.get("elastic_tensor") or {}).get("ieee_format"),
            "derived_properties": d.get("derived_properties"), "order": d.get("order")}


@job
def compute_properties(task: Any, references: dict[str, float] | None = None,
                       documents: dict[str, Any] | None = None, extract: dict[str, str] | None = None,
                       required: tuple[str, ...] = ()) -> dict:
    """Properties of a relaxed structure from an atomate2 task document (ASE, force field or VASP), and
    the values ``extract`` names (name → path or ``module:function``) in it and the other ``documents``
    (those ``required``, the objectives, must be there: else this evaluation fails)."""
    docs = plain({TASK: task, **(documents or {})}) if documents or extract else {}
    values = read_properties(extract or {}, docs, required)
    structure = get(task, "output.mol_or_struct") or get(task, "structure")
    if isinstance(structure, dict):
        structure = Structure.from_dict(structure)
    # ASE/force-field documents say whether forces converged; VASP's (emmet) give a state
    state = get(task, "state")
    converged = get(task, "is_force_converged") if state is None else state == "successful"
    out = properties(structure, float(get(task, "output.energy")), references,
                     get(task, "output.n_steps"), get(task, "output.elapsed_time"), converged)
    if "elastic" in docs:
        out["elastic"] = _elastic_summary(docs["elastic"])
    return {**out, **values}


#: per-configuration bookkeeping, summed rather than averaged
_SUMMED = ("relax_seconds", "n_steps")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@job
def average_properties(outputs: list[dict]) -> dict:
    """Several decorations of one composition as one result: the mean of every number they share,
    their spread (sample std) and values under ``configurations``; the structure (and what else is
    not a number) of the lowest-energy one."""
    lowest = min(outputs, key=lambda o: o["energy_per_atom"])
    out, values = dict(lowest), {}
    for name in lowest:
        vals = [o.get(name) for o in outputs]
        if not all(_number(v) for v in vals):
            continue
        if name in _SUMMED:
            out[name] = sum(vals)
            continue
        out[name] = sum(vals) / len(vals)
        values[name] = [float(v) for v in vals]
    out["converged"] = all(o.get("converged") is not False for o in outputs)
    n = len(outputs)
    spread = {k: (sum((x - out[k]) ** 2 for x in v) / (n - 1)) ** 0.5 for k, v in values.items()}
    out["configurations"] = {"n": n, "std": spread, "values": values,
                             "lowest": outputs.index(lowest)}
    return out


@dataclass
class EvaluationMaker(Maker):
    """Build the evaluation flow of one structure.

    Parameters
    ----------
    name
        Flow name.
    relax_maker
        The calculator's Maker (relaxation or single point).
    property_makers
        Flows run on the relaxed structure, by the root name of their document (``elastic``).
    extract
        Properties read from the documents: name → dotted path or ``module:function``.
    required
        Those of them without which the evaluation fails (the objectives); others are left out when missing.
    """

    name: str = "htflow evaluation"
    relax_maker: Maker = field(default_factory=lambda: _default_relax())
    property_makers: dict[str, Maker] = field(default_factory=dict)
    extract: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def make(self, structure: Structure, references: dict[str, float] | None = None) -> Flow:
        """The flow ``relax → [property flows] → properties`` for ``structure``."""
        relax = self.relax_maker.make(structure)
        jobs, documents = [relax], {}
        for root, maker in self.property_makers.items():
            sub = maker.make(relax.output.structure)
            jobs.append(sub)
            documents[root] = sub.output
        props = compute_properties(relax.output, references, documents or None, self.extract or None,
                                   tuple(self.required))
        props.name = "properties"
        return Flow([*jobs, props], output=props.output, name=self.name)

    def make_configurations(self, structures: list[Structure],
                            references: dict[str, float] | None = None) -> Flow:
        """One evaluation flow per decoration of a composition, then their average
        (:func:`average_properties`); any one failing fails the composition."""
        if len(structures) == 1:
            return self.make(structures[0], references)
        flows = [self.make(s, references) for s in structures]
        for i, f in enumerate(flows):
            f.name = f"{self.name} configuration {i + 1}/{len(flows)}"
        avg = average_properties([f.output for f in flows])
        avg.name = "average over configurations"
        return Flow([*flows, avg], output=avg.output, name=self.name)


def _default_relax() -> Maker:
    return EmtRelaxMaker()
