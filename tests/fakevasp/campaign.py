"""The small Cu-Ni VASP campaign whose runs are recorded under tests/data/vasp."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDINGS = HERE.parent / "data" / "vasp"
#: the recording whose first run stops with an error custodian's VaspErrorHandler corrects
ERROR_RUN = "Cu2Ni2-relax"
ERROR = {"message": " WARNING in EDDRMM: call to ZHEGV failed, returncode =   6  3       16",
         "unless": {"ALGO": "Normal"}}


def command(record: bool = False) -> str:
    return f"{sys.executable} {HERE / 'fake_vasp.py'} {RECORDINGS}" + (" --record" if record else "")


def vasp_campaign(run_dir: Path, record: bool = False, **calculator) -> dict:
    return {
        "name": "vasp-cuni",
        "space": {"elements": ["Cu", "Ni"], "step": 0.25},
        "structure": {"prototype": "fcc", "n_atoms": 4},
        "calculator": {"name": "vasp", "relax": True, "steps": 40, "fmax": 0.05,
                       "options": {"command": command(record), "run_dir": str(run_dir),
                                   "kpoints_density": 64, "poll_seconds": 0.05}, **calculator},
        "search": {"sampler": "grid", "batch_size": 5, "budget": 5},
    }
