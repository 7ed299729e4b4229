"""Constraints on which compositions may be proposed (beyond elements, bounds and element count).

- ``max_cost``: raw-material cost in USD per kg of alloy, from the mass fractions and a
  bundled table of approximate element prices (``htflow/data/prices/elements.csv``), which
  ``prices`` overrides per element;
- ``max_density``: g/cm³, estimated before any calculation from the elements' solid
  densities with ideal mixing of atomic volumes (Vegard-like);
- ``forbidden_pairs``: element pairs that may not appear together.

They are part of the :class:`~htflow.space.compositions.CompositionSpace`, so every generator respects
them, and they are checked on the composition as realised on the supercell.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files

from pymatgen.core import Element


@functools.cache
def bundled_prices() -> dict[str, float]:
    """The bundled table: element -> USD/kg."""
    text = (files("htflow") / "data" / "prices" / "elements.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {r["element"]: float(r["usd_per_kg"]) for r in rows}


@functools.cache
def _element_data(el: str) -> tuple[float, float]:
    """(molar mass g/mol, solid density g/cm³)."""
    e = Element(el)
    rho = e.density_of_solid
    if rho is None:
        raise ValueError(f"no solid density is known for {el}")
    return float(e.atomic_mass), float(rho) / 1000.0  # kg/m³ -> g/cm³


def mass_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    masses = {el: x * _element_data(el)[0] for el, x in fractions.items() if x > 0}
    total = sum(masses.values())
    return {el: m / total for el, m in masses.items()}


def cost_per_kg(fractions: Mapping[str, float], prices: Mapping[str, float]) -> float:
    """USD per kg of alloy: mass-weighted element prices."""
    return sum(w * prices[el] for el, w in mass_fractions(fractions).items())


def estimated_density(fractions: Mapping[str, float]) -> float:
    """g/cm³ with ideal mixing of the elements' atomic volumes."""
    mass = vol = 0.0
    for el, x in fractions.items():
        if x > 0:
            m, rho = _element_data(el)
            mass += x * m
            vol += x * m / rho
    return mass / vol


@dataclass(frozen=True)
class Constraints:
    """Composition constraints; :meth:`violation` says which one a composition breaks."""

    max_cost: float | None = None
    max_density: float | None = None
    forbidden_pairs: tuple[tuple[str, str], ...] = ()
    prices: Mapping[str, float] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.max_cost is not None or self.max_density is not None or bool(self.forbidden_pairs)

    @functools.cached_property
    def price_table(self) -> dict[str, float]:
        return {**bundled_prices(), **self.prices}

    def check_elements(self, elements: tuple[str, ...]) -> None:
        """Raise ValueError naming what is missing for these elements (prices, densities)."""
        if self.max_cost is not None:
            missing = [el for el in elements if el not in self.price_table]
            if missing:
                raise ValueError(f"space.constraints.max_cost: no price for {', '.join(missing)}; give them "
                                 f"in space.constraints.prices (USD/kg), e.g. prices: {{{missing[0]}: 100}}")
        if self.max_density is not None:
            for el in elements:
                _element_data(el)
        for a, b in self.forbidden_pairs:
            for el in (a, b):
                if el not in elements:
                    raise ValueError(f"space.constraints.forbidden_pairs: {el} is not one of space.elements "
                                     f"({', '.join(elements)})")

    def violation(self, fractions: Mapping[str, float], tol: float = 1e-9) -> str | None:
        """None when ``fractions`` satisfies every constraint, else which one it breaks."""
        present = {el for el, x in fractions.items() if x > tol}
        for a, b in self.forbidden_pairs:
            if a in present and b in present:
                return f"forbidden pair {a}-{b}"
        comp = {el: x for el, x in fractions.items() if x > tol}
        if self.max_cost is not None:
            c = cost_per_kg(comp, self.price_table)
            if c > self.max_cost:
                return f"cost {c:.4g} USD/kg > {self.max_cost:g}"
        if self.max_density is not None:
            d = estimated_density(comp)
            if d > self.max_density:
                return f"estimated density {d:.4g} g/cm³ > {self.max_density:g}"
        return None
