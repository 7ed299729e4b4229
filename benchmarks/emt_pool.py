"""Compute a ground-truth pool: every grid point of a campaign file, evaluated.

Runs htflow's own evaluation flow (the calculator's relaxation, then the
properties job) for every composition of the campaign's grid, in parallel
worker processes (one thread each), and writes one CSV row per composition:
key, formula, element counts, energy per atom, formation energy per atom,
volume per atom. Campaigns replay the file through the ``lookup`` calculator.

    python benchmarks/emt_pool.py benchmarks/pools/emt-fcc7.yaml \
        --out htflow/data/emt-fcc7.csv --workers 2
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

_STATE: dict = {}


def _init(path: str) -> None:
    from htflow.calculators.flows import EvaluationMaker
    from htflow.calculators.registry import get_calculator
    from htflow.campaign.validation import load_config
    from htflow.space.structures import StructureBuilder

    cfg = load_config(path)
    _STATE["builder"] = StructureBuilder(cfg.structure.prototype, cfg.structure.n_atoms,
                                         cfg.structure.lattice_constant)
    relax = get_calculator(cfg.calculator.name).relax_maker(cfg.calculator)
    _STATE["maker"] = EvaluationMaker(relax_maker=relax)


def _evaluate(fractions: dict[str, float]) -> tuple[dict, dict | None, str | None, float]:
    from jobflow import JobStore
    from maggma.stores import MemoryStore

    from htflow.execution.base import EvalTask
    from htflow.execution.local import LocalExecutor

    structure = _STATE["builder"].build(fractions)
    store = JobStore(MemoryStore())
    store.connect()
    (outcome,) = LocalExecutor().run([EvalTask("x", _STATE["maker"].make(structure))], store)
    counts = _STATE["builder"].realise(fractions)
    return counts, outcome.output, outcome.error, outcome.seconds


def main(argv: list[str] | None = None) -> int:
    from rich.progress import Progress

    from htflow.calculators.flows import formation_energy
    from htflow.campaign.validation import check, load_config
    from htflow.space.build import build_space
    from htflow.space.compositions import composition_key

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("campaign", help="campaign file whose grid is the pool")
    ap.add_argument("--out", required=True, help="CSV file to write")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int, default=None, help="only the first N grid points (timing)")
    args = ap.parse_args(argv)

    cfg = load_config(args.campaign)
    check(cfg)
    space = build_space(cfg.space)
    pool = space.pool()[: args.limit]
    rows, failed = [], []
    start = time.perf_counter()
    ex = ProcessPoolExecutor(args.workers, initializer=_init, initargs=(args.campaign,))
    with ex, Progress() as bar:
        task = bar.add_task("EMT ground truth", total=len(pool))
        futures = [ex.submit(_evaluate, p) for p in pool]
        for fut in as_completed(futures):
            counts, out, err, seconds = fut.result()
            bar.advance(task)
            if out is None:
                failed.append((composition_key(counts), err))
                continue
            rows.append({"key": composition_key(counts), "counts": counts, "out": out, "seconds": seconds})
    wall = time.perf_counter() - start
    refs = {next(iter(r["counts"])): r["out"]["energy_per_atom"] for r in rows if len(r["counts"]) == 1}
    elements = space.elements
    rows.sort(key=lambda r: r["key"])
    with open(args.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", *elements, "energy_per_atom", "formation_energy_per_atom", "volume_per_atom",
                    "density", "n_steps", "seconds"])
        for r in rows:
            o = r["out"]
            ef = ""
            if set(r["counts"]) <= set(refs):
                ef = formation_energy(o["energy_per_atom"], r["counts"], refs)
            w.writerow([r["key"], *(r["counts"].get(el, 0) for el in elements), f"{o['energy_per_atom']:.8f}",
                        ef if ef == "" else f"{ef:.8f}", f"{o['volume_per_atom']:.6f}", f"{o['density']:.6f}",
                        o.get("n_steps"), f"{r['seconds']:.3f}"])
    cpu = sum(r["seconds"] for r in rows)
    print(f"{len(rows)} compositions, {len(failed)} failed, wall {wall:.0f} s, "
          f"{cpu / max(len(rows), 1):.2f} s per evaluation, {args.workers} workers -> {args.out}")
    for key, err in failed:
        print(f"failed: {key}: {err}", file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
