"""Evaluation flows: one jobflow ``Flow`` per candidate.

``relax`` (the calculator's Maker, e.g. atomate2's ``EmtRelaxMaker``) feeds
``properties``, which turns the relaxed task document into the numbers a
campaign stores and optimises (energy and formation energy per atom, volume
per atom, density). The flow's output is the ``properties`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atomate2.ase.jobs import EmtRelaxMaker
from jobflow import Flow, Maker, job
from pydash import get
from pymatgen.core import Structure


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


@job
def compute_properties(task: Any, references: dict[str, float] | None = None) -> dict:
    """Properties of a relaxed structure from an atomate2 task document (ASE, force field or VASP)."""
    structure = get(task, "output.mol_or_struct") or get(task, "structure")
    if isinstance(structure, dict):
        structure = Structure.from_dict(structure)
    # ASE/force-field documents say whether forces converged; VASP's (emmet) give a state
    state = get(task, "state")
    converged = get(task, "is_force_converged") if state is None else state == "successful"
    return properties(structure, float(get(task, "output.energy")), references,
                      get(task, "output.n_steps"), get(task, "output.elapsed_time"), converged)


@dataclass
class EvaluationMaker(Maker):
    """Build the evaluation flow of one structure.

    Parameters
    ----------
    name
        Flow name.
    relax_maker
        The calculator's Maker (relaxation or single point).
    """

    name: str = "htflow evaluation"
    relax_maker: Maker = field(default_factory=lambda: _default_relax())

    def make(self, structure: Structure, references: dict[str, float] | None = None) -> Flow:
        """The flow ``relax → properties`` for ``structure``."""
        relax = self.relax_maker.make(structure)
        props = compute_properties(relax.output, references)
        props.name = "properties"
        return Flow([relax, props], output=props.output, name=self.name)


def _default_relax() -> Maker:
    return EmtRelaxMaker()
