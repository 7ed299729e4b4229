"""Properties beyond the relaxation: values read from the evaluation's documents.

An evaluation yields its documents by root name: ``task`` (the calculator's own
task document, e.g. atomate2's ASE or force-field relaxation) and, with
``calculator.flow: elastic``, ``elastic`` (atomate2's ``ElasticDocument`` of the
relaxed structure). A property is read from them by a dotted path
(``elastic.derived_properties.k_vrh``; integers index lists) or computed by a
``package.module:function`` extractor called with the documents as plain dicts.
Objectives name a path or an extractor; user Makers declare theirs
(``htflow_properties = {"band_gap": "task.output.bandgap"}``); the elastic
flow's are :data:`ELASTIC_PROPERTIES`.

A value that is missing or not a finite number fails that one evaluation with a
message naming the objective, the path and what the documents hold there.
"""

from __future__ import annotations

import math
from typing import Any

from monty.json import jsanitize

from htflow.utils.imports import import_object

#: root of the calculator's own task document in paths
TASK = "task"

#: what the elastic flow yields (GPa, K, dimensionless), by path or extractor in its ``elastic`` document
ELASTIC_PROPERTIES: dict[str, str] = {
    "bulk_modulus": "elastic.derived_properties.k_vrh",
    "shear_modulus": "elastic.derived_properties.g_vrh",
    "youngs_modulus": "htflow.calculators.properties:youngs_modulus",
    "poisson_ratio": "elastic.derived_properties.homogeneous_poisson",
    "universal_anisotropy": "elastic.derived_properties.universal_anisotropy",
    "debye_temperature": "elastic.derived_properties.debye_temperature",
    "pugh_ratio": "htflow.calculators.properties:pugh_ratio",
}


class PropertyError(ValueError):
    """A property could not be read from an evaluation's documents."""


def youngs_modulus(docs: dict) -> float | None:
    """Young's modulus in GPa (atomate2 gives it in Pa)."""
    value = docs["elastic"]["derived_properties"].get("y_mod")
    return None if value is None else value / 1e9


def pugh_ratio(docs: dict) -> float | None:
    """Pugh's ratio B/G of the Voigt-Reuss-Hill moduli (above ~1.75: ductile)."""
    d = docs["elastic"]["derived_properties"]
    k, g = d.get("k_vrh"), d.get("g_vrh")
    return None if k is None or not g else k / g


def plain(documents: dict[str, Any]) -> dict[str, Any]:
    """The documents as JSON-like dicts and lists (task documents arrive as pydantic objects)."""
    return {name: jsanitize(doc, strict=True, enum_values=True) for name, doc in documents.items()}


def _lookup(docs: dict, path: str) -> Any:
    here: Any = docs
    done: list[str] = []
    for part in path.split("."):
        if isinstance(here, dict) and part in here:
            here = here[part]
        elif isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
        else:
            where = ".".join(done) or "the documents"
            if isinstance(here, dict):
                has = f"it has: {', '.join(sorted(map(str, here))[:30]) or 'nothing'}"
            elif isinstance(here, list):
                has = f"it is a list of {len(here)}"
            else:
                has = f"it is the value {here!r}"
            raise PropertyError(f"{path!r} is not in the evaluation's documents: {where} has no {part!r}; "
                                f"{has}")
        done.append(part)
    return here


def read_property(name: str, source: str, docs: dict) -> float:
    """The value of property ``name`` from ``docs`` (plain) by ``source``: a path or ``module:function``."""
    if ":" in source:
        func = import_object(source, f"property {name}")
        try:
            value = func(docs)
        except Exception as exc:  # the user's extractor: any error fails this one evaluation
            raise PropertyError(f"property {name!r}: extractor {source} failed: "
                                f"{type(exc).__name__}: {exc}") from None
    else:
        try:
            value = _lookup(docs, source)
        except PropertyError as exc:
            raise PropertyError(f"property {name!r}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PropertyError(f"property {name!r} from {source} is {value!r}, not a finite number")
    return float(value)


def read_properties(extract: dict[str, str], docs: dict[str, Any],
                    required: tuple[str, ...] | list[str] = ()) -> dict[str, float | None]:
    """Every property of ``extract`` (name → path or extractor) from the evaluation's documents made
    :func:`plain`: those ``required`` raise :class:`PropertyError` when missing, the others are None."""
    out: dict[str, float | None] = {}
    for name, source in extract.items():
        try:
            out[name] = read_property(name, source, docs)
        except PropertyError:
            if name in required:
                raise
            out[name] = None
    return out
