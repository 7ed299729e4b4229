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
from atomate2.forcefields.flows.elastic import ElasticMaker
from jobflow import Maker

from htflow.calculators.flows import EvaluationMaker
from htflow.calculators.properties import ELASTIC_PROPERTIES
from htflow.errors import InputError
from htflow.schemas.config import CalculatorConfig, CampaignConfig
from htflow.space.compositions import CompositionSpace

#: Quantities every calculator yields through the evaluation flow.
BASE_PROPERTIES = ("energy_per_atom", "formation_energy_per_atom", "volume_per_atom", "density")

#: eV/Å: the elastic flow relaxes at least this tightly (atomate2 uses 1e-5; 1e-3 moves EMT moduli of a
#: 16-atom alloy cell by 0.1 GPa and takes 30% less time)
ELASTIC_FMAX = 1e-3

#: Elements with parameters in ASE's EMT (Jacobsen, Stoltze and Nørskov, 1996).
EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"})


@dataclass
class CalculatorSpec:
    """What htflow needs to know about a calculator."""

    name: str
    make_relax: Any  # callable(CalculatorConfig) -> Maker
    elements: frozenset[str] | None = None
    #: what it yields (objectives must be among them, or have a path); None: any name (a laboratory)
    properties: tuple[str, ...] | None = BASE_PROPERTIES
    meta: dict = field(default_factory=dict)
    #: more properties its Maker's task document holds: name → path (``task.output.x``) or module:function
    extract: dict[str, str] = field(default_factory=dict)

    def relax_maker(self, cfg: CalculatorConfig) -> Maker:
        """The Maker that relaxes (or, with ``relax: false``, single-points) a structure."""
        return self.make_relax(cfg)

    def available(self, cfg: CalculatorConfig) -> tuple[str, ...] | None:
        """The properties an objective may name without a path (None: any)."""
        if self.properties is None:
            return None
        more = tuple(ELASTIC_PROPERTIES) if cfg.flow == "elastic" else ()
        return (*self.properties, *self.extract, *more)

    def property_sources(self, campaign: CampaignConfig) -> dict[str, str]:
        """Every property read from the evaluation's documents: name → path or module:function (the
        elastic flow's, the Maker's declared ones, and the objectives' own paths and extractors)."""
        sources = dict(ELASTIC_PROPERTIES) if campaign.calculator.flow == "elastic" else {}
        sources.update(self.extract)
        for obj in campaign.objectives:
            if obj.path or obj.extractor:
                sources[obj.name] = obj.path or obj.extractor
        return sources

    def elastic_maker(self, cfg: CalculatorConfig) -> Maker:
        """atomate2's elastic workflow with this calculator: a tight relaxation of the cell, then ionic
        relaxations of the strained cells (fixed cell)."""
        tight = cfg.model_copy(update={"relax": True, "fmax": min(cfg.fmax, ELASTIC_FMAX)})
        bulk, strained = self.relax_maker(tight), self.relax_maker(tight)
        if not hasattr(strained, "relax_cell"):
            raise InputError(f"calculator.flow: 'elastic' needs a relaxation Maker with relax_cell (ASE "
                             f"calculators, ML potentials); {self.name!r} makes a {type(strained).__name__}")
        strained.relax_cell = False
        return ElasticMaker(name=f"{self.name} elastic", bulk_relax_maker=bulk, elastic_relax_maker=strained)

    def evaluation_maker(self, campaign: CampaignConfig) -> EvaluationMaker:
        """The evaluation flow of one structure: relaxation, property flows, properties."""
        cfg = campaign.calculator
        flows = {"elastic": self.elastic_maker(cfg)} if cfg.flow == "elastic" else {}
        sources = self.property_sources(campaign)
        required = tuple(o.name for o in campaign.objectives if o.name in sources)
        return EvaluationMaker(relax_maker=self.relax_maker(cfg), property_makers=flows, extract=sources,
                               required=required)

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
