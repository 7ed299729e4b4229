"""What htflow needs to know about a calculator: :class:`CalculatorSpec` and shared helpers.

A calculator is named in the campaign file by a registry name (``emt``) or a
``package.module:object`` import path. The object may be a jobflow ``Maker``
(class or instance) whose ``make(structure)`` returns an atomate2-style task
document, or an ASE ``Calculator`` class, which is wrapped in atomate2's
``AseRelaxMaker``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ase
from jobflow import Maker

from htflow.errors import InputError
from htflow.schemas.config import CalculatorConfig, CampaignConfig
from htflow.space.compositions import CompositionSpace

#: Quantities every calculator yields through the evaluation flow.
BASE_PROPERTIES = ("energy_per_atom", "formation_energy_per_atom", "volume_per_atom", "density")

#: Elements with parameters in ASE's EMT (Jacobsen, Stoltze and Nørskov, 1996).
EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"})


@dataclass
class CalculatorSpec:
    """What htflow needs to know about a calculator."""

    name: str
    make_relax: Any  # callable(CalculatorConfig) -> Maker
    elements: frozenset[str] | None = None
    #: what it yields (objectives must be among them); None: any name (a laboratory's measurements)
    properties: tuple[str, ...] | None = BASE_PROPERTIES
    meta: dict = field(default_factory=dict)

    def relax_maker(self, cfg: CalculatorConfig) -> Maker:
        """The Maker that relaxes (or, with ``relax: false``, single-points) a structure."""
        return self.make_relax(cfg)

    def check(self, campaign: CampaignConfig, space: CompositionSpace) -> None:
        """Refuse elements the calculator has no parameters for."""
        if self.elements is None:
            return
        bad = [el for el in space.elements if el not in self.elements]
        if bad:
            raise InputError(
                f"space.elements: calculator {self.name!r} has no parameters for "
                f"{', '.join(bad)}; it supports: {', '.join(sorted(self.elements))}"
            )

    def batch_maker(self, cfg: CalculatorConfig) -> Maker | None:
        """A Maker whose ``make(structures, references)`` evaluates several structures in one job
        (its output: ``{"results": [properties or {"error": ...}, ...]}``), or None: one at a time."""
        return None

    def metadata(self) -> dict:
        """Name and versions recorded with every result."""
        return {"name": self.name, "ase_version": ase.__version__, **self.meta}


def ase_relax_kwargs(cfg: CalculatorConfig) -> dict:
    return {
        "relax_cell": cfg.relax,
        "steps": cfg.steps if cfg.relax else 0,
        # atomate2 otherwise appends every relaxed structure to ./final_atoms_object.xyz in the
        # user's folder; the relaxed structure is already in the result document
        "relax_kwargs": {"fmax": cfg.fmax, "final_atoms_object_file": None},
        # The per-step structures would make every stored document ~250 kB.
        "ionic_step_data": ("energy",),
        "calculator_kwargs": dict(cfg.options),
    }
