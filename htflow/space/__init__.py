"""Composition spaces, constraints and structures: which compositions may be proposed, and how they
become cells."""

from htflow.space.build import build_space
from htflow.space.compositions import (
    CompositionSpace,
    SpaceError,
    as_fractions,
    composition_key,
)
from htflow.space.constraints import Constraints
from htflow.space.structures import StructureBuilder, StructureError

__all__ = ["CompositionSpace", "Constraints", "SpaceError", "StructureBuilder", "StructureError",
           "as_fractions", "build_space", "composition_key"]
