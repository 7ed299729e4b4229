#!/usr/bin/env python3
"""A fake ``vasp`` executable for the tests: it replays recorded outputs (atomate2's approach).

Usage, as the VASP command custodian runs in a calculation folder::

    python fake_vasp.py RECORDINGS_DIR            # replay
    python fake_vasp.py RECORDINGS_DIR --record   # compute (EMT), write and record the outputs

A run is looked up by the cell's formula and kind (``Cu3Ni1-relax``, ``Cu3Ni1-static``).
Replaying first checks the inputs htflow and atomate2 wrote (INCAR settings, POTCAR titles,
k-point mesh, POSCAR species and positions) against the recorded inputs and fails, naming the
difference, when they disagree. A recording may hold ``error.json``
(``{"message": ..., "unless": {"ALGO": "Normal"}}``): while the INCAR lacks the ``unless``
settings, the run prints ``message`` to stdout (vasp.out) and stops, as VASP does on an error
custodian's ``VaspErrorHandler`` knows; once custodian's correction is in the INCAR, the
recorded outputs are replayed.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from pathlib import Path

INPUT_KEYS = ("ISIF", "IBRION", "NSW", "ENCUT", "EDIFF", "EDIFFG", "ISMEAR", "SIGMA", "ISPIN", "PREC", "GGA", "LREAL")
OUTPUTS = ("vasprun.xml", "OUTCAR", "OSZICAR", "CONTCAR")


def _potcar_titles(path: Path) -> list[str]:
    return [ln.split("=", 1)[1].strip() for ln in path.read_text().splitlines() if ln.strip().startswith("TITEL")]


def _divisions(path: Path) -> list[int]:
    from pymatgen.io.vasp import Kpoints

    return [int(d) for d in Kpoints.from_file(path).kpts[0]]


def _kind(incar: dict) -> str:
    return "relax" if int(incar.get("NSW", 0)) > 0 and int(incar.get("IBRION", -1)) in (1, 2, 3) else "static"


def _key(structure, incar: dict) -> str:
    return f"{structure.composition.formula.replace(' ', '')}-{_kind(incar)}"


def record(rec_dir: Path, here: Path) -> None:
    """Compute the run with EMT (shifted to DFT-like energies), write its outputs, record it."""
    import numpy as np
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp import Incar, Poscar

    sys.path.insert(0, str(Path(__file__).parent))
    from vaspout import SHIFT, Potential, Step, write_run

    incar = Incar.from_file(here / "INCAR")
    structure = Poscar.from_file(here / "POSCAR").structure
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = EMT()
    shift = sum(SHIFT[s] for s in atoms.get_chemical_symbols())
    steps: list[Step] = []

    def snap() -> None:
        s = AseAtomsAdaptor.get_structure(atoms)
        stress_kb = -np.array(atoms.get_stress(voigt=False)) * 1602.1766208
        steps.append(Step(s, float(atoms.get_potential_energy()) + shift, np.array(atoms.get_forces()), stress_kb))

    if _kind(incar) == "relax":
        opt = BFGS(FrechetCellFilter(atoms), logfile=None)
        opt.attach(snap)
        opt.run(fmax=abs(float(incar.get("EDIFFG", -0.02))), steps=int(incar["NSW"]) - 1)
    else:
        snap()
    import warnings

    from pymatgen.io.vasp import Potcar

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fake POTCARs are unknown to pymatgen's hash table
        potcar = Potcar.from_file(here / "POTCAR")
    titles = [p.keywords["TITEL"] for p in potcar]
    potentials = [Potential(p.element, p.keywords["TITEL"], float(p.zval), float(p.keywords["POMASS"])) for p in potcar]
    stdout = write_run(here, dict(incar), _divisions(here / "KPOINTS"), potentials, steps)

    dest = rec_dir / _key(structure, incar)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "inputs").mkdir(parents=True)
    (dest / "outputs").mkdir()
    for name in ("INCAR", "KPOINTS", "POSCAR"):
        shutil.copy(here / name, dest / "inputs" / name)
    (dest / "inputs" / "POTCAR.titles").write_text("\n".join(titles) + "\n")
    for name in OUTPUTS:
        with (here / name).open("rb") as src, gzip.GzipFile(dest / "outputs" / f"{name}.gz", "wb", mtime=0) as dst:
            shutil.copyfileobj(src, dst)
    with gzip.GzipFile(dest / "outputs" / "stdout.gz", "wb", mtime=0) as out:
        out.write(stdout.encode())
    sys.stdout.write(stdout)


def read_incar(path: Path) -> dict[str, str]:
    """INCAR settings as written (strings): replaying needs no pymatgen, so each run starts in
    a tenth of a second (the recording and the folder are written by the same pymatgen writer)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].split("!", 1)[0]
        if "=" in line:
            key, value = line.split("=", 1)
            out[key.strip().upper()] = value.strip()
    return out


def read_poscar(path: Path) -> tuple[list[str], list[list[float]], list[list[float]]]:
    """Species per site, lattice vectors (Å) and fractional coordinates of a VASP 5 POSCAR."""
    lines = path.read_text().splitlines()
    scale = float(lines[1].split()[0])
    lattice = [[scale * float(v) for v in lines[i].split()[:3]] for i in (2, 3, 4)]
    species, counts = lines[5].split(), [int(c) for c in lines[6].split()]
    sites = [el for el, n in zip(species, counts, strict=True) for _ in range(n)]
    start = 8 if lines[7].strip()[0] in "sS" else 7  # "Selective dynamics" adds a line
    if lines[start].strip()[0] not in "dD":
        raise SystemExit(f"fake vasp: {path} has Cartesian coordinates; only direct ones are replayed")
    coords = [[float(v) for v in lines[start + 1 + i].split()[:3]] for i in range(len(sites))]
    return sites, lattice, coords


def _mesh(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    if lines[1].split()[0] == "0" and lines[2].strip()[:1] in "GgMm":  # an automatic mesh
        return [int(d) for d in lines[3].split()[:3]]
    return _divisions(path)


def _counts(name: str) -> dict[str, int]:
    """``Cu1Ni3`` -> {"Cu": 1, "Ni": 3}."""
    return {el: int(n) for el, n in re.findall(r"([A-Z][a-z]?)(\d+)", name)}


def _recorded(rec_dir: Path, sites: list[str], kind: str) -> tuple[str, Path]:
    """The recording of this cell's composition and kind (formula order as pymatgen's, any here)."""
    counts = {el: sites.count(el) for el in sites}
    for ref in sorted(rec_dir.iterdir()):
        formula, _, ref_kind = ref.name.rpartition("-")
        if ref_kind == kind and _counts(formula) == counts:
            return ref.name, ref
    return "".join(f"{el}{n}" for el, n in counts.items()) + f"-{kind}", rec_dir / "missing"


def _close(a: list[list[float]], b: list[list[float]], atol: float = 1e-3) -> bool:
    if len(a) != len(b):
        return False
    return all(abs(x - y) <= atol for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))


def check_inputs(ref: Path, here: Path, incar: dict) -> list[str]:
    """Differences between this folder's inputs and the recorded ones."""
    problems = []
    ref_incar = read_incar(ref / "inputs" / "INCAR")
    for key in INPUT_KEYS:
        if incar.get(key) != ref_incar.get(key):
            problems.append(f"INCAR {key}: recorded {ref_incar.get(key)}, got {incar.get(key)}")
    titles = _potcar_titles(here / "POTCAR")
    ref_titles = (ref / "inputs" / "POTCAR.titles").read_text().split("\n")[:-1]
    if titles != ref_titles:
        problems.append(f"POTCAR: recorded {ref_titles}, got {titles}")
    if _mesh(here / "KPOINTS") != _mesh(ref / "inputs" / "KPOINTS"):
        problems.append("KPOINTS: the mesh differs from the recorded one")
    sites, lattice, coords = read_poscar(here / "POSCAR")
    ref_sites, ref_lattice, ref_coords = read_poscar(ref / "inputs" / "POSCAR")
    if ref_sites != sites or not _close(ref_coords, coords) or not _close(ref_lattice, lattice):
        problems.append("POSCAR: the cell, species or positions differ from the recorded ones")
    return problems


def replay(rec_dir: Path, here: Path) -> int:
    incar = read_incar(here / "INCAR")
    key, ref = _recorded(rec_dir, read_poscar(here / "POSCAR")[0], _kind(incar))
    if not ref.is_dir():
        print(f"fake vasp: no recorded run {key!r} in {rec_dir}", file=sys.stderr)
        return 1
    problems = check_inputs(ref, here, incar)
    if problems:
        print(f"fake vasp: inputs of {key!r} differ from the recording: " + "; ".join(problems), file=sys.stderr)
        return 1
    error = ref / "error.json"
    if error.exists():
        spec = json.loads(error.read_text())
        if any(str(incar.get(k, "")).lower() != str(v).lower() for k, v in spec["unless"].items()):
            print(" running on    1 total cores\n entering main loop")
            print(spec["message"])
            return 0
    for name in OUTPUTS:
        with gzip.open(ref / "outputs" / f"{name}.gz", "rb") as src, (here / name).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    with gzip.open(ref / "outputs" / "stdout.gz", "rt") as out:
        sys.stdout.write(out.read())  # custodian keeps a run's stdout as vasp.out
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    rec_dir = Path(argv[0])
    if "--record" in argv[1:]:
        record(rec_dir, Path.cwd())
        return 0
    return replay(rec_dir, Path.cwd())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
