"""CHGNet against a high fidelity (EMT standing in for DFT) before and after fine-tuning on 50 / 100 /
200 of its results, on compositions held out; and the time per fine-tune on the CPU.

The data: random compositions of up to four of Al, Cu, Ni, Pd, Ag, Pt, Au on a 16-atom fcc cell
(whole atoms), each relaxed with EMT (positions and cell, FIRE, fmax 0.05 eV/Å), the same relaxation
a campaign runs. A fixed set of ``--held-out`` compositions is never trained or validated on; the
training sets are nested (the 50 are in the 100, the 100 in the 200). Each fine-tune is
``htflow finetune``'s (:func:`htflow.calculators.finetune.finetune_chgnet`, its default settings,
a fifth of the training results kept to choose the epoch).

Errors are the MAE of the energy per atom (meV/atom) on EMT's relaxed held-out structures: CHGNet
as shipped (``before``; EMT's energy zero differs by eV per element), with its element references
refitted on the same training results (``shifted``: the fair baseline, the cheapest correction),
and fine-tuned (``after``). Also the MAE of the mixing energy (the energy less the composition's
mix of the pure elements' energies, each model's own), which is what formation energies screen.

Usage::

    python benchmarks/finetune.py [--sizes 50,100,200] [--held-out 100] [--epochs 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

ELEMENTS = ["Al", "Cu", "Ni", "Pd", "Ag", "Pt", "Au"]
N_ATOMS = 16


def compositions(n: int, seed: int) -> list[dict[str, int]]:
    """``n`` distinct compositions of 1-4 elements in whole atoms of 16 (pure elements first)."""
    rng = np.random.default_rng(seed)
    out, seen = [{el: N_ATOMS} for el in ELEMENTS], set()
    seen.update(tuple(sorted(c.items())) for c in out)
    while len(out) < n:
        k = int(rng.integers(2, 5))
        els = rng.choice(ELEMENTS, size=k, replace=False)
        cuts = np.sort(rng.choice(np.arange(1, N_ATOMS), size=k - 1, replace=False))
        counts = np.diff(np.r_[0, cuts, N_ATOMS])
        comp = {str(e): int(c) for e, c in zip(els, counts, strict=True)}
        key = tuple(sorted(comp.items()))
        if key not in seen:
            seen.add(key)
            out.append(comp)
    return out


def relaxed(comps: list[dict[str, int]]) -> list:
    """EMT-relaxed structures (pymatgen) and energies per atom, as a campaign computes them."""
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    from htflow.space.structures import StructureBuilder

    builder = StructureBuilder("fcc", N_ATOMS)
    out = []
    for comp in comps:
        atoms = AseAtomsAdaptor.get_atoms(builder.build({k: v / N_ATOMS for k, v in comp.items()}))
        atoms.calc = EMT()
        FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=0.05, steps=500)
        energy = atoms.get_potential_energy() / len(atoms)
        atoms.calc = None
        out.append((AseAtomsAdaptor.get_structure(atoms), energy))
    return out


def mixing(e: np.ndarray, structures: list, pure: dict[str, float]) -> np.ndarray:
    """Energy per atom less the composition's mix of the pure elements' energies."""
    return np.array([ei - sum(amt / len(s) * pure[str(el)] for el, amt in s.composition.items())
                     for ei, s in zip(e, structures, strict=True)])


def main(argv: list[str] | None = None) -> int:
    from chgnet.model import CHGNet

    from htflow.calculators.finetune import (
        FinetuneSettings,
        Sample,
        finetune_chgnet,
        mae,
        predict_energies,
        refit_references,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="50,100,200")
    ap.add_argument("--held-out", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=FinetuneSettings.epochs)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    t0 = time.perf_counter()
    comps = compositions(max(sizes) + args.held_out, args.seed)
    data = relaxed(comps)
    print(f"EMT relaxations of {len(data)} compositions: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    pure = {next(iter(c)): e for c, (_, e) in zip(comps[:len(ELEMENTS)], data[:len(ELEMENTS)], strict=True)}
    rest = np.random.default_rng(args.seed + 1).permutation(np.arange(len(ELEMENTS), len(data)))
    held = [int(i) for i in rest[:args.held_out]]
    # the pure elements are always trained on
    pool = list(range(len(ELEMENTS))) + [int(i) for i in rest[args.held_out:]]
    hs = [data[i][0] for i in held]
    hy = np.array([data[i][1] for i in held])
    hmix = mixing(hy, hs, pure)
    print(f"MAE in meV/atom on {len(held)} held-out compositions; time on one CPU thread\n")
    print("| training results | time per fine-tune (s) | before | shifted | after | mixing: shifted | "
          "mixing: after |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        idx = pool[:n]
        samples = [Sample(f"c{i}", data[i][0], data[i][1]) for i in idx]
        with tempfile.TemporaryDirectory() as tmp:
            m = finetune_chgnet(samples, tmp, FinetuneSettings(epochs=args.epochs, seed=args.seed))
            tuned = CHGNet.from_file(m["checkpoint"])
        base = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
        before = predict_energies(base, hs)
        ts = [data[i][0] for i in m_train(m, idx)]
        ty = np.array([data[i][1] for i in m_train(m, idx)])
        refit_references(base, ts, ty - predict_energies(base, ts))
        shifted = predict_energies(base, hs)
        after = predict_energies(tuned, hs)
        pure_structs = [data[i][0] for i in range(len(ELEMENTS))]
        own = {}
        for name, model in (("shifted", base), ("after", tuned)):
            e = predict_energies(model, pure_structs)
            own[name] = {el: float(v) for el, v in zip(ELEMENTS, e, strict=True)}
        mix_s = mae(mixing(shifted, hs, own["shifted"]), hmix)
        mix_a = mae(mixing(after, hs, own["after"]), hmix)
        print(f"| {n} | {m['seconds']:.0f} | {1000 * mae(before, hy):.0f} | {1000 * mae(shifted, hy):.1f} | "
              f"{1000 * mae(after, hy):.1f} | {1000 * mix_s:.1f} | {1000 * mix_a:.1f} |", flush=True)
    return 0


def m_train(m: dict, idx: list[int]) -> list[int]:
    """The indices of a fine-tune's training (not validation) samples."""
    keep = set(m["train_keys"])
    return [i for i in idx if f"c{i}" in keep]


if __name__ == "__main__":
    raise SystemExit(main())
