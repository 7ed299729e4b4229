"""Machine-learned interatomic potentials as htflow calculators (optional: ``pip install 'htflow[mlip]'``).

Two universal potentials whose pretrained weights ship inside their PyPI wheels run anywhere,
offline included: ``chgnet`` (CHGNet 0.3.0, Deng et al. 2023) and ``sevennet`` (SevenNet-0,
Park et al. 2024). ``mace`` runs a MACE model file the user already has (mace-torch downloads
its foundation models at run time, which an offline machine cannot). Relaxations go through
atomate2's ``ForceFieldRelaxMaker`` (FIRE with a cell filter, atomate2's task document), with
the model loaded once per process and shared by every job there.

Campaign options (``calculator.options``):

- ``model``: chgnet ``0.3.0`` (default), ``0.2.0`` or the path of a fine-tuned checkpoint
  (``htflow finetune``, :mod:`htflow.calculators.finetune`); sevennet ``7net-0`` (default) or another
  name or checkpoint the package knows; mace: the path of a ``.model`` file (required);
- ``device``: ``auto`` (CUDA when torch sees a GPU, else CPU; default), ``cpu`` or ``cuda``;
- ``batch_size`` (chgnet): relax this many structures in lockstep in one job, their forces
  computed together (:func:`htflow.calculators.batch.relax`); default 1, one structure per job and model
  call. Batches are for GPUs: on a CPU they are slower (docs/mlip.md).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from ase.calculators.calculator import Calculator
from atomate2.forcefields.jobs import ForceFieldRelaxMaker
from jobflow import Flow, Maker, job

from htflow.calculators.base import CalculatorSpec, ase_relax_kwargs
from htflow.calculators.batch import chgnet_calculator
from htflow.calculators.batch import relax as relax_batch
from htflow.calculators.flows import properties
from htflow.errors import InputError
from htflow.schemas.config import CalculatorConfig, CampaignConfig
from htflow.space.compositions import CompositionSpace
from htflow.utils.threads import pin_torch

INSTALL = "pip install 'htflow[mlip]'"


@dataclass(frozen=True)
class Potential:
    """One machine-learned potential htflow knows."""

    name: str
    package: str           # the module to import
    pip: str               # what to install
    force_field: str       # atomate2's MLFF name
    default_model: str | None
    method: str


POTENTIALS = {
    "chgnet": Potential("chgnet", "chgnet", "chgnet==0.4.2", "CHGNet", "0.3.0",
                        "CHGNet universal potential (Deng et al. 2023)"),
    "sevennet": Potential("sevennet", "sevenn", "sevenn==0.13.0", "SevenNet", "7net-0",
                          "SevenNet universal potential (Park et al. 2024)"),
    "mace": Potential("mace", "mace", "mace-torch", "MACE", None,
                      "MACE potential from a model file (Batatia et al. 2022)"),
}

_CACHE: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def is_checkpoint(model: Any) -> bool:
    """Whether ``model`` names a checkpoint file (a fine-tuned CHGNet) rather than shipped weights."""
    return isinstance(model, str) and model not in ("0.3.0", "0.2.0") and Path(model).expanduser().is_file()


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    import torch  # heavy: optional (htflow[mlip], htflow[bo])

    return "cuda" if torch.cuda.is_available() else "cpu"


def _pin_threads() -> None:
    # one relaxation per core is the faster use (htflow.utils.threads.pin_torch)
    pin_torch()


def load_model(name: str, model: str | None = None, device: str = "auto") -> Any:
    """The package's own model object (cached per process): CHGNet, SevenNet's calculator, ..."""
    device = resolve_device(device)
    pot = POTENTIALS[name]
    model = model or pot.default_model
    key = ("model", name, model, device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        _pin_threads()
        if name == "chgnet":
            from chgnet.model import CHGNet  # heavy: optional (htflow[mlip])

            if is_checkpoint(model):  # a fine-tuned model (htflow finetune)
                obj = CHGNet.from_file(str(Path(model).expanduser())).to(device)
            else:
                obj = CHGNet.load(model_name=model, use_device=device, verbose=False)
        elif name == "sevennet":
            from sevenn.calculator import SevenNetCalculator  # heavy: optional (htflow[mlip])

            obj = SevenNetCalculator(model, device=device)
        else:
            from mace.calculators import MACECalculator  # heavy: optional, the user's own

            obj = MACECalculator(model_paths=model, device=device, default_dtype="float64")
        _CACHE[key] = obj
        return obj


def calculator(name: str, model: str | None = None, device: str = "auto") -> Calculator:
    """An ASE calculator for the potential (sharing the cached model)."""
    obj = load_model(name, model, device)
    if name == "chgnet":
        key = ("calc", name, model, resolve_device(device))
        with _LOCK:
            if key not in _CACHE:
                _CACHE[key] = chgnet_calculator(obj, resolve_device(device))
            return _CACHE[key]
    return obj  # SevenNet's and MACE's model objects are ASE calculators


def version(name: str) -> str:
    try:
        return package_version(POTENTIALS[name].pip.split("==")[0])
    except PackageNotFoundError:
        return "unknown"


@dataclass
class MLIPRelaxMaker(ForceFieldRelaxMaker):
    """atomate2's force-field relaxation with htflow's per-process model cache."""

    name: str = "MLIP relaxation"
    potential: str = "chgnet"
    model: str | None = None
    device: str = "auto"
    calculator_kwargs: dict = field(default_factory=dict)

    def _get_calculator(self) -> Calculator:
        return calculator(self.potential, self.model, self.device)


@job
def evaluate_batch(structures: list, references: dict[str, float] | None, potential: str, model: str | None,
                   device: str, relax: bool, fmax: float, steps: int, batch_size: int) -> dict:
    """Relax (or single-point) ``structures`` together; one properties dict (or error) each."""
    start = time.perf_counter()
    out = relax_batch(load_model(potential, model, device), structures, batch_size, fmax,
                      steps if relax else 0, relax_cell=relax)
    seconds = (time.perf_counter() - start) / max(1, len(structures))
    return {"results": [o if "error" in o else properties(o["structure"], o["energy"], references,
                                                          o["n_steps"], seconds, o["converged"])
                        for o in out]}


@dataclass
class MLIPBatchMaker(Maker):
    """One job that relaxes several structures in lockstep (:func:`htflow.calculators.batch.relax`)."""

    name: str = "MLIP batch"
    potential: str = "chgnet"
    model: str | None = None
    device: str = "auto"
    relax: bool = True
    fmax: float = 0.05
    steps: int = 500
    batch_size: int = 16

    def make(self, structures: list, references: dict[str, float] | None = None) -> Flow:
        j = evaluate_batch(structures, references, self.potential, self.model, self.device, self.relax,
                           self.fmax, self.steps, self.batch_size)
        j.name = f"{self.potential} batch of {len(structures)}"
        return Flow([j], output=j.output, name=self.name)


class MLIPSpec(CalculatorSpec):
    """The calculator spec of one potential: its maker, its checks, its versions."""

    def __init__(self, name: str):
        self.pot = POTENTIALS[name]
        super().__init__(name, self._relax_maker, meta={"method": self.pot.method})

    def _relax_maker(self, cfg: CalculatorConfig) -> MLIPRelaxMaker:
        kw = ase_relax_kwargs(cfg)
        kw["calculator_kwargs"] = {}  # htflow's options configure the model, not an ASE calculator
        return MLIPRelaxMaker(name=f"{self.name} relaxation" if cfg.relax else f"{self.name} static",
                              force_field_name=self.pot.force_field, potential=self.name,
                              model=cfg.options.get("model"), device=cfg.options.get("device", "auto"), **kw)

    def batch_maker(self, cfg: CalculatorConfig) -> MLIPBatchMaker | None:
        size = int(cfg.options.get("batch_size", 1))
        if size <= 1:
            return None
        return MLIPBatchMaker(potential=self.name, model=cfg.options.get("model"),
                              device=cfg.options.get("device", "auto"), relax=cfg.relax, fmax=cfg.fmax,
                              steps=cfg.steps, batch_size=size)

    def check(self, campaign: CampaignConfig, space: CompositionSpace) -> None:
        """Options, package, model file and device, before anything is written."""
        opts = campaign.calculator.options
        if opts.get("batch_size", 1) > 1 and self.name != "chgnet":
            raise InputError(f"calculator.options.batch_size: batched relaxation is built for chgnet; "
                             f"{self.name!r} evaluates one structure at a time (batch_size: 1)")
        device = opts.get("device", "auto")
        if importlib.util.find_spec(self.pot.package) is None:
            raise InputError(f"calculator.name: {self.name!r} needs the {self.pot.package} package, which "
                             f"is not installed: {INSTALL} (or pip install {self.pot.pip})")
        model = opts.get("model")
        if self.name == "mace":
            if not model:
                raise InputError("calculator.options.model: mace needs the path of a MACE .model file "
                                 "(its foundation models download at run time, which needs the internet)")
            if not Path(str(model)).expanduser().is_file():
                raise InputError(f"calculator.options.model: MACE model file {str(model)!r} does not exist")
        elif self.name == "chgnet" and model not in (None, "0.3.0", "0.2.0") and not is_checkpoint(model):
            raise InputError(f"calculator.options.model: CHGNet ships the weights of '0.3.0' and '0.2.0' "
                             f"in its wheel, or give the path of a checkpoint file (htflow finetune "
                             f"writes one); got {model!r}, which is neither")
        if device == "cuda":
            import torch  # heavy: optional (htflow[mlip], htflow[bo])

            if not torch.cuda.is_available():
                raise InputError("calculator.options.device: 'cuda' but torch sees no GPU here "
                                 f"(torch {torch.__version__}); use 'auto' or 'cpu'")

    def metadata(self) -> dict:
        return {**super().metadata(), "package_version": version(self.name)}
