"""Fine-tuning CHGNet on high-fidelity results (``htflow finetune``; ``pip install 'htflow[mlip]'``).

A universal potential is good but not exact for one chemistry. Given the relaxed structures and
energies of a more expensive calculator (DFT; EMT stands in for it in the tests and the benchmark),
:func:`finetune_chgnet`:

1. splits them into training and validation sets (by the seed);
2. refits CHGNet's elemental reference energies (its linear ``AtomRef`` layer) to the training set's
   residuals, a least-squares shift per element: different codes and pseudopotentials differ by
   large per-element constants, which no formation energy sees and which gradient steps would
   otherwise spend the first epochs on;
3. trains with CHGNet's own :class:`~chgnet.trainer.Trainer` (energies per atom and forces, zero
   at a converged relaxation), the embeddings and the first message-passing layers frozen as in
   CHGNet's fine-tuning example, keeping the epoch with the lowest validation energy error;
4. writes the checkpoint (CHGNet's format: ``calculator.options.model`` takes its path) with a
   JSON of what it was trained on and its errors.

Errors are mean absolute errors of the energy per atom on the validation set: of the pretrained
model (``before``), of the pretrained model with its references refitted (``shifted``, the cheapest
correction there is) and of the fine-tuned model (``after``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from htflow.utils.threads import pin_torch

CHECKPOINT = "chgnet-finetuned.pth.tar"
METRICS = "finetune.json"
LOG = "train.log"
#: frozen during fine-tuning (CHGNet's fine-tuning example): what the pretrained model learnt of
#: elements, bonds and angles in general, which a few hundred structures should not overwrite
FROZEN = ("atom_embedding", "bond_embedding", "angle_embedding", "bond_basis_expansion",
          "angle_basis_expansion", "atom_conv_layers.0", "atom_conv_layers.1", "atom_conv_layers.2",
          "bond_conv_layers", "angle_layers")


@dataclass(frozen=True)
class FinetuneSettings:
    """How to fine-tune (the ``htflow finetune`` options)."""

    epochs: int = 30
    learning_rate: float = 3e-3
    val_fraction: float = 0.2
    batch_size: int = 8
    seed: int = 0
    base: str = "0.3.0"  # the pretrained weights to start from ("0.3.0" or "0.2.0")
    targets: str = "e"  # CHGNet's: "e" energies, "ef" also forces (zero at a converged relaxation)
    freeze: bool = True  # the layers of FROZEN


@dataclass
class Sample:
    """One high-fidelity result: a relaxed structure and its energy per atom (eV)."""

    key: str
    structure: Structure
    energy_per_atom: float


def split(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples: a seeded shuffle, at least one of each."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = min(len(samples) - 1, max(1, round(val_fraction * len(samples))))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def predict_energies(model: Any, structures: list[Structure], batch_size: int = 16) -> np.ndarray:
    """The model's energy per atom (eV) of each structure, as it is (no relaxation)."""
    out = model.predict_structure(structures, task="e", batch_size=batch_size)
    out = out if isinstance(out, list) else [out]
    return np.array([float(o["e"]) for o in out])


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))


def refit_references(model: Any, structures: list[Structure], residuals: np.ndarray) -> np.ndarray:
    """Add to the model's elemental reference energies the least-squares shift per element that best
    explains ``residuals`` (target minus prediction, eV/atom): CHGNet's own ``AtomRef.fit`` on the
    residuals. Returns the shift of each atomic number."""
    import torch  # heavy: optional (htflow[mlip])
    from chgnet.model.composition_model import AtomRef  # heavy: optional (htflow[mlip])

    shift = AtomRef(is_intensive=True)
    shift.fit(structures, [float(r) for r in residuals])
    fc = model.composition_model.fc
    with torch.no_grad():
        fc.weight += shift.fc.weight.to(fc.weight.dtype).view_as(fc.weight)
    return shift.fc.weight.detach().numpy().ravel().astype(float)


def _graphs(model: Any, samples: list[Sample]) -> list[tuple[Any, dict]]:
    """Each sample's crystal graph (converted once, not every epoch as CHGNet's datasets do) and targets."""
    import torch  # heavy: optional (htflow[mlip])

    return [(model.graph_converter(s.structure, graph_id=s.key),
             {"e": torch.tensor(s.energy_per_atom, dtype=torch.float32),
              "f": torch.zeros((len(s.structure), 3), dtype=torch.float32)}) for s in samples]


def _loader(graphs: list[tuple[Any, dict]], batch_size: int, shuffle: bool) -> Any:
    from chgnet.data.dataset import collate_graphs  # heavy: optional (htflow[mlip])
    from torch.utils.data import DataLoader  # heavy: optional (htflow[mlip])

    return DataLoader(graphs, batch_size=batch_size, collate_fn=collate_graphs, shuffle=shuffle)


def _freeze(model: Any) -> int:
    """Freeze the layers of :data:`FROZEN`; the number of parameters left to train."""
    for name, param in model.named_parameters():
        if name.startswith(FROZEN):
            param.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _train(model: Any, train: list[Sample], val: list[Sample], settings: FinetuneSettings,
           work: Path) -> tuple[Any, dict]:
    """CHGNet's trainer on ``train``; the epoch with the lowest validation energy error, and the history."""
    import torch  # heavy: optional (htflow[mlip])
    from chgnet.model import CHGNet  # heavy: optional (htflow[mlip])
    from chgnet.trainer import Trainer  # heavy: optional (htflow[mlip])

    trainer = Trainer(model=model, targets=settings.targets, optimizer="Adam", scheduler="CosLR",
                      criterion="MSE",
                      epochs=settings.epochs, learning_rate=settings.learning_rate, use_device="cpu",
                      print_freq=10**9, torch_seed=settings.seed, data_seed=settings.seed)
    trainer.train(_loader(_graphs(model, train), settings.batch_size, True),
                  _loader(_graphs(model, val), settings.batch_size, False),
                  save_dir=str(work), train_composition_model=False)
    best = next(work.glob("bestE_*.pth.tar"))
    state = torch.load(best, map_location="cpu", weights_only=False)
    history = {k: {"train": [float(v) for v in h["train"]], "val": [float(v) for v in h["val"]]}
               for k, h in trainer.training_history.items()}
    return CHGNet.from_dict(state["model"]), history


def finetune_chgnet(samples: list[Sample], out_dir: str | Path,
                    settings: FinetuneSettings = FinetuneSettings()) -> dict:
    """Fine-tune CHGNet on ``samples``; writes :data:`CHECKPOINT` and :data:`METRICS` (and the trainer's
    log, :data:`LOG`) in ``out_dir`` and returns the metrics (see the module's docstring)."""
    pin_torch()
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # written beside the files they replace and moved into place once all is done: an interrupted or
    # failed fine-tune leaves the previous checkpoint, metrics and log as they were (and its own log
    # as train.log.partial)
    partial = out / f"{LOG}.partial"
    with partial.open("w") as log, contextlib.redirect_stdout(log), warnings.catch_warnings():
        # CHGNet prints as it goes, and warns of its own volume tensor on every prediction
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
        metrics = _finetune(samples, out, settings)
    metrics["seconds"] = time.perf_counter() - start
    import torch  # heavy: optional (htflow[mlip])

    best = metrics.pop("model")
    ckpt, table = out / f"{CHECKPOINT}.partial", out / f"{METRICS}.partial"
    torch.save({"model": best.as_dict(), "htflow": {k: v for k, v in metrics.items() if k != "history"}},
               ckpt)
    table.write_text(json.dumps(metrics, indent=1))
    for path, name in ((ckpt, CHECKPOINT), (table, METRICS), (partial, LOG)):
        os.replace(path, out / name)
    return metrics


def _finetune(samples: list[Sample], out: Path, settings: FinetuneSettings) -> dict:
    from chgnet.model import CHGNet  # heavy: optional (htflow[mlip])

    train, val = split(samples, settings.val_fraction, settings.seed)
    model = CHGNet.load(model_name=settings.base, use_device="cpu", verbose=False)
    y_train = np.array([s.energy_per_atom for s in train])
    y_val = np.array([s.energy_per_atom for s in val])
    before = predict_energies(model, [s.structure for s in val])
    shift = refit_references(model, [s.structure for s in train],
                             y_train - predict_energies(model, [s.structure for s in train]))
    shifted = predict_energies(model, [s.structure for s in val])
    trainable = _freeze(model) if settings.freeze else sum(p.numel() for p in model.parameters())
    work = Path(tempfile.mkdtemp(prefix="chgnet-", dir=out))
    try:
        best, history = _train(model, train, val, settings, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = predict_energies(best, [s.structure for s in val])
    metrics = {
        "base": settings.base, "settings": asdict(settings),
        "n_train": len(train), "n_val": len(val), "trainable_parameters": trainable,
        "train_keys": [s.key for s in train], "val_keys": [s.key for s in val],
        "val_mae_ev_per_atom": {"before": mae(before, y_val), "shifted": mae(shifted, y_val),
                                "after": mae(after, y_val)},
        "best_epoch": int(np.argmin(history["e"]["val"])) + 1, "history": history,
        "reference_shift_ev": {str(z + 1): float(v) for z, v in enumerate(shift) if v},
        "checkpoint": str(out / CHECKPOINT), "model": best,
    }
    return metrics


def load_checkpoint(path: str | Path) -> Any:
    """A fine-tuned CHGNet from its checkpoint (CHGNet's own format)."""
    from chgnet.model import CHGNet  # heavy: optional (htflow[mlip])

    return CHGNet.from_file(str(path))


def samples_from_results(results: list[dict]) -> tuple[list[Sample], int]:
    """The training samples of result documents: done, converged where it is known, with a structure
    and an energy; and how many results were left out."""
    out = []
    for r in results:
        e, s = r.get("energy_per_atom"), r.get("structure")
        if r.get("status") != "done" or e is None or not s or r.get("converged") is False:
            continue
        if not math.isfinite(float(e)):
            continue
        out.append(Sample(r["key"], Structure.from_dict(s), float(e)))
    return out, len(results) - len(out)
