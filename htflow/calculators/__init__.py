"""Calculators: how a structure is evaluated (EMT, lookup tables, ML potentials, VASP) as jobflow flows.

``get_calculator(name)`` gives a :class:`CalculatorSpec`: its Maker, the
elements it supports, the properties it yields and the checks it runs on a
campaign before anything is written.
"""

from htflow.calculators.base import BASE_PROPERTIES, CalculatorSpec
from htflow.calculators.flows import EvaluationMaker, compute_properties
from htflow.calculators.registry import calculator_names, get_calculator

__all__ = ["BASE_PROPERTIES", "CalculatorSpec", "EvaluationMaker", "calculator_names", "compute_properties",
           "get_calculator"]
