"""Machine-learned potentials: cost per structure, and htflow's CHGNet path against the package's.

For scale (one thread, 32-atom fcc Cu-Ni cell, rattled): single point and full relaxation
(FIRE + Fréchet cell filter, fmax 0.05 eV/Å) with EMT, CHGNet (the package's calculator and
htflow's) and SevenNet-0. Then structures per second of energy + forces + stress for 32- and
108-atom cells: CHGNet's own ``predict_structure`` one by one against :func:`htflow.calculators.batch.predict`
at several batch sizes, and the largest deviation between them. Last, whole relaxations per
second: one by one (atomate2's relaxer, as campaigns run them) against :func:`htflow.calculators.batch.relax`
(lockstep FIRE, forces for a batch per model call; ``calculator.options.batch_size``).

    python benchmarks/mlip.py --out docs/mlip-latest.md [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np


def alloy(rep: int, seed: int):
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((rep, rep, rep))
    ni = rng.choice(len(atoms), len(atoms) // 2, replace=False)
    symbols = atoms.get_chemical_symbols()
    for i in ni:
        symbols[i] = "Ni"
    atoms.set_chemical_symbols(symbols)
    atoms.rattle(0.05, seed=seed)
    return atoms


def timed(fn, repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def per_structure(calcs: dict, out: list[str]) -> None:
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    out += ["| calculator | single point (ms) | relaxation (s) | FIRE steps |", "| --- | --- | --- | --- |"]
    for label, calc in calcs.items():
        a = alloy(2, 0)
        a.calc = calc
        a.get_potential_energy()  # warm up

        def single(a=a):
            a.calc.results.clear()
            a.calc.atoms = None
            a.get_potential_energy()
            a.get_forces()

        sp = timed(single, 5)
        b = alloy(2, 0)
        b.calc = calc
        opt = FIRE(FrechetCellFilter(b), logfile=None)
        t = timed(lambda opt=opt: opt.run(fmax=0.05, steps=500))
        out.append(f"| {label} | {sp * 1000:.0f} | {t:.1f} | {opt.nsteps} |")
        print(out[-1], flush=True)


def batched(model, sizes: list[int], n: int, out: list[str]) -> None:
    from pymatgen.io.ase import AseAtomsAdaptor

    from htflow.calculators.batch import predict

    out += ["", "| cell | CHGNet predict_structure, one by one (structures/s) | "
            + " | ".join(f"htflow batch {b}" for b in sizes) + " | max dE (eV/atom) | max dF (eV/Å) |",
            "| --- | --- |" + " --- |" * (len(sizes) + 2)]
    for rep in (2, 3):
        structures = [AseAtomsAdaptor.get_structure(alloy(rep, s)) for s in range(n)]
        model.predict_structure(structures[:1])
        ref: list = []
        one = n / timed(lambda s=structures, ref=ref: ref.extend(model.predict_structure(x) for x in s))
        cells = []
        got: list = []
        for b in sizes:
            got = []
            rate = n / timed(lambda b=b, s=structures, got=got: got.extend(predict(model, s, b)))
            cells.append(f"{rate:.2f} ({rate / one:.2f}x)")
        de = max(abs(float(r["e"]) - g["e"]) for r, g in zip(ref, got, strict=True))
        df = max(float(np.abs(np.asarray(r["f"]) - g["f"]).max()) for r, g in zip(ref, got, strict=True))
        out.append(f"| {len(structures[0])} atoms | {one:.2f} | " + " | ".join(cells)
                   + f" | {de:.1e} | {df:.1e} |")
        print(out[-1], flush=True)


def relaxations(model, device: str, sizes: list[int], n: int, out: list[str]) -> None:
    """Relaxations per second: n rattled 32-atom cells one by one (atomate2's relaxer with htflow's
    CHGNet calculator, as a campaign runs them) against htflow.calculators.batch.relax in lockstep."""
    from atomate2.ase.utils import AseRelaxer
    from pymatgen.io.ase import AseAtomsAdaptor

    from htflow.calculators import mlip
    from htflow.calculators.batch import relax

    structures = [AseAtomsAdaptor.get_structure(alloy(2, s)) for s in range(n)]
    calc = mlip.calculator("chgnet", device=device)
    one_e: list = []

    def one_by_one() -> None:
        for s in structures:
            r = AseRelaxer(calc, relax_cell=True).relax(AseAtomsAdaptor.get_atoms(s), fmax=0.05, steps=500)
            one_e.append(r.final_mol_or_struct.volume)

    one = n / timed(one_by_one)
    cells = []
    for b in sizes:
        got: list = []
        rate = n / timed(lambda b=b, got=got: got.extend(relax(model, structures, b, 0.05, 500)))
        dv = max(abs(g["structure"].volume - v) for g, v in zip(got, one_e, strict=True))
        cells.append(f"{rate:.3f} ({rate / one:.2f}x, max dV {dv:.0e} Å³)")
    head = f"| relaxations of {n} rattled 32-atom cells (FIRE, fmax 0.05) | one by one (relaxations/s) | "
    out += ["", head + " | ".join(f"lockstep, batch {b}" for b in sizes) + " |",
            "| --- | --- |" + " --- |" * len(sizes),
            f"| CHGNet 0.3.0 (htflow) | {one:.3f} | " + " | ".join(cells) + " |"]
    print(out[-1], flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--structures", type=int, default=16)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--relaxations", type=int, default=8, help="cells relaxed one by one and in lockstep")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import torch
    from ase.calculators.emt import EMT
    from chgnet.model.dynamics import CHGNetCalculator

    from htflow.calculators import mlip

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model = mlip.load_model("chgnet", device=args.device)
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}; "
             f"chgnet {mlip.version('chgnet')}, sevenn {mlip.version('sevennet')}.", ""]
    calcs = {"EMT (ASE)": EMT(),
             "CHGNet 0.3.0 (package calculator)": CHGNetCalculator(model=model, use_device=args.device),
             "CHGNet 0.3.0 (htflow)": mlip.calculator("chgnet", device=args.device),
             "SevenNet-0": mlip.calculator("sevennet", device=args.device)}
    per_structure(calcs, lines)
    batched(model, args.batch, args.structures, lines)
    relaxations(model, args.device, args.batch, args.relaxations, lines)
    text = "\n".join(lines)
    if args.out:
        args.out.write_text("# ML potentials (latest run)\n\n"
                            f"`python benchmarks/mlip.py --device {args.device}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
