"""Calculators: how a structure's energy is computed.

A calculator is named in the campaign file by a registry name (``emt``) or a
``package.module:object`` import path. The object may be a jobflow ``Maker``
(class or instance) whose ``make(structure)`` returns an atomate2-style task
document, or an ASE ``Calculator`` class, which is wrapped in atomate2's
``AseRelaxMaker``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from htflow.errors import InputError

if TYPE_CHECKING:
    from jobflow import Maker

    from htflow.config import CalculatorConfig, CampaignConfig
    from htflow.space import CompositionSpace

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
    properties: tuple[str, ...] = BASE_PROPERTIES
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
        import ase

        return {"name": self.name, "ase_version": ase.__version__, **self.meta}


def check_option_names(name: str, opts: dict, allowed: tuple[str, ...]) -> None:
    """Refuse ``calculator.options`` keys the calculator does not take, listing those it does."""
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise InputError(f"calculator.options: unknown option(s) {', '.join(unknown)} for {name!r}; "
                         f"allowed: {', '.join(allowed)}")


def check_whole_number(opts: dict, key: str) -> None:
    """Refuse ``calculator.options.<key>`` unless it is absent or a whole number of at least 1."""
    value = opts.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(f"calculator.options.{key}: a whole number of at least 1, got {value!r}")


def _ase_relax_kwargs(cfg: CalculatorConfig) -> dict:
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


def _emt(cfg: CalculatorConfig) -> Maker:
    from atomate2.ase.jobs import EmtRelaxMaker

    return EmtRelaxMaker(**_ase_relax_kwargs(cfg))


def _lookup(cfg: CalculatorConfig) -> Maker:
    from htflow.lookup import LookupMaker

    return LookupMaker(table=cfg.options["table"])


class LookupSpec(CalculatorSpec):
    """The ``lookup`` calculator: energies replayed from a ground-truth table."""

    def check(self, campaign: CampaignConfig, space: CompositionSpace) -> None:
        from htflow.lookup import bundled_tables, load_table

        opts = campaign.calculator.options
        extra = sorted(set(opts) - {"table"})
        if "table" not in opts or extra:
            raise InputError(
                "calculator.options: the lookup calculator takes exactly one option, table "
                f"(a bundled table: {', '.join(bundled_tables()) or 'none'}, or a CSV path)"
                + (f"; unknown: {', '.join(extra)}" if extra else "")
            )
        elements, _ = load_table(str(opts["table"]))
        bad = [el for el in space.elements if el not in elements]
        if bad:
            raise InputError(
                f"space.elements: table {opts['table']!r} has no {', '.join(bad)}; it covers "
                f"{', '.join(elements)}"
            )


REGISTRY: dict[str, CalculatorSpec] = {
    "emt": CalculatorSpec("emt", _emt, EMT_ELEMENTS, meta={"method": "EMT (ASE)"}),
    "lookup": LookupSpec("lookup", _lookup, meta={"method": "lookup in a ground-truth table"}),
}


def import_object(path: str, what: str) -> Any:
    """Import ``package.module:object``; raise :class:`InputError` naming ``what``."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InputError(f"{what}: {path!r} is not an import path of the form package.module:object")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"{what}: cannot import module {module_name!r} ({exc})") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{what}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _from_object(path: str, obj: Any) -> CalculatorSpec:
    from ase.calculators.calculator import Calculator
    from jobflow import Maker

    if isinstance(obj, CalculatorSpec):
        return obj
    if isinstance(obj, Maker):
        return CalculatorSpec(path, lambda cfg: obj)
    if isinstance(obj, type) and issubclass(obj, Maker):
        return CalculatorSpec(path, lambda cfg: obj())
    if isinstance(obj, type) and issubclass(obj, Calculator):
        from atomate2.ase.jobs import AseRelaxMaker

        def make(cfg: CalculatorConfig) -> Maker:
            maker = AseRelaxMaker(name=f"{obj.__name__} relaxation", **_ase_relax_kwargs(cfg))
            maker._calculator = obj(**cfg.options)
            return maker

        return CalculatorSpec(path, make)
    raise InputError(
        f"calculator.name: {path!r} is a {type(obj).__name__}; expected a jobflow Maker "
        "(class or instance) or an ASE Calculator class"
    )


#: machine-learned potentials (:mod:`htflow.mlip`, imported on use: it needs atomate2's force fields)
MLIP_NAMES = ("chgnet", "sevennet", "mace")


def get_calculator(name: str) -> CalculatorSpec:
    """A calculator by registry name or ``package.module:object`` path."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in MLIP_NAMES:
        from htflow.mlip import MLIPSpec

        return MLIPSpec(name)
    if name == "vasp":
        from htflow.vasp import VaspSpec

        return VaspSpec()
    if ":" in name:
        return _from_object(name, import_object(name, "calculator.name"))
    raise InputError(
        f"calculator.name: unknown calculator {name!r}; allowed: "
        f"{', '.join(sorted([*REGISTRY, *MLIP_NAMES, 'vasp']))} "
        "or an import path package.module:object"
    )
