"""Composition features: what the surrogate model sees of a composition.

A featurizer is bound to the campaign's element order and maps a matrix of
fractions (one row per composition, one column per element, rows summing to
1) to a feature matrix, all at once: a pool of thousands of compositions is
featurized in milliseconds, once per campaign.

- ``fractions``: the element fractions themselves.
- ``pairs``: the fractions and their pairwise products ``x_i x_j`` (the terms
  of a regular-solution mixing model, so a linear trend in them is the
  textbook model of a mixing energy).
- ``chgnet``: CHGNet's crystal feature vector of each composition's cell
  (:mod:`htflow.search.graph`; grid and list spaces; a model pass per composition).
- ``magpie``: weighted statistics (mean, mean absolute deviation, minimum,
  maximum, range, mode) of 22 elemental properties from matminer's Magpie
  table (Ward et al., npj Comput. Mater. 2, 16028 (2016)); the numbers equal
  matminer's ``ElementProperty.from_preset("magpie")`` (tested), computed
  vectorised instead of one composition at a time.

Names combine with ``+`` (``fractions+magpie``); ``package.module:object``
names a class taking the element list and callable on the fraction matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
from pymatgen.core import Element

from htflow.errors import InputError
from htflow.search.graph import CHGNetFeatures
from htflow.utils.imports import plugin_names, resolve


class Featurizer(Protocol):
    """Maps an ``(n, len(elements))`` fraction matrix to an ``(n, d)`` feature matrix."""

    elements: list[str]

    def labels(self) -> list[str]:
        """One name per feature column."""

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        """Features of each row of ``fractions``."""


def fraction_matrix(comps: Sequence[Mapping[str, float]], elements: Sequence[str]) -> np.ndarray:
    """Rows of fractions in ``elements`` order (missing elements are 0)."""
    index = {el: i for i, el in enumerate(elements)}
    out = np.zeros((len(comps), len(elements)))
    for r, comp in enumerate(comps):
        for el, x in comp.items():
            out[r, index[el]] = x
    total = out.sum(axis=1, keepdims=True)
    return out / np.where(total > 0, total, 1.0)


class Fractions:
    """The element fractions."""

    def __init__(self, elements: Sequence[str]):
        self.elements = list(elements)

    def labels(self) -> list[str]:
        return [f"x_{el}" for el in self.elements]

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        return np.asarray(fractions, dtype=float)


class Pairs:
    """Fractions and their pairwise products (regular-solution terms)."""

    def __init__(self, elements: Sequence[str]):
        self.elements = list(elements)
        m = len(self.elements)
        self._i, self._j = np.triu_indices(m, k=1)

    def labels(self) -> list[str]:
        els = self.elements
        pairs = [f"x_{els[i]}*x_{els[j]}" for i, j in zip(self._i, self._j, strict=True)]
        return [f"x_{el}" for el in els] + pairs

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        f = np.asarray(fractions, dtype=float)
        return np.hstack([f, f[:, self._i] * f[:, self._j]])


MAGPIE_STATS = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")


@lru_cache(maxsize=1)
def _magpie_source():
    from matminer.featurizers.composition import ElementProperty  # heavy: 1.5 s, only for 'magpie'

    preset = ElementProperty.from_preset("magpie")
    return preset.data_source, tuple(preset.features)


class Magpie:
    """Magpie elemental-property statistics (matminer's data, vectorised)."""

    def __init__(self, elements: Sequence[str], properties: Sequence[str] | None = None,
                 stats: Sequence[str] = MAGPIE_STATS):
        source, all_props = _magpie_source()
        self.elements = list(elements)
        props = list(properties or all_props)
        unknown = [p for p in props if p not in all_props]
        if unknown:
            raise InputError(f"magpie properties {unknown} unknown; allowed: {', '.join(all_props)}")
        bad_stats = [s for s in stats if s not in MAGPIE_STATS]
        if bad_stats:
            raise InputError(f"magpie statistics {bad_stats} unknown; allowed: {', '.join(MAGPIE_STATS)}")
        table = np.array([[float(source.get_elemental_property(_element(el), p)) for p in props]
                          for el in self.elements])
        keep = ~np.isnan(table).any(axis=0)  # a property unknown for one element is left out
        self.properties = [p for p, k in zip(props, keep, strict=True) if k]
        self.table = table[:, keep]
        self.stats = list(stats)

    def labels(self) -> list[str]:
        return [f"MagpieData {s} {p}" for p in self.properties for s in self.stats]

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        f = np.asarray(fractions, dtype=float)
        p = self.table  # (m elements, k properties)
        present = (f > 0)[:, :, None]  # (n, m, 1)
        vals = np.broadcast_to(p[None], (f.shape[0], *p.shape))  # (n, m, k)
        mean = f @ p
        out = {
            "mean": mean,
            "avg_dev": np.einsum("nm,nmk->nk", f, np.abs(vals - mean[:, None, :])),
            "minimum": np.where(present, vals, np.inf).min(axis=1),
            "maximum": np.where(present, vals, -np.inf).max(axis=1),
        }
        out["range"] = out["maximum"] - out["minimum"]
        top = np.isclose(f, f.max(axis=1, keepdims=True))[:, :, None]
        out["mode"] = np.where(top, vals, np.inf).min(axis=1)
        # column order as matminer: for each property, each statistic
        return np.stack([out[s] for s in self.stats], axis=2).reshape(f.shape[0], -1)


def _element(symbol: str) -> Element:
    return Element(symbol)


class Combined:
    """Several featurizers side by side."""

    def __init__(self, parts: Sequence[Featurizer]):
        self.parts = list(parts)
        self.elements = self.parts[0].elements

    def labels(self) -> list[str]:
        return [lab for part in self.parts for lab in part.labels()]

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        return np.hstack([part(fractions) for part in self.parts])

    @property
    def slow(self) -> bool:
        return any(getattr(part, "slow", False) for part in self.parts)

    def bind(self, builder: object) -> None:
        bind_builder(self.parts, builder)


def bind_builder(featurizers: Sequence[object], builder: object) -> None:
    """Give the featurizers that build structures (``bind``) the campaign's structure builder."""
    for f in featurizers:
        if callable(getattr(f, "bind", None)):
            f.bind(builder)


FEATURIZERS = {"fractions": Fractions, "pairs": Pairs, "magpie": Magpie, "chgnet": CHGNetFeatures}


def get_featurizer(spec: str, elements: Sequence[str]) -> Featurizer:
    """A featurizer by name (``fractions``, ``pairs``, ``magpie``, joined by ``+``) or import path."""
    parts: list[Featurizer] = []
    for name in (s.strip() for s in spec.split("+")):
        if name in FEATURIZERS:
            parts.append(FEATURIZERS[name](elements))
        elif (cls := resolve("featurizers", name, "search.surrogate.features")) is not None:
            feat = cls(list(elements)) if isinstance(cls, type) else cls
            if not callable(feat):
                raise InputError(f"search.surrogate.features: {name!r} is not callable on a fraction matrix")
            parts.append(feat)
        else:
            raise InputError(
                f"search.surrogate.features: unknown featurizer {name!r}; allowed: "
                f"{', '.join([*FEATURIZERS, *plugin_names('featurizers')])} (joined by '+') "
                "or an import path package.module:object"
            )
    return parts[0] if len(parts) == 1 else Combined(parts)
