"""Multi-objective benchmark: how much of the true Pareto front each search finds.

Ground truth: the bundled EMT pool (htflow/data/emt-fcc7.csv), restricted to the
Al-Cu-Ni-Pd-Ag binaries and ternaries on the 1/16 grid (1,205 compositions,
32-atom fcc cells), with two objectives: formation energy per atom (minimise)
and density (minimise: light and stable). Campaigns replay it through the
``lookup`` calculator, with the same generator code a real campaign runs.

For each strategy and seed it records the share of the true front found
after every evaluation, and prints the median share at 5, 10, 15 and 20% of
the pool and how many seeds reach 90% of the front within 20% of the pool.

    python benchmarks/pareto_front.py --seeds 10 --out docs/pareto-front-latest.md
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.resources import files
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

ELEMENTS = ["Al", "Cu", "Ni", "Pd", "Ag"]
OBJECTIVES = [("formation_energy_per_atom", "minimize"), ("density", "minimize")]
#: label -> (sampler, multi-objective method of the surrogate sampler)
STRATEGIES = {"htflow surrogate (EHVI, BoTorch)": ("surrogate", "ehvi"),
              "htflow surrogate (ParEGO)": ("surrogate", "parego"),
              "genetic algorithm": ("ga", None), "random": ("random", None)}


def truth() -> tuple[list[str], set[str]]:
    from htflow.analysis.pareto import pareto_mask

    rows = list(csv.DictReader((files("htflow") / "data" / "emt-fcc7.csv").read_text().splitlines()))
    other = {"Au", "Pt"}
    pool = [r for r in rows
            if not any(int(r[e]) for e in other) and sum(int(r[e]) > 0 for e in ELEMENTS) <= 3]
    y = np.array([[float(r[name]) for name, _ in OBJECTIVES] for r in pool])
    front = pareto_mask(y, [g for _, g in OBJECTIVES])
    return [r["key"] for r in pool], {r["key"] for r, on in zip(pool, front, strict=True) if on}


def run_one(args: tuple[str, int, int, int]) -> tuple[str, int, list[str], float]:
    label, seed, budget, batch = args
    sampler, method = STRATEGIES[label]
    from htflow.campaign.loop import Campaign
    from htflow.campaign.validation import parse_config

    cfg = {
        "name": f"pf-{sampler}-{method or ''}-{seed}",
        "space": {"elements": ELEMENTS, "step": 0.0625, "max_elements": 3},
        "structure": {"prototype": "fcc", "n_atoms": 32},
        "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
        "objectives": [{"name": n, "goal": g} for n, g in OBJECTIVES],
        "search": {"sampler": sampler, "batch_size": batch, "budget": budget, "seed": seed,
                   **({"surrogate": {"multi_objective": method}} if method else {})},
        "store": "memory://",
    }
    t0 = time.perf_counter()
    camp = Campaign(parse_config(cfg, "benchmark"))
    camp.run()
    order = sorted(camp.results(properties=["key", "round", "created_at"]),
                   key=lambda r: (r["round"], str(r["created_at"])))
    return label, seed, [r["key"] for r in order], time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--share", type=float, default=0.2, help="budget as a share of the pool")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--plot", type=Path, default=Path("docs/pareto-front.png"))
    args = ap.parse_args(argv)

    pool, front = truth()
    budget = round(args.share * len(pool))
    from htflow.search import ehvi

    labels = [k for k, (_, m) in STRATEGIES.items() if m != "ehvi" or ehvi.available()]
    if len(labels) < len(STRATEGIES):
        print(f"BoTorch is not installed: EHVI left out ({ehvi.INSTALL})")
    jobs = [(s, seed, budget, args.batch) for s in labels for seed in range(args.seeds)]
    curves: dict[str, list[np.ndarray]] = {s: [] for s in labels}
    seconds: dict[str, list[float]] = {s: [] for s in labels}
    with ProcessPoolExecutor(args.processes) as ex:
        for label, _seed, keys, secs in ex.map(run_one, jobs):
            found = np.cumsum([k in front for k in keys]) / len(front)
            curves[label].append(found)
            seconds[label].append(secs)
    marks = [0.05, 0.10, 0.15, 0.20]
    head = ("| strategy | " + " | ".join(f"{round(m * 100)}% of pool ({round(m * len(pool))} evals)"
                                          for m in marks) + " | seeds with ≥ 90% by 20% | s per run |")
    lines = [f"Pool: {len(pool)} compositions ({'-'.join(ELEMENTS)}, ≤ 3 elements, 1/16 grid); true Pareto "
             f"front (formation energy vs density, both minimised): {len(front)} compositions. {args.seeds} "
             f"seeds, batches of {args.batch}, budget {budget} ({args.share:.0%} of the pool). Cells: median "
             "share of the front found (10th-90th percentile).", "", head,
             "|" + " --- |" * (len(marks) + 3)]
    for label in labels:
        c = np.array(curves[label])
        cells = []
        for m in marks:
            k = min(round(m * len(pool)), c.shape[1]) - 1
            q = np.percentile(c[:, k], [50, 10, 90])
            cells.append(f"{q[0]:.0%} ({q[1]:.0%}-{q[2]:.0%})")
        reach = int((c[:, -1] >= 0.9).sum())
        secs = np.median(seconds[label])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {reach}/{len(c)} | {secs:.0f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text("# Pareto-front benchmark (latest run)\n\n`python benchmarks/pareto_front.py "
                            f"--seeds {args.seeds}`\n\n{text}\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    x = np.arange(1, budget + 1)
    for i, label in enumerate(labels):
        c = np.array(curves[label])
        ax.plot(x, np.median(c, axis=0), color=f"C{i}", label=label)
        ax.fill_between(x, *np.percentile(c, [10, 90], axis=0), color=f"C{i}", alpha=0.2)
    ax.axhline(0.9, color="0.5", ls=":", lw=1)
    ax.set_xlabel(f"evaluations (pool of {len(pool)})")
    ax.set_ylabel(f"share of the true Pareto front found ({len(front)} points)")
    ax.legend()
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot)
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
