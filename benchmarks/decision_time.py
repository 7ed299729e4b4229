"""Decision time: one round of the surrogate sampler (fit, k-fold CV, acquisition, batch) against the
number of results, on one thread.

The results and candidates are compositions of 20 elements (up to five per composition, Dirichlet
fractions); the objective is a regular-solution energy with random pair terms plus noise, so the
model has something to learn. Each configuration is timed once per size in a fresh process state
(the planner is what a campaign calls: :class:`htflow.search.planner.Planner`); a size is skipped
once the previous one took longer than ``--give-up`` seconds.

    python benchmarks/decision_time.py [--sizes 100,300,1000,3000,10000] [--candidates 10000]
                                       [--out docs/decision-time-latest.md]
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

#: label -> search.surrogate overrides
CONFIGS = {
    "default (gp-plain, 5-fold CV, believer)": {},
    "default without CV": {"cv_folds": 0},
    "anisotropic gp (the old default)": {"model": "gp"},
    "forest, 5-fold CV": {"model": "forest"},
}


def compositions(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    X = np.zeros((n, d))
    for i in range(n):
        k = rng.integers(2, 6)
        cols = rng.choice(d, k, replace=False)
        X[i, cols] = rng.dirichlet(np.ones(k))
    return X


def objective(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = X.shape[1]
    W = rng.normal(0, 0.1, (d, d))
    W = (W + W.T) / 2
    return np.einsum("ni,ij,nj->n", X, W, X) + X @ rng.normal(0, 0.05, d) + rng.normal(0, 0.005, len(X))


def main(argv: list[str] | None = None) -> int:
    from htflow.search.planner import Planner, surrogate_settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,300,1000,3000,10000")
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--elements", type=int, default=20)
    ap.add_argument("--give-up", type=float, default=120.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    elements = [f"E{i}" for i in range(args.elements)]
    rng = np.random.default_rng(0)
    cands = compositions(args.candidates, args.elements, rng)
    lines = ["| model | " + " | ".join(f"n = {n}" for n in sizes) + " |",
             "| --- |" + " --- |" * len(sizes)]
    for label, overrides in CONFIGS.items():
        planner = Planner(surrogate_settings(**overrides), elements)
        cells, slow = [], False
        for n in sizes:
            if slow:
                cells.append("skipped")
                continue
            X = compositions(n, args.elements, np.random.default_rng(n))
            y = objective(np.vstack([X]), np.random.default_rng(1))
            t0 = time.perf_counter()
            planner.select(X, y, cands, 4, seed=0, rnd=2)
            dt = time.perf_counter() - t0
            cells.append(f"{dt:.2f} s")
            print(f"{label}: n={n}: {dt:.2f} s", flush=True)
            slow = dt > args.give_up
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join([f"Decision time per round, {args.elements} elements, {args.candidates} candidates, "
                      "batch 4, one thread (`python benchmarks/decision_time.py`):", "", *lines])
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
