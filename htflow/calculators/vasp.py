"""VASP (DFT) as an htflow calculator, through atomate2's makers and custodian's error handlers.

``calculator: {name: vasp}`` relaxes each structure with atomate2's ``RelaxMaker`` (ISIF = 3)
and then, by default, computes it again with ``StaticMaker`` from the relaxed cell; with
``relax: false`` only the static runs. Every run happens in a folder of its own under
``options.run_dir`` and is supervised by custodian with atomate2's default handlers
(``VaspErrorHandler``, ``UnconvergedErrorHandler``, ...): an error a handler knows is corrected
in the inputs and the run restarted, up to ``max_errors`` times. The stored result is the last
run's energy and structure; the run folders stay for inspection.

The campaign's ``fmax`` and ``steps`` become VASP's ``EDIFFG = -fmax`` and ``NSW = steps``.

Options (``calculator.options``):

- ``command``: the VASP command line (default: atomate2's ``VASP_CMD``, i.e. the
  ``ATOMATE2_VASP_CMD`` environment variable, else ``vasp_std``);
- ``run_dir``: where the calculation folders go (default ``vasp-runs`` in the current folder);
- ``static``: follow each relaxation with a static run (default true);
- ``incar``: INCAR settings to add or override (``{ENCUT: 520, ALGO: Normal}``);
- ``kpoints_density``: k-points per reciprocal atom (atomate2's reciprocal density);
- ``potcar_functional``: ``PBE_54`` (atomate2's default), ``PBE_64``, ``PBE_52`` or ``PBE``;
- ``max_errors``: how many errors custodian may correct per run (default 5);
- ``poll_seconds``: how often custodian looks at a running VASP (default 10, custodian's own;
  every run lasts at least this long).

Before anything is written, htflow checks that POTCARs for every element of the space can be
found (pymatgen's ``PMG_VASP_PSP_DIR``) and, for runs on this machine (local or a local Dask
cluster), that the VASP command exists.
"""

from __future__ import annotations

import os
import shlex
import shutil
import threading
import uuid
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from atomate2 import SETTINGS as ATOMATE2_SETTINGS
from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
from atomate2.vasp.sets.core import RelaxSetGenerator, StaticSetGenerator
from jobflow import Flow, Maker, job
from pymatgen.core import SETTINGS as PMG_SETTINGS
from pymatgen.core import Structure
from pymatgen.io.vasp.inputs import PotcarSingle

from htflow.calculators.base import CalculatorSpec
from htflow.errors import InputError
from htflow.schemas.config import CalculatorConfig, CampaignConfig
from htflow.space.compositions import CompositionSpace

LAUNCHERS = ("mpirun", "mpiexec", "srun", "aprun", "ibrun", "jsrun")
_FOLDER_LOCK = threading.Lock()


def default_command() -> str:
    return ATOMATE2_SETTINGS.VASP_CMD


@job
def run_vasp_in_folder(maker: Maker, structure: Structure, run_dir: str, prev_dir: str | None = None) -> Any:
    """Run an atomate2 VASP maker's job in a folder of its own under ``run_dir``."""
    return in_folder(maker, structure, run_dir, prev_dir)


def in_folder(maker: Maker, structure: Structure, run_dir: str, prev_dir: str | None = None) -> Any:
    """The maker's own job function, run in a new folder rather than as a job of its own.

    A plain module function, so that Dask pickles it by reference (the job above is pickled
    by value, with its globals).
    """
    folder = Path(run_dir) / f"{structure.composition.reduced_formula}-{maker.name}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    # the working directory belongs to the process: threads of one Dask worker take turns
    with _FOLDER_LOCK:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            return type(maker).make.original(maker, structure, prev_dir=prev_dir)
        finally:
            os.chdir(cwd)


@dataclass
class VaspEvaluationMaker(Maker):
    """Relaxation (optional) then static run, each in its own folder under ``run_dir``."""

    name: str = "vasp"
    relax_maker: Maker | None = None
    static_maker: Maker | None = None
    run_dir: str = "vasp-runs"

    def make(self, structure: Structure) -> Flow:
        jobs = []
        prev_dir, current = None, structure
        for maker in (self.relax_maker, self.static_maker):
            if maker is None:
                continue
            j = run_vasp_in_folder(maker, current, self.run_dir, prev_dir)
            j.name = maker.name
            jobs.append(j)
            prev_dir, current = j.output.dir_name, j.output.structure
        return Flow(jobs, output=jobs[-1].output, name=self.name)


def _options(cfg: CalculatorConfig) -> dict:
    opts = dict(cfg.options)
    return {
        "command": str(opts.get("command") or default_command()),
        "run_dir": str(Path(str(opts.get("run_dir", "vasp-runs"))).expanduser().resolve()),
        "static": bool(opts.get("static", True)),
        "incar": dict(opts.get("incar") or {}),
        "kpoints_density": opts.get("kpoints_density"),
        "potcar_functional": opts.get("potcar_functional"),
        "max_errors": int(opts.get("max_errors", 5)),
        "poll_seconds": float(opts.get("poll_seconds", 10)),
    }


def _generator(kind: str, o: dict, incar: dict | None = None) -> Any:
    kw: dict[str, Any] = {"user_incar_settings": {**(incar or {}), **o["incar"]}}
    if o["kpoints_density"]:
        kw["user_kpoints_settings"] = {"reciprocal_density": int(o["kpoints_density"])}
    if o["potcar_functional"]:
        kw["user_potcar_functional"] = o["potcar_functional"]
    return (RelaxSetGenerator if kind == "relax" else StaticSetGenerator)(**kw)


def make_vasp(cfg: CalculatorConfig) -> VaspEvaluationMaker:
    """The evaluation maker of a ``vasp`` calculator configuration."""
    o = _options(cfg)
    run = {"vasp_cmd": o["command"], "max_errors": o["max_errors"],
           "custodian_kwargs": {"polling_time_step": o["poll_seconds"]}}
    relax = static = None
    if cfg.relax:
        limits = {"EDIFFG": -cfg.fmax, "NSW": cfg.steps}
        relax = RelaxMaker(input_set_generator=_generator("relax", o, limits),
                           run_vasp_kwargs=dict(run))
    if not cfg.relax or o["static"]:
        static = StaticMaker(input_set_generator=_generator("static", o), run_vasp_kwargs=dict(run))
    return VaspEvaluationMaker(relax_maker=relax, static_maker=static, run_dir=o["run_dir"])


def potcar_problem(elements: list[str], generator: Any) -> str | None:
    """Why the POTCARs of ``elements`` cannot be found, or None."""
    psp_dir = PMG_SETTINGS.get("PMG_VASP_PSP_DIR")
    if not psp_dir:
        return ("VASP needs POTCAR files and PMG_VASP_PSP_DIR is not set; point it at your POTCAR library "
                "(export PMG_VASP_PSP_DIR=/path, or pmg config --add PMG_VASP_PSP_DIR /path)")
    if not Path(psp_dir).is_dir():
        return f"PMG_VASP_PSP_DIR={psp_dir!r} is not a folder"
    config = generator.config_dict
    functional = generator.user_potcar_functional or config.get("POTCAR_FUNCTIONAL", "PBE")
    missing = []
    for el in elements:
        symbol = config["POTCAR"].get(el, el)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                PotcarSingle.from_symbol_and_functional(symbol, functional)
            except (OSError, ValueError, KeyError):
                sub = PotcarSingle.functional_dir.get(functional, "?")
                missing.append(f"{el} ({symbol}: {Path(psp_dir) / sub / ('POTCAR.' + symbol)})")
    if missing:
        return f"no {functional} POTCAR for {', '.join(missing)}"
    return None


def command_problem(command: str) -> str | None:
    """Why ``command`` cannot run here, or None."""
    try:
        words = shlex.split(os.path.expandvars(command))
    except ValueError as exc:
        return f"the VASP command {command!r} cannot be parsed ({exc})"
    if not words:
        return "the VASP command is empty"
    check = [words[0]]
    if Path(words[0]).name in LAUNCHERS and len(words) > 1:
        check.append(words[-1])
    for word in check:
        if shutil.which(word) is None and not (Path(word).is_file() and os.access(word, os.X_OK)):
            return (f"the VASP command {command!r} cannot run here: {word!r} is not on PATH; set "
                    "calculator.options.command or ATOMATE2_VASP_CMD")
    return None


class VaspSpec(CalculatorSpec):
    """The ``vasp`` calculator: options, POTCAR and command checks, versions."""

    def __init__(self) -> None:
        super().__init__("vasp", make_vasp, meta={"method": "DFT (VASP through atomate2 and custodian)"})

    def check(self, campaign: CampaignConfig, space: CompositionSpace) -> None:
        o = _options(campaign.calculator)
        problem = potcar_problem(list(space.elements), _generator("relax", o))
        if problem:
            raise InputError(f"calculator: {problem}")
        ex = campaign.executor
        if ex.type == "dask" and ex.threads_per_worker > 1:
            raise InputError("executor.threads_per_worker: VASP runs each change into their own folder, "
                             "which threads of one process cannot do at once; use threads_per_worker: 1 "
                             "(and more workers)")
        if ex.type == "local" or (ex.type == "dask" and not ex.cluster and not ex.address):
            problem = command_problem(o["command"])
            if problem:
                raise InputError(f"calculator.options.command: {problem}")

    def metadata(self) -> dict:
        return {**super().metadata(), "atomate2_version": version("atomate2"),
                "custodian_version": version("custodian")}
