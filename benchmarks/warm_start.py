"""Warm start: evaluations to a pool's best with and without a prior data set of another fidelity.

The prior stands for a database computed at another level of theory: the pool's true values
(EMT, from the bundled table) shifted by +0.05 eV/atom and blurred by Gaussian noise (sd 0.02
eV/atom), for a random quarter of the pool's compositions, at most 300 (the GP's fit grows with
the cube of its training set: a 1,000-row prior made each round take seconds). The campaign
(the default surrogate search, batch 4 after 8 initial points) must still compute the best
composition itself. Replayed through the same code a campaign runs
(:func:`htflow.campaign.replay.replay`), 10 seeds per pool; the prior's sample and noise change
with the seed.

Usage::

    python benchmarks/warm_start.py [--seeds 10] [--out docs/warm-start-latest.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from htflow.campaign.replay import pool_values, replay
from htflow.campaign.validation import parse_config
from htflow.search.registry import get_generator

POOLS = {  # name: (elements, step)
    "emt Cu-Ni-Pd-Au, 1/8 grid": (["Cu", "Ni", "Pd", "Au"], 0.125),
    "emt Al-Cu-Ni-Pd-Ag, 1/16 grid": (["Al", "Cu", "Ni", "Pd", "Ag"], 0.0625),
    "emt 7 metals, 1/16 grid": (["Al", "Cu", "Ni", "Pd", "Ag", "Au", "Pt"], 0.0625),
}
SHIFT, NOISE, SHARE, MAX_PRIOR = 0.05, 0.02, 0.25, 300


def config(elements: list[str], step: float, seed: int):
    return parse_config({
        "name": "warm", "space": {"elements": elements, "step": step, "max_elements": 3},
        "structure": {"prototype": "fcc", "n_atoms": 32},
        "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
        "search": {"sampler": "surrogate", "batch_size": 4, "budget": 400, "seed": seed,
                   "surrogate": {"initial": 8}},
        "store": "memory://"})


def prior_rows(values: dict[str, float], seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, 77])
    keys = sorted(values)
    chosen = rng.choice(len(keys), size=max(1, min(MAX_PRIOR, int(SHARE * len(keys)))), replace=False)
    rows = []
    for i in sorted(chosen):
        key = keys[i]
        comp = _fractions(key)
        rows.append({"key": key, "composition": comp, "value": values[key] + SHIFT + rng.normal(0, NOISE),
                     "std": 0.0, "n": 1, "source": "database"})
    return rows


def _fractions(key: str) -> dict[str, float]:
    from pymatgen.core import Composition

    return {str(el): amt for el, amt in Composition(key).fractional_composition.items()}


def run_pool(elements: list[str], step: float, seeds: int, progress: Progress) -> dict:
    values = pool_values(config(elements, step, 0), "emt-fcc7")
    best = min(values, key=values.get)
    ranked = sorted(values, key=values.get)
    top = set(ranked[:max(1, len(ranked) // 100)])
    out: dict[str, list] = {"without": [], "with": [], "top_without": [], "top_with": [], "seconds": []}
    task = progress.add_task(f"{len(values)} compositions", total=2 * seeds)
    for seed in range(seeds):
        cfg = config(elements, step, seed)
        for label, prior in (("without", None), ("with", prior_rows(values, seed))):
            t0 = time.perf_counter()
            trace = replay(cfg, get_generator("surrogate", cfg.search.surrogate), values, 400,
                           stop=lambda t: best in t.keys, prior=prior)
            out[label].append(trace.evaluations_to({best}, 4) or 400)
            out[f"top_{label}"].append(trace.evaluations_to(top, 4) or 400)
            out["seconds"].append(time.perf_counter() - t0)
            progress.advance(task)
    out["n"] = len(values)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    with Progress() as progress:
        for name, (els, step) in POOLS.items():
            rows.append((name, run_pool(els, step, args.seeds, progress)))
    lines = ["# Warm start (`benchmarks/warm_start.py`)", "",
             f"Command: `python benchmarks/warm_start.py --seeds {args.seeds}`; {platform.machine()}, "
             f"{os.cpu_count()} cores. Prior: {SHARE:.0%} of the pool (at most {MAX_PRIOR}), values "
             f"+ {SHIFT} eV/atom, noise sd {NOISE} eV/atom. Evaluations until the campaign computes the "
             "pool's best (and any of its top 1%): median [min-max] over seeds, batch 4 after 8 "
             "initial points.", "",
             "| pool | compositions | to best, no prior | to best, with prior | to top 1%, no prior | "
             "to top 1%, with prior | s per replay |", "|---|---|---|---|---|---|---|"]

    def cell(v: list[int]) -> str:
        return f"{statistics.median(v):g} [{min(v)}-{max(v)}]"

    for name, r in rows:
        lines.append(f"| {name} | {r['n']} | {cell(r['without'])} | {cell(r['with'])} | "
                     f"{cell(r['top_without'])} | {cell(r['top_with'])} | "
                     f"{statistics.mean(r['seconds']):.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
