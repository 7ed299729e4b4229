"""Composition spaces: which element mixtures a campaign may propose.

A composition is a mapping ``{element: fraction}`` summing to one. Its
*canonical key* (:func:`composition_key`) names it independently of how it was
written, so ``Cu0.5Ni0.5``, ``NiCu`` and ``{"Ni": 1, "Cu": 1}`` are the same
candidate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from pymatgen.core import Composition, Element

from htflow.settings import get_settings
from htflow.space.constraints import Constraints


class SpaceError(ValueError):
    """An impossible or unusable composition space (message names the field)."""


def is_element(symbol: str) -> bool:
    """Whether ``symbol`` is a chemical element (case-sensitive, like ``Cu``)."""
    return isinstance(symbol, str) and Element.is_valid_symbol(symbol)


_SYMBOLS = frozenset(el.symbol for el in Element)


def as_fractions(comp: Composition | Mapping[str, float] | str) -> dict[str, float]:
    """Normalise a composition given in any common form to element fractions."""
    if isinstance(comp, dict) and all(k in _SYMBOLS and type(v) in (int, float) for k, v in comp.items()):
        # the common case (element symbol -> amount) without building a pymatgen Composition
        # (20 us each); the same rules: amounts below pymatgen's tolerance left out, none negative
        kept = {k: v for k, v in comp.items() if abs(v) >= Composition.amount_tolerance}
        if any(v < 0 for v in kept.values()):
            raise ValueError("Amounts in Composition cannot be negative!")
        total = sum(kept.values())
        if total <= 0:
            raise ValueError("empty composition")
        return {el: amt / total for el, amt in kept.items() if amt > 0}
    if not isinstance(comp, Composition):
        comp = Composition(comp)
    total = comp.num_atoms
    if total <= 0:
        raise ValueError("empty composition")
    return {str(el): amt / total for el, amt in comp.items() if amt > 0}


def composition_key(comp: Composition | Mapping[str, float] | str) -> str:
    """The canonical key: elements sorted by symbol, fractions to 6 significant digits.

    >>> composition_key("Cu0.5Ni0.5") == composition_key("NiCu") == "Cu0.5Ni0.5"
    True
    """
    return fractions_key(as_fractions(comp))


def fractions_key(fractions: Mapping[str, float]) -> str:
    """:func:`composition_key` of fractions that are already normalised (no second normalisation:
    importers key hundreds of thousands of rows)."""
    return "".join(f"{el}{fractions[el]:.6g}" for el in sorted(fractions) if fractions[el] >= 5e-10)


def fit_bounds(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """The point of the simplex within ``[lo, hi]`` that ``x`` (on the simplex) moves to: clipped to
    the bounds, then the missing (or extra) fraction shared in proportion to each element's room.
    ``None`` when the bounds leave no room (their minimums add up to more than 1, or maximums to
    less). A point already within the bounds is returned unchanged."""
    if lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12:
        return None
    x = np.clip(x, lo, hi)
    gap = 1.0 - x.sum()
    if gap > 0:
        room = hi - x
        x = x + gap * room / room.sum()
    elif gap < 0:
        room = x - lo
        x = x + gap * room / room.sum()
    return np.clip(x, lo, hi)


@dataclass(frozen=True)
class CompositionSpace:
    """Element mixtures within bounds, on a grid or continuous.

    Parameters
    ----------
    elements
        Element symbols that may appear.
    bounds
        Optional per-element ``(min, max)`` fractions; missing elements get ``(0, 1)``.
    step
        Grid step in fraction (``1/k``); ``None`` means continuous.
    max_elements
        Largest number of elements present in one composition.
    max_pool
        Largest grid that may be enumerated.
    constraints
        Cost, density and forbidden pairs (:class:`~htflow.space.constraints.Constraints`).
    """

    elements: tuple[str, ...]
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    step: float | None = 0.25
    max_elements: int | None = None
    max_pool: int = field(default_factory=lambda: get_settings().max_pool)
    constraints: Constraints | None = None
    #: a list space: exactly these compositions (``space.mode: list``); ``step`` is then None
    points: tuple[dict[str, float], ...] | None = None

    def __post_init__(self) -> None:
        if not self.elements:
            raise SpaceError("space.elements: at least one element is needed")
        for i, el in enumerate(self.elements):
            if not is_element(el):
                raise SpaceError(
                    f"space.elements[{i}]: {el!r} is not a chemical element "
                    "(symbols are case-sensitive, e.g. Cu, Ni, Pd)"
                )
        if len(set(self.elements)) != len(self.elements):
            dup = next(e for e in self.elements if self.elements.count(e) > 1)
            raise SpaceError(f"space.elements: {dup} is listed twice")
        object.__setattr__(self, "elements", tuple(sorted(self.elements)))
        if self.max_elements is None:
            object.__setattr__(self, "max_elements", len(self.elements))
        n = len(self.elements)
        if not 1 <= self.max_elements <= n:
            raise SpaceError(
                f"space.max_elements: {self.max_elements} is not allowed; "
                f"allowed: 1 to {n} (the number of elements)"
            )
        self._check_bounds()
        if self.constraints is not None:
            try:
                self.constraints.check_elements(self.elements)
            except ValueError as exc:
                raise SpaceError(str(exc)) from None
        if self.step is not None:
            units = 1 / self.step if self.step > 0 else 0
            if not (0 < self.step <= 1) or abs(units - round(units)) > 1e-6:
                raise SpaceError(
                    f"space.step: {self.step} is not allowed; allowed: 1/k for a whole k, "
                    "e.g. 0.5, 0.25, 0.125, 0.1, 0.05"
                )

    def _check_bounds(self) -> None:
        """Each element's bounds within [0, 1], and together able to hold a composition."""
        for el, (lo, hi) in self.bounds.items():
            if el not in self.elements:
                raise SpaceError(
                    f"space.bounds: {el!r} is not one of space.elements {list(self.elements)}"
                )
            if not (0 <= lo <= 1 and 0 <= hi <= 1):
                raise SpaceError(
                    f"space.bounds.{el}: [{lo}, {hi}] is outside [0, 1]; fractions go from 0 to 1"
                )
            if lo > hi:
                raise SpaceError(f"space.bounds.{el}: min {lo} is greater than max {hi}")
        lows = sum(lo for lo, _ in self.limits.values())
        highs = sum(hi for _, hi in self.limits.values())
        if lows > 1 + 1e-9:
            raise SpaceError(
                f"space.bounds: the minimum fractions add up to {lows:g} > 1, "
                "so no composition fits; lower some minimums"
            )
        if highs < 1 - 1e-9:
            raise SpaceError(
                f"space.bounds: the maximum fractions add up to {highs:g} < 1, "
                "so no composition fits; raise some maximums"
            )
        required = [el for el, (lo, _) in self.limits.items() if lo > 0]
        if len(required) > self.max_elements:
            raise SpaceError(
                f"space.bounds: {len(required)} elements have a minimum above 0 "
                f"({', '.join(required)}) but space.max_elements is {self.max_elements}"
            )

    # -- basic facts -------------------------------------------------------
    @property
    def is_grid(self) -> bool:
        """Whether the space is an enumerable pool: a grid, or a list of compositions."""
        return self.step is not None or self.points is not None

    @cached_property
    def limits(self) -> dict[str, tuple[float, float]]:
        """Bounds for every element."""
        return {el: tuple(self.bounds.get(el, (0.0, 1.0))) for el in self.elements}

    @property
    def units(self) -> int:
        """Grid divisions of the unit fraction (``1/step``)."""
        if self.step is None:
            raise SpaceError("a continuous space has no grid units")
        return round(1 / self.step)

    def _unit_ranges(self) -> list[range]:
        u = self.units
        return [
            range(math.ceil(lo * u - 1e-9), math.floor(hi * u + 1e-9) + 1)
            for lo, hi in self.limits.values()
        ]

    def contains(self, fractions: Mapping[str, float], tol: float = 1e-9,
                 check_constraints: bool = True) -> bool:
        """Whether a composition lies in the space (elements, bounds, element count, constraints)."""
        present = [el for el, x in fractions.items() if x > tol]
        if any(el not in self.elements for el in present) or len(present) > self.max_elements:
            return False
        if abs(sum(fractions.values()) - 1) > 1e-6:
            return False
        if not all(lo - tol <= fractions.get(el, 0.0) <= hi + tol for el, (lo, hi) in self.limits.items()):
            return False
        return not check_constraints or self.constraints is None or \
            self.constraints.violation(fractions, tol) is None

    # -- the grid ----------------------------------------------------------
    def grid_size(self) -> int:
        """Number of grid compositions, counted without enumerating them (listed ones: counted)."""
        if self.points is not None:
            return sum(1 for _ in self.iter_grid())
        u, kmax = self.units, self.max_elements
        # ways[s][k]: ways to reach unit sum s using k non-zero elements so far
        ways = np.zeros((u + 1, kmax + 1), dtype=object)
        ways[0][0] = 1
        for rng in self._unit_ranges():
            new = np.zeros_like(ways)
            for s in range(u + 1):
                for k in range(kmax + 1):
                    if not ways[s][k]:
                        continue
                    for c in rng:
                        if s + c > u:
                            break
                        k2 = k + (c > 0)
                        if k2 <= kmax:
                            new[s + c][k2] += ways[s][k]
            ways = new
        return int(sum(ways[u]))

    def iter_grid(self) -> Iterator[dict[str, float]]:
        """Yield every grid composition in a fixed (lexicographic) order; a list space's compositions
        within the bounds and ``max_elements``, in the file's order."""
        if self.points is not None:
            yield from (dict(p) for p in self.points if self.contains(p, check_constraints=False))
            return
        u, kmax, els = self.units, self.max_elements, self.elements
        ranges = self._unit_ranges()
        counts = [0] * len(els)

        def rec(i: int, left: int, nonzero: int) -> Iterator[dict[str, float]]:
            if i == len(els) - 1:
                c = left
                if c in ranges[i] and nonzero + (c > 0) <= kmax:
                    counts[i] = c
                    yield {e: n / u for e, n in zip(els, counts, strict=True) if n}
                return
            for c in ranges[i]:
                if c > left:
                    break
                if nonzero + (c > 0) > kmax:
                    continue
                counts[i] = c
                yield from rec(i + 1, left - c, nonzero + (c > 0))

        yield from rec(0, u, 0)

    def check_grid(self) -> int:
        """The grid's size; refuses an empty grid or one too large to enumerate."""
        size = self.grid_size()
        if size == 0 and self.points is not None:
            raise SpaceError(f"space.file: none of the {len(self.points)} listed compositions fits the "
                             f"bounds and max_elements {self.max_elements}")
        if size == 0:
            raise SpaceError(
                f"space: no grid point with step {self.step:g} fits the bounds and "
                f"max_elements {self.max_elements}; widen the bounds or use a finer step"
            )
        if size > self.max_pool:
            raise SpaceError(
                f"space: the grid has {size:,} compositions, more than space.max_pool "
                f"({self.max_pool:,}) allows to enumerate; use a coarser step, fewer elements "
                "or max_elements, or mode: continuous"
            )
        return size

    def pool(self) -> list[dict[str, float]]:
        """Enumerate the grid (after :meth:`check_grid`), without the points the constraints exclude."""
        self.check_grid()
        if self.constraints is None or not self.constraints.active:
            return list(self.iter_grid())
        pool = [p for p in self.iter_grid() if self.constraints.violation(p) is None]
        if not pool:
            raise SpaceError("space.constraints: no grid composition satisfies the constraints; relax "
                             "max_cost, max_density or forbidden_pairs")
        return pool

    # -- continuous sampling ---------------------------------------------------
    def pick_elements(self, order, k: int) -> list[int]:
        """Indices of up to ``k`` elements: the required ones (minimum above 0), then from ``order``
        (indices, most wanted first) each one no element already chosen forms a forbidden pair with."""
        limits = list(self.limits.values())
        chosen = [i for i, (lo, _) in enumerate(limits) if lo > 0]
        banned = {frozenset(p) for p in (self.constraints.forbidden_pairs if self.constraints else ())}
        for i in order:
            if len(chosen) >= k:
                break
            if int(i) not in chosen and all(
                    frozenset((self.elements[int(i)], self.elements[j])) not in banned for j in chosen):
                chosen.append(int(i))
        return chosen

    def sample(self, rng: np.random.Generator, u: np.ndarray | None = None) -> dict[str, float] | None:
        """One composition from the space (uniform on the simplex of a random subset).

        ``u`` optionally gives the uniform numbers (for quasi-random sequences);
        returns ``None`` when the draw falls outside the bounds.
        """
        n = len(self.elements)
        u = rng.random(n + 1) if u is None else u
        required = [i for i, (lo, _) in enumerate(self.limits.values()) if lo > 0]
        optional = [i for i in range(n) if i not in required]
        kmin = max(1, len(required))
        k = kmin + min(int(u[-1] * (self.max_elements - kmin + 1)), self.max_elements - kmin)
        if self.constraints is not None and self.constraints.forbidden_pairs:
            chosen = self.pick_elements(rng.permutation(optional), k)
        else:
            chosen = required + list(rng.choice(optional, size=k - len(required), replace=False))
        # -log(u) gives exponential variates: normalised, a uniform point on the simplex.
        w = -np.log(np.clip(u[chosen], 1e-12, 1.0))
        x = w / w.sum()
        limits = list(self.limits.values())
        x = fit_bounds(x, np.array([limits[i][0] for i in chosen]), np.array([limits[i][1] for i in chosen]))
        if x is None:
            return None
        fr = {self.elements[i]: float(v) for i, v in zip(chosen, x, strict=True) if v > 0}
        return fr if self.contains(fr) else None
