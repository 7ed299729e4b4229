"""Fake POTCAR files: the header pymatgen and VASP's input sets read, no pseudopotential data.

Real POTCARs are licensed with VASP and cannot ship here; the tests point PMG_VASP_PSP_DIR at
a folder of these.
"""

from __future__ import annotations

from pathlib import Path

#: valence electrons of the POTCARs atomate2 picks for EMT's metals
ZVAL = {"Al": 3, "Cu": 11, "Ni": 10, "Pd": 10, "Pt": 10, "Ag": 11, "Au": 11}
ENMAX = {"Al": 240.3, "Cu": 295.4, "Ni": 269.5, "Pd": 250.9, "Pt": 230.3, "Ag": 249.8, "Au": 229.9}


def fake_potcar(symbol: str, zval: float, enmax: float) -> str:
    from pymatgen.core import Element

    element = symbol.split("_")[0]
    mass = float(Element(element).atomic_mass)
    title = f"PAW_PBE {symbol} 01Jan2000"
    return f"""  {title}
 {zval:.11f}
 parameters from PSCTR are:
   VRHFIN ={element}: fake
   LEXCH  = PE
   EATOM  =  -100.0000 eV,   -7.3500 Ry

   TITEL  = {title}
   LULTRA =        F    use ultrasoft PP ?
   IUNSCR =        1    unscreen: 0-lin 1-nonlin 2-no
   RPACOR =    2.000    partial core radius
   POMASS =   {mass:.3f}; ZVAL   =   {zval:.3f}    mass and valenz
   RCORE  =    2.300    outmost cutoff radius
   RWIGS  =    2.200; RWIGS  =    1.164    wigner-seitz radius (au A)
   ENMAX  =  {enmax:.3f}; ENMIN  =  {0.75 * enmax:.3f} eV
   ICORE  =        3    local potential
   LCOR   =        T    correct aug charges
   LPAW   =        T    paw PP
   EAUG   =  500.000
   RMAX   =    2.800    core radius for proj-oper
   RAUG   =    1.300    factor for augmentation sphere
   RDEP   =    2.400    radius for radial grids

 END of PSCTR-controll parameters
 local part
  98.0000000000000
  .12345678E+02  .23456789E+02  .34567891E+02  .45678912E+02  .56789123E+02
 End of Dataset
"""


def write_fake_potcars(root: Path, elements=tuple(ZVAL), functional_dir: str = "POT_GGA_PAW_PBE_54") -> Path:
    """POTCAR.<element> files under ``root/functional_dir``; returns ``root``."""
    folder = Path(root) / functional_dir
    folder.mkdir(parents=True, exist_ok=True)
    for el in elements:
        (folder / f"POTCAR.{el}").write_text(fake_potcar(el, ZVAL[el], ENMAX[el]))
    return Path(root)
