"""Write a VASP run's output files (vasprun.xml, OUTCAR, OSZICAR, CONTCAR and the run's stdout).

Used only to *record* the outputs that the fake ``vasp`` (``fake_vasp.py``) replays in the
tests: VASP cannot run here, so the energies come from ASE's EMT, shifted per atom by fixed
elemental constants to DFT-like magnitudes (formation energies are unchanged by the shift).
The files follow the layout of real VASP 6 output closely enough for pymatgen's ``Vasprun``,
``Outcar`` and ``Oszicar``, custodian's handlers and validators, and emmet's ``TaskDoc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from pymatgen.core import Structure

#: per-atom energies added to EMT's (roughly PBE's elemental energies, eV/atom)
SHIFT = {"Cu": -3.72, "Ni": -5.57, "Al": -3.74, "Ag": -2.83, "Au": -3.27, "Pd": -5.18, "Pt": -6.05}


@dataclass
class Step:
    """One ionic step."""

    structure: Structure
    energy: float          # eV, the whole cell
    forces: np.ndarray     # (n, 3) eV/Å
    stress: np.ndarray     # (3, 3) kBar, VASP's sign (positive = compressive... as VASP prints)


@dataclass
class Potential:
    symbol: str   # e.g. Cu
    titel: str    # e.g. PAW_PBE Cu 22Jun2005
    zval: float
    mass: float


def _fmt(x: float) -> str:
    return f"{x:16.8f}"


def _vrow(values, kind: str = "") -> str:
    attr = f' type="{kind}"' if kind else ""
    return f"<v{attr}>" + " ".join(_fmt(v) if kind != "int" else f"{int(v):8d}" for v in values) + " </v>"


def _item(name: str, value) -> str:
    if isinstance(value, bool):
        return f'<i type="logical" name="{name}"> {"T" if value else "F"}  </i>'
    if isinstance(value, int):
        return f'<i type="int" name="{name}">{value:6d}</i>'
    if isinstance(value, float):
        return f'<i name="{name}">{value:16.8f}</i>'
    if isinstance(value, list | tuple):
        return f'<v name="{name}">' + " ".join(_fmt(float(v)) for v in value) + "</v>"
    return f'<i type="string" name="{name}">{escape(str(value))}</i>'


def _structure_xml(s: Structure, name: str | None = None) -> list[str]:
    head = f'<structure name="{name}" >' if name else "<structure>"
    out = [head, "<crystal>", '<varray name="basis" >']
    out += [_vrow(v) for v in s.lattice.matrix]
    out += ["</varray>", f'<i name="volume">{_fmt(s.volume)} </i>', '<varray name="rec_basis" >']
    out += [_vrow(v) for v in s.lattice.reciprocal_lattice_crystallographic.matrix]
    out += ["</varray>", "</crystal>", '<varray name="positions" >']
    out += [_vrow(f) for f in s.frac_coords]
    out += ["</varray>", "</structure>"]
    return out


def _scf_energies(final: float, n: int) -> list[float]:
    """A converging sequence of electronic-step energies ending at ``final``."""
    return [final + 3.0 * 10.0 ** (-1.2 * i) for i in range(n - 1)] + [final]


def kpoint_list(divisions) -> tuple[np.ndarray, np.ndarray]:
    """A few k-points of the mesh with weights summing to one (the eigenvalue arrays stay small)."""
    d = np.asarray(divisions, dtype=float)
    kpts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]) / d
    w = np.array([1.0, 3.0, 6.0, 4.0])
    return kpts, w / w.sum()


def write_run(directory: Path, incar: dict, divisions, potentials: list[Potential], steps: list[Step],
              n_scf: int = 9) -> str:
    """Write the output files of one VASP run whose ionic steps are ``steps``; return its stdout."""
    directory = Path(directory)
    final = steps[-1]
    s0 = steps[0].structure
    symbols = [p.symbol for p in potentials]
    counts = [sum(1 for site in s0 if site.specie.symbol == el) for el in symbols]
    by_el = {p.symbol: p for p in potentials}
    nelect = float(sum(by_el[site.specie.symbol].zval for site in s0))
    nbands = int(nelect / 2 + len(s0) / 2) + 8
    ispin = int(incar.get("ISPIN", 1))
    nelm = int(incar.get("NELM", 60))
    sigma = float(incar.get("SIGMA", 0.2))
    efermi = 5.4321
    kpts, weights = kpoint_list(divisions)

    params = {
        "SYSTEM": "htflow fake vasp", "PREC": str(incar.get("PREC", "normal")).lower(),
        "ENCUT": float(incar.get("ENCUT", 400.0)), "NBANDS": nbands, "NELECT": nelect,
        "NELM": nelm, "NELMIN": 2, "EDIFF": float(incar.get("EDIFF", 1e-4)),
        "ISMEAR": int(incar.get("ISMEAR", 1)), "SIGMA": sigma, "ISPIN": ispin,
        "MAGMOM": [float(m) for m in incar.get("MAGMOM", [1.0] * len(s0))],
        "GGA": str(incar.get("GGA", "--")), "LASPH": bool(incar.get("LASPH", False)),
        "METAGGA": str(incar.get("METAGGA", "--")), "LDAU": bool(incar.get("LDAU", False)),
        "LHFCALC": False, "AEXX": 0.0, "HFSCREEN": 0.0, "LUSE_VDW": False,
        "NSW": int(incar.get("NSW", 0)), "IBRION": int(incar.get("IBRION", -1)),
        "ISIF": int(incar.get("ISIF", 2)), "EDIFFG": float(incar.get("EDIFFG", 1e-3)),
        "POTIM": float(incar.get("POTIM", 0.5)), "LORBIT": int(incar.get("LORBIT", 0)),
        "LCHIMAG": False, "NEDOS": 301,
    }

    x = ['<?xml version="1.0" encoding="ISO-8859-1"?>', "<modeling>", "<generator>",
         '<i name="program" type="string">vasp </i>', '<i name="version" type="string">6.3.0  </i>',
         '<i name="subversion" type="string">htflow fake vasp (EMT energies) </i>',
         '<i name="platform" type="string">LinuxIFC </i>', '<i name="date" type="string">2026 11 24 </i>',
         '<i name="time" type="string">12:00:00 </i>', "</generator>", "<incar>"]
    for key, val in incar.items():
        if isinstance(val, list):
            x.append(_item(key, [float(v) for v in val]))
        elif isinstance(val, bool | int | float):
            x.append(_item(key, val))
        else:
            x.append(_item(key, str(val)))
    x += ["</incar>", "<kpoints>", '<generation param="Gamma">',
          '<v type="int" name="divisions">' + " ".join(f"{int(d):8d}" for d in divisions) + " </v>",
          '<v name="usershift">      0.00000000       0.00000000       0.00000000 </v>',
          "</generation>", '<varray name="kpointlist" >', *[_vrow(k) for k in kpts], "</varray>",
          '<varray name="weights" >', *[_vrow([w]) for w in weights], "</varray>", "</kpoints>",
          "<parameters>", '<separator name="general" >']
    x += [_item(k, v) for k, v in params.items()]
    x += ["</separator>", "</parameters>", "<atominfo>", f"<atoms>{len(s0):8d} </atoms>",
          f"<types>{len(symbols):8d} </types>", '<array name="atoms" >', '<dimension dim="1">ion</dimension>',
          '<field type="string">element</field>', '<field type="int">atomtype</field>', "<set>"]
    x += [f"<rc><c>{site.specie.symbol:2s}</c><c>{symbols.index(site.specie.symbol) + 1:4d}</c></rc>"
          for site in s0]
    x += ["</set>", "</array>", '<array name="atomtypes" >', '<dimension dim="1">type</dimension>',
          '<field type="int">atomspertype</field>', '<field type="string">element</field>',
          "<field>mass</field>", "<field>valence</field>", '<field type="string">pseudopotential</field>', "<set>"]
    x += [f"<rc><c>{n:4d}</c><c>{p.symbol:2s}</c><c>{p.mass:16.8f}</c><c>{p.zval:16.8f}</c>"
          f"<c>  {p.titel}</c></rc>" for p, n in zip(potentials, counts, strict=True)]
    x += ["</set>", "</array>", "</atominfo>", *_structure_xml(s0, "initialpos")]
    for step in steps:
        x.append("<calculation>")
        for e in _scf_energies(step.energy, n_scf):
            x += ["<scstep>", '<time name="total">    0.01    0.01</time>', "<energy>",
                  f'<i name="e_fr_energy">{_fmt(e)} </i>', f'<i name="e_wo_entrp">{_fmt(e)} </i>',
                  f'<i name="e_0_energy">{_fmt(e)} </i>', "</energy>", "</scstep>"]
        x += _structure_xml(step.structure)
        x += ['<varray name="forces" >', *[_vrow(f) for f in step.forces], "</varray>",
              '<varray name="stress" >', *[_vrow(r) for r in step.stress], "</varray>", "<energy>",
              f'<i name="e_fr_energy">{_fmt(step.energy)} </i>', f'<i name="e_wo_entrp">{_fmt(step.energy)} </i>',
              f'<i name="e_0_energy">{_fmt(step.energy)} </i>', "</energy>",
              '<time name="totalsc">    0.11    0.12</time>']
        if step is final:
            x += _eigen_dos_xml(nbands, ispin, kpts, efermi, sigma)
        x.append("</calculation>")
    x += _structure_xml(final.structure, "finalpos")
    x.append("</modeling>")
    (directory / "vasprun.xml").write_text("\n".join(x) + "\n", encoding="latin-1")

    final.structure.to(filename=str(directory / "CONTCAR"), fmt="poscar")
    _write_oszicar(directory, steps, n_scf, ispin)
    _write_outcar(directory, incar, potentials, steps, nelect, nbands, efermi, ispin, n_scf)
    return _vasp_out(steps, n_scf)


def _eigen_dos_xml(nbands: int, ispin: int, kpts, efermi: float, sigma: float) -> list[str]:
    """A metal's eigenvalues (bands cross the Fermi level) and a total DOS."""
    x = ["<eigenvalues>", "<array>", '<dimension dim="1">band</dimension>', '<dimension dim="2">kpoint</dimension>',
         '<dimension dim="3">spin</dimension>', "<field>eigene</field>", "<field>occ</field>", "<set>"]
    for spin in range(ispin):
        x.append(f'<set comment="spin {spin + 1}">')
        for k in range(len(kpts)):
            x.append(f'<set comment="kpoint {k + 1}">')
            for b in range(nbands):
                e = efermi - 5.0 + 0.8 * b + 0.5 * k  # dispersion wider than the band spacing
                occ = min(1.0, max(0.0, 0.5 - (e - efermi) / 0.1))
                x.append(f"<r>{e:10.4f} {occ:10.4f} </r>")
            x.append("</set>")
        x.append("</set>")
    x += ["</set>", "</array>", "</eigenvalues>", "<dos>", f'<i name="efermi">{_fmt(efermi)} </i>', "<total>",
          "<array>", '<dimension dim="1">gridpoints</dimension>', '<dimension dim="2">spin</dimension>',
          "<field>energy</field>", "<field>total</field>", "<field>integrated</field>", "<set>"]
    grid = np.linspace(efermi - 10, efermi + 5, 31)
    for spin in range(ispin):
        x.append(f'<set comment="spin {spin + 1}">')
        integ = 0.0
        for e in grid:
            d = 1.0 + 0.5 * np.cos(e)
            integ += d * 0.5
            x.append(f"<r>{e:11.4f} {d:11.4f} {integ:11.4f} </r>")
        x.append("</set>")
    x += ["</set>", "</array>", "</total>", "</dos>"]
    return x


def _write_oszicar(directory: Path, steps: list[Step], n_scf: int, ispin: int) -> None:
    lines = []
    for i, step in enumerate(steps, 1):
        lines.append("       N       E                     dE             d eps       ncg     rms          rms(c)")
        prev = 0.0
        for j, e in enumerate(_scf_energies(step.energy, n_scf), 1):
            lines.append(f"DAV: {j:3d}    {e: .12E}   {e - prev: .5E}   {-1e-3 / j: .5E}  {64:5d}   {1e-2 / j:.3E}")
            prev = e
        mag = "   mag=     0.0000" if ispin == 2 else ""
        lines.append(f"{i:4d} F= {step.energy: .8E} E0= {step.energy: .8E}  d E ={step.energy - steps[0].energy: .6E}{mag}")
    (directory / "OSZICAR").write_text("\n".join(lines) + "\n")


def _write_outcar(directory: Path, incar: dict, potentials: list[Potential], steps: list[Step],
                  nelect: float, nbands: int, efermi: float, ispin: int, n_scf: int) -> None:
    n = len(steps[0].structure)
    o = [" vasp.6.3.0 20Jan22 (build Feb 16 2022 17:18:48) complex", " executed on  LinuxIFC date 2026.11.24  12:00:00",
         " running on    1 total cores", " distrk:  each k-point on    1 cores,    1 groups",
         " distr:  one band on    1 cores,    1 groups", ""]
    o += [f" POTCAR:    {p.titel}" for p in potentials]
    o += ["", f"   number of dos      NEDOS =    301   number of ions     NIONS = {n:6d}",
          f"   ISPIN  = {ispin:6d}    spin polarized calculation?",
          f"   NELECT = {nelect:12.4f}    total number of electrons",
          f"   k-points           NKPTS =      4   k-points in BZ     NKDIM =      4   number of bands    NBANDS= {nbands:6d}",
          "   total plane-waves  NPLWV =  32768", f"   IBRION = {int(incar.get('IBRION', -1)):6d}    ionic relax: 0-MD 1-quasi-New 2-CG",
          f"   ENCUT  = {float(incar.get('ENCUT', 400.0)):8.1f} eV"]
    for i, step in enumerate(steps, 1):
        o += ["", f"--------------------------------------- Iteration {i:6d}(   {n_scf:2d})  ---------------------------------------",
              "", " FORCE on cell =-STRESS in cart. coord.  units (eV):",
              "  in kB  " + " ".join(f"{v:11.5f}" for v in (step.stress[0, 0], step.stress[1, 1], step.stress[2, 2],
                                                              step.stress[0, 1], step.stress[1, 2], step.stress[0, 2])),
              "", " POSITION                                       TOTAL-FORCE (eV/Angst)",
              " -----------------------------------------------------------------------------------"]
        o += [f" {c[0]:12.5f} {c[1]:12.5f} {c[2]:12.5f}   {f[0]:14.6f} {f[1]:14.6f} {f[2]:14.6f}"
              for c, f in zip(step.structure.cart_coords, step.forces, strict=True)]
        o += [" -----------------------------------------------------------------------------------",
              "    total drift:                                0.000000      0.000000      0.000000", "",
              "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)", "  ---------------------------------------------------",
              f"  free  energy   TOTEN  = {step.energy:20.8f} eV", "",
              f"  energy  without entropy= {step.energy:18.8f}  energy(sigma->0) = {step.energy:18.8f}", ""]
    o += [f" E-fermi : {efermi:10.4f}     XC(G=0):  -9.6970     alpha+bet :-10.2000", ""]
    if ispin == 2:
        o += [" magnetization (x)", "", "# of ion       s       p       d       tot", "------------------------------------------"]
        o += [f"{i + 1:4d}        0.000   0.000   0.000   0.000" for i in range(n)]
        o += ["--------------------------------------------------", "tot          0.000   0.000   0.000   0.000", ""]
    o += ["", " General timing and accounting informations for this job:", " ========================================================",
          "", "                  Total CPU time used (sec):        1.000", "                            User time (sec):        0.900",
          "                          System time (sec):        0.100", "                         Elapsed time (sec):        1.000",
          "", "                   Maximum memory used (kb):      100000.", "                   Average memory used (kb):          N/A",
          "", "                          Minor page faults:            0", "                          Major page faults:            0",
          "                 Voluntary context switches:            0"]
    (directory / "OUTCAR").write_text("\n".join(o) + "\n")


def _vasp_out(steps: list[Step], n_scf: int) -> str:
    lines = [" running on    1 total cores", " vasp.6.3.0 20Jan22 complex", " POSCAR found :  1 types and atoms",
             " entering main loop"]
    for i, step in enumerate(steps, 1):
        lines.append("       N       E                     dE             d eps       ncg     rms          rms(c)")
        lines += [f"DAV: {j:3d}    {e: .12E}" for j, e in enumerate(_scf_energies(step.energy, n_scf), 1)]
        lines.append(f"{i:4d} F= {step.energy: .8E} E0= {step.energy: .8E}")
    lines.append(" reached required accuracy - stopping structural energy minimisation"
                 if len(steps) > 1 else " writing wavefunctions")
    return "\n".join(lines) + "\n"
