"""Fakes for tests and demonstrations, shipped with the package.

``FailingEMT`` behaves like ASE's EMT but raises for structures rich in one
element, so the recording of failed calculations can be exercised with a real
calculator: ``calculator: {name: "htflow.testing:FailingEMT", options: {element: Pd}}``.
"""

from __future__ import annotations

from ase.calculators.emt import EMT


class FailingEMT(EMT):
    """EMT that fails when ``element`` makes up at least ``fraction`` of the atoms."""

    def __init__(self, element: str = "Pd", fraction: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.fail_element, self.fail_fraction = element, fraction

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        symbols = (atoms or self.atoms).get_chemical_symbols()
        share = symbols.count(self.fail_element) / len(symbols)
        if 0 < share < 1 and share >= self.fail_fraction:
            raise RuntimeError(f"injected failure: {self.fail_element} fraction {share:.3f}")
        if system_changes is None:
            return super().calculate(atoms, properties)
        return super().calculate(atoms, properties, system_changes)
