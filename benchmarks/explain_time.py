"""Time of a round's explanation (Shapley values per element and pair, partial dependence) as the
campaign grows, and the exact enumeration against the ``shap`` package's Exact explainer.

The model is the default surrogate (``gp-plain``) fitted on n random compositions of ``--elements``
elements with a synthetic objective; the explanation is the one every model round stores
(:func:`htflow.search.explain.explain`, its default sizes). One thread.

Usage::

    python benchmarks/explain_time.py [--sizes 100,300,1000,3000] [--elements 7,20] [--compare-shap]
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np


def synthetic(X: np.ndarray) -> np.ndarray:
    return 3 * X[:, 0] - 2 * X[:, 1] + 4 * X[:, 0] * X[:, 1] + np.sin(5 * X[:, 2])


def main(argv: list[str] | None = None) -> int:
    from htflow.search.explain import _set_values, explain, shapley
    from htflow.search.surrogates import get_surrogate

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,300,1000,3000")
    ap.add_argument("--elements", default="7,20")
    ap.add_argument("--compare-shap", action="store_true",
                    help="also time shap's Exact explainer: 100 points against 25, 1,000 results, 7 elements")
    args = ap.parse_args(argv)
    print("| elements | results | explained x background | players | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for d in (int(v) for v in args.elements.split(",")):
        for n in (int(v) for v in args.sizes.split(",")):
            rng = np.random.default_rng(0)
            X = rng.dirichlet(np.ones(d), n)
            model = get_surrogate("gp-plain").fit(X, synthetic(X))
            t0 = time.perf_counter()
            ex = explain(model, lambda Z: Z, X, [f"E{i}" for i in range(d)], seed=0)
            print(f"| {d} | {n} | {ex['points']} x {ex['background']} | {len(ex['shap']['players'])} | "
                  f"{time.perf_counter() - t0:.2f} |", flush=True)
    if args.compare_shap:
        import shap

        rng = np.random.default_rng(0)
        X = rng.dirichlet(np.ones(7), 1000)
        model = get_surrogate("gp-plain").fit(X, synthetic(X))
        B, E = X[rng.choice(1000, 25, replace=False)], X[rng.choice(1000, 100, replace=False)]
        t0 = time.perf_counter()
        phi, _ = shapley(_set_values(model.mean, E, B, [np.array([j]) for j in range(7)]), 7)
        mine = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = shap.explainers.Exact(model.mean, shap.maskers.Independent(B, max_samples=25))(E).values
        theirs = time.perf_counter() - t0
        diff = np.abs(ref - phi).max()
        print(f"\n100 points against 25, GP on 1,000 results, 7 elements: htflow {mine:.1f} s, "
              f"shap {shap.__version__} Exact {theirs:.1f} s, largest difference {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
