"""Structures: a composition decorated onto a prototype supercell.

Fractions are rounded to whole atoms by the largest-remainder method; the
*realised* composition (atom counts over the cell size) is what the campaign
stores and reports. Sites are assigned by a permutation seeded from the
composition key, so the same composition always gives the same structure.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, reference_states
from pymatgen.core import Element, Lattice, Structure

from htflow.space.compositions import composition_key
from htflow.space.sqs import neighbour_shells, sqs_species

#: Atoms in the conventional cell of each built-in prototype.
PROTOTYPE_ATOMS = {"fcc": 4, "bcc": 2, "hcp": 2}
_HCP_C_OVER_A = math.sqrt(8 / 3)


class StructureError(ValueError):
    """A structure request that cannot be realised."""


def _volume_per_atom(symbol: str) -> float:
    """Volume per atom of an element's reference state (ASE data), in Å^3."""
    ref = reference_states[atomic_numbers[symbol]]
    if not ref or "a" not in ref:
        raise StructureError(f"no reference lattice constant for {symbol}")
    sym, a = ref["symmetry"], ref["a"]
    per_cell = {"fcc": 4, "bcc": 2, "sc": 1, "diamond": 8}
    if sym in per_cell:
        return a**3 / per_cell[sym]
    if sym == "hcp":
        c = ref.get("c/a", _HCP_C_OVER_A) * a
        return math.sqrt(3) / 2 * a * a * c / 2
    # Other reference states (molecules, complex crystals): fall back on atomic radius.
    r = float(Element(symbol).atomic_radius or 1.4)
    return (4 / 3) * math.pi * r**3 / 0.74


def supercell_shape(n_cells: int) -> tuple[int, int, int]:
    """The most nearly cubic ``(a, b, c)`` with ``a*b*c == n_cells``."""
    best: tuple[int, int, int] | None = None
    for a in range(1, n_cells + 1):
        if n_cells % a:
            continue
        for b in range(a, n_cells // a + 1):
            if (n_cells // a) % b:
                continue
            c = n_cells // a // b
            if c < b:
                continue
            if best is None or (c - a) < (best[2] - best[0]):
                best = (a, b, c)
    assert best is not None
    return best


def round_to_atoms(fractions: Mapping[str, float], n_atoms: int) -> dict[str, int]:
    """Whole-atom counts closest to ``fractions`` (largest remainder), summing to ``n_atoms``."""
    exact = {el: x * n_atoms for el, x in sorted(fractions.items())}
    counts = {el: math.floor(v + 1e-9) for el, v in exact.items()}
    left = n_atoms - sum(counts.values())
    by_remainder = sorted(exact, key=lambda el: (-(exact[el] - counts[el]), el))
    for el in by_remainder[:left]:
        counts[el] += 1
    return {el: c for el, c in counts.items() if c > 0}


def seed_from_key(key: str) -> int:
    """A stable 64-bit seed from a composition key."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


@functools.lru_cache(maxsize=8)
def _read_template(prototype: str) -> Structure:
    """Read a template structure file (cached: campaigns build thousands of cells from it)."""
    path = Path(prototype)
    if not path.is_file():
        raise StructureError(
            f"structure.prototype: {prototype!r} is neither one of "
            f"{', '.join(PROTOTYPE_ATOMS)} nor an existing structure file"
        )
    try:
        return Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for bad files
        raise StructureError(
            f"structure.prototype: cannot read {prototype!r} as a structure ({exc})"
        ) from exc


@functools.lru_cache(maxsize=4)
def _cubic_cell(prototype: str) -> Structure:
    """The conventional fcc or bcc cell with a = 1 Å (symmetry expansion once per process:
    pymatgen's ``from_spacegroup`` took ~1 s per call)."""
    sg = "Fm-3m" if prototype == "fcc" else "Im-3m"
    return Structure.from_spacegroup(sg, Lattice.cubic(1.0), ["H"], [[0, 0, 0]])


@dataclass(frozen=True)
class StructureBuilder:
    """Build decorated supercells of a prototype.

    Parameters
    ----------
    prototype
        ``fcc``, ``bcc``, ``hcp``, or the path of a template structure file
        (CIF, POSCAR...) whose sites are redecorated.
    n_atoms
        Atoms in the supercell.
    lattice_constant
        Conventional lattice constant in Å; by default from the volume per atom
        of the elements' reference states (Vegard's law). Relaxation adjusts it.
    """

    prototype: str = "fcc"
    n_atoms: int = 32
    lattice_constant: float | None = None
    #: ``random``: sites shuffled (seeded by the composition); ``sqs``: a special quasirandom structure
    decoration: str = "random"
    #: decorations per composition that the evaluation averages (``build(fractions, i)`` for each)
    configurations: int = 1

    @property
    def is_template(self) -> bool:
        """Whether the prototype is a structure file."""
        return self.prototype not in PROTOTYPE_ATOMS

    def template(self) -> Structure:
        """A copy of the template structure (the file is read once per process)."""
        return _read_template(self.prototype).copy()


    def _base(self, volume_per_atom: float) -> Structure:
        if self.is_template:
            base = self.template()
            base.scale_lattice(volume_per_atom * len(base))
            per_cell = len(base)
        else:
            per_cell = PROTOTYPE_ATOMS[self.prototype]
            if self.prototype == "hcp":
                a = self.lattice_constant or (4 * volume_per_atom / (math.sqrt(3) * _HCP_C_OVER_A)) ** (1 / 3)
                lat = Lattice.hexagonal(a, a * _HCP_C_OVER_A)
                base = Structure(lat, ["H", "H"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
            else:
                a = self.lattice_constant or (volume_per_atom * per_cell) ** (1 / 3)
                base = _cubic_cell(self.prototype).copy()
                base.scale_lattice(a**3)
        if self.n_atoms % per_cell:
            raise StructureError(
                f"structure.n_atoms: {self.n_atoms} is not a multiple of the {per_cell} atoms "
                f"in the {self.prototype} cell"
            )
        base.make_supercell(supercell_shape(self.n_atoms // per_cell))
        return base

    def realise(self, fractions: Mapping[str, float]) -> dict[str, int]:
        """Whole-atom counts for a composition on this supercell."""
        return round_to_atoms(fractions, self.n_atoms)

    def build(self, fractions: Mapping[str, float], configuration: int = 0) -> Structure:
        """The decorated supercell for a composition (deterministic); ``configuration`` i > 0: the i-th
        other decoration of the same composition (``structure.configurations``)."""
        counts = self.realise(fractions)
        key = composition_key(counts) + (f"#{configuration}" if configuration else "")
        vpa = sum(c * _volume_per_atom(el) for el, c in counts.items()) / self.n_atoms
        structure = self._base(vpa)
        if self.decoration == "sqs":
            decorated = sqs_species(structure, counts, seed_from_key(key), self._shells())
        else:
            species = [el for el, c in sorted(counts.items()) for _ in range(c)]
            order = np.random.default_rng(seed_from_key(key)).permutation(len(species))
            decorated = [species[i] for i in order]
        for site_index, el in enumerate(decorated):
            structure.replace(site_index, el)
        return structure.get_sorted_structure()

    def _shells(self) -> list:
        """The cell's neighbour shells (the same for every composition: computed once per builder)."""
        return _shells_of(self.prototype, self.n_atoms, self.lattice_constant)


@functools.lru_cache(maxsize=8)
def _shells_of(prototype: str, n_atoms: int, lattice_constant: float | None) -> list:
    return neighbour_shells(StructureBuilder(prototype, n_atoms, lattice_constant)._base(12.0))


@dataclass(frozen=True)
class ExactBuilder:
    """Compositions as they are, without a supercell: the builder of experiment campaigns, where a
    laboratory makes each composition (``Fe62.0Ni38.0``, not the nearest whole-atom cell).

    ``realise`` gives atomic per cent, so keys stay exact; there is nothing to ``build``.
    """

    prototype: str = "experiment"
    n_atoms: int = 100
    lattice_constant: float | None = None
    #: compositions are not rounded to whole atoms (see :func:`htflow.search.context.realise_within`)
    exact: bool = True

    def realise(self, fractions: Mapping[str, float]) -> dict[str, float]:
        """Atomic per cent of each element present."""
        total = sum(v for v in fractions.values() if v > 0)
        return {el: 100.0 * v / total for el, v in sorted(fractions.items()) if v > 1e-12}

    def build(self, fractions: Mapping[str, float]) -> Structure:
        raise StructureError("an experiment campaign makes samples, not structures: nothing to build")
