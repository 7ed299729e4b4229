"""Decision time: one round of the surrogate sampler (fit, k-fold CV, acquisition, batch) against the
number of results, on one thread.

The results and candidates are compositions of 20 elements (up to five per composition, Dirichlet
fractions); the objective is a regular-solution energy with random pair terms plus noise, so the
model has something to learn. Each configuration is timed once per size in a fresh process state
(the planner is what a campaign calls: :class:`htflow.search.planner.Planner`); a size is skipped
once the previous one took longer than ``--give-up`` seconds.

    python benchmarks/decision_time.py [--sizes 100,300,1000,3000,10000:100000] [--candidates 10000]
                                       [--configs ...] [--out docs/decision-time-latest.md]
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

#: label -> search.surrogate overrides
CONFIGS = {
    "default (gp-plain, 5-fold CV, believer)": {},
    "exact GP at every size (no inducing points)": {},
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


def _exact_everywhere(on: bool) -> None:
    """The GP exact at every size (the inducing points switched off), for comparison."""
    import htflow.search.sparse as sparse
    import htflow.search.surrogates as surrogates

    surrogates.MAX_EXACT = 10**9 if on else sparse.MAX_EXACT


def main(argv: list[str] | None = None) -> int:
    from htflow.search.planner import Planner, surrogate_settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,300,1000,3000,10000:100000",
                    help="results per round, each optionally :candidates (default: --candidates)")
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--elements", type=int, default=20)
    ap.add_argument("--configs", default=";".join(CONFIGS),
                    help=f"separated by ';', of: {'; '.join(CONFIGS)}")
    ap.add_argument("--give-up", type=float, default=120.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    parts = (s.partition(":") for s in args.sizes.split(","))
    sizes = [(int(a), int(b or args.candidates)) for a, _, b in parts]
    elements = [f"E{i}" for i in range(args.elements)]
    pools = {k: compositions(k, args.elements, np.random.default_rng(0)) for k in {c for _, c in sizes}}
    test = compositions(2000, args.elements, np.random.default_rng(99))
    y_test = objective(test, np.random.default_rng(1))
    warm = compositions(100, args.elements, np.random.default_rng(5))  # imports and first calls, untimed
    Planner(surrogate_settings(), elements).select(warm, objective(warm, np.random.default_rng(1)), warm, 4,
                                                   seed=0, rnd=1)
    head = " | ".join(f"n = {n}, {c:,} candidates" for n, c in sizes)
    lines = [f"| model | {head} |", "| --- |" + " --- |" * len(sizes)]
    for label in [c.strip() for c in args.configs.split(";")]:
        _exact_everywhere(label.startswith("exact GP"))
        planner = Planner(surrogate_settings(**CONFIGS[label]), elements)
        cells, slow = [], False
        for n, c in sizes:
            if slow or (label.startswith("exact GP") and n > 3000):  # 10,000 x 100,000 floats: 8 GB
                cells.append("skipped")
                continue
            X = compositions(n, args.elements, np.random.default_rng(n))
            y = objective(np.vstack([X]), np.random.default_rng(1))
            t0 = time.perf_counter()
            sel = planner.select(X, y, pools[c], 4, seed=0, rnd=2)
            dt = time.perf_counter() - t0
            tracemalloc.start()  # a second, untimed round for the memory: tracing slows small allocations
            planner.select(X, y, pools[c], 4, seed=0, rnd=2)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            mae = float(np.mean(np.abs(sel.model.predict(test)[0] - y_test)))
            cells.append(f"{dt:.2f} s, {peak:.0f} MB, MAE {1000 * mae:.1f}")
            print(f"{label}: n={n}, {c} candidates: {cells[-1]}", flush=True)
            slow = dt > args.give_up
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    _exact_everywhere(False)
    text = "\n".join([f"Decision time per round (fit, CV, acquisition, believer batch of 4), {args.elements} "
                      "elements, one thread; peak memory of the round's arrays (tracemalloc); MAE (x 1000) "
                      "of the round's model on 2,000 held-out compositions "
                      f"(`python benchmarks/decision_time.py --sizes {args.sizes}`):", "", *lines])
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
