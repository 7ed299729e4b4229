"""Calculators by name: htflow's own, plug-ins' (entry points ``htflow.calculators``), or import paths.

A calculator is named in the campaign file by a registry name (``emt``), an
entry point of an installed package, or a ``package.module:object`` import
path. The object may be a :class:`~htflow.calculators.base.CalculatorSpec`, a
jobflow ``Maker`` (class or instance) whose ``make(structure)`` returns an
atomate2-style task document, or an ASE ``Calculator`` class, which is wrapped
in atomate2's ``AseRelaxMaker``.
"""

from __future__ import annotations

from typing import Any

from ase.calculators.calculator import Calculator
from atomate2.ase.jobs import AseRelaxMaker, EmtRelaxMaker
from jobflow import Maker

from htflow.calculators.base import BASE_PROPERTIES, EMT_ELEMENTS, CalculatorSpec, ase_relax_kwargs
from htflow.calculators.experiment import ExperimentSpec
from htflow.calculators.lookup import LookupSpec
from htflow.calculators.mlip import POTENTIALS, MLIPSpec
from htflow.calculators.vasp import VaspSpec
from htflow.errors import InputError
from htflow.schemas.config import CalculatorConfig
from htflow.utils.imports import plugin_names, resolve


def _emt(cfg: CalculatorConfig) -> Maker:
    return EmtRelaxMaker(**ase_relax_kwargs(cfg))


REGISTRY: dict[str, CalculatorSpec] = {
    "emt": CalculatorSpec("emt", _emt, EMT_ELEMENTS, meta={"method": "EMT (ASE)"}),
    "lookup": LookupSpec(),
    "experiment": ExperimentSpec(),
}


def declared_properties(path: str, obj: Any) -> dict[str, str]:
    """What a Maker declares it yields: ``htflow_properties = {name: path or module:function}`` (paths
    in its task document start with ``task.``)."""
    declared = getattr(obj, "htflow_properties", None) or {}
    fine = isinstance(declared, dict) and all(
        isinstance(k, str) and k.isidentifier() and isinstance(v, str) and v for k, v in declared.items())
    if not fine:
        raise InputError(f"calculator.name: {path}.htflow_properties must map property names to paths "
                         f"(task.output.x) or module:function extractors, got {declared!r}")
    return dict(declared)


def _from_object(path: str, obj: Any) -> CalculatorSpec:
    if isinstance(obj, CalculatorSpec):
        return obj
    if isinstance(obj, Maker) or (isinstance(obj, type) and issubclass(obj, Maker)):
        declared = declared_properties(path, obj)
        props = (*BASE_PROPERTIES, *declared)
        if isinstance(obj, Maker):
            return CalculatorSpec(path, lambda cfg: obj, properties=props, extract=declared)
        return CalculatorSpec(path, lambda cfg: obj(), properties=props, extract=declared)
    if isinstance(obj, type) and issubclass(obj, Calculator):
        def make(cfg: CalculatorConfig) -> Maker:
            maker = AseRelaxMaker(name=f"{obj.__name__} relaxation", **ase_relax_kwargs(cfg))
            maker._calculator = obj(**cfg.options)
            return maker

        return CalculatorSpec(path, make)
    raise InputError(
        f"calculator.name: {path!r} is a {type(obj).__name__}; expected a jobflow Maker "
        "(class or instance) or an ASE Calculator class"
    )


def calculator_names() -> list[str]:
    """Every calculator a campaign file may name (besides import paths)."""
    return sorted([*REGISTRY, *POTENTIALS, "vasp", *plugin_names("calculators")])


def get_calculator(name: str) -> CalculatorSpec:
    """A calculator by registry name, entry point or ``package.module:object`` path."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in POTENTIALS:
        return MLIPSpec(name)
    if name == "vasp":
        return VaspSpec()
    obj = resolve("calculators", name, "calculator.name")
    if obj is not None:
        return _from_object(name, obj)
    raise InputError(f"calculator.name: unknown calculator {name!r}; allowed: "
                     f"{', '.join(calculator_names())} or an import path package.module:object")
