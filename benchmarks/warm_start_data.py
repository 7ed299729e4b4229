"""Warm start on measured data: evaluations to the pool's best with a prior half and without.

Two public data sets, each split at random (per seed) into a prior half and a pool half:

- matbench_steels: yield strength (MPa) of 312 steels, 14 elements (``crabnet==2.0.8`` wheel);
- Borg et al. 2020: Vickers hardness of 377 high-entropy alloys, 27 elements (CC-BY-4.0,
  ``workflows/data/hea-hardness.csv``; repeats averaged).

The campaign's candidates are the pool half (``space: {mode: list}``); a laboratory replayed from
the data set answers each round (``calculator: {name: experiment, options: {oracle: ...}}``);
the campaign stops when it has measured the pool's best (``objectives[0].target``). With a
prior, the prior half is imported first (``htflow import``) and named in ``search.prior``. The
default surrogate search, batch 4 after 8 initial points, 10 seeds; random selection for scale.
Evaluations are counted to the end of the round that measured the best. Cross-validation is off
(``cv_folds: 0``) in every arm: it only reports the model's accuracy and gates pruning (which a
prior turns off), and five refits of a GP on ~190 prior rows and 27 elements cost ~20 s a round
here (the decision-time problem of the search issue).

Usage::

    python benchmarks/warm_start_data.py [--seeds 10] [--out docs/warm-start-data-latest.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).parent))
import datasets

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.datasets import ColumnMap, prepare, store_rows
from htflow.space.compositions import composition_key
from htflow.store.db import CampaignDB

DATA = {"matbench_steels yield strength": (datasets.steels, "yield_strength"),
        "Borg 2020 HEA hardness": (datasets.hea_hardness, "HV")}
ARMS = ("no prior", "prior half", "random")


def _table(path: Path, keys: list[str], truth: dict[str, float], name: str) -> Path:
    pd.DataFrame({"formula": keys, name: [truth[k] for k in keys]}).to_csv(path, index=False)
    return path


def run(folder: Path, arm: str, seed: int, truth: dict[str, float], name: str) -> int:
    """Evaluations until the pool's best is measured."""
    rng = np.random.default_rng([seed, 2020])
    keys = sorted(truth)
    order = rng.permutation(len(keys))
    prior = [keys[i] for i in order[: len(keys) // 2]]
    pool = [keys[i] for i in order[len(keys) // 2:]]
    best = max(truth[k] for k in pool)
    store = str(folder / "store")
    oracle = _table(folder / "oracle.csv", keys, truth, name)
    space = {"mode": "list", "file": str(_table(folder / "pool.csv", pool, truth, name))}
    cfg = {"name": "warm", "space": space,
           "calculator": {"name": "experiment", "options": {"oracle": str(oracle)}},
           "objectives": [{"name": name, "goal": "maximize", "target": best}],
           "search": {"sampler": "random" if arm == "random" else "surrogate", "batch_size": 4,
                      "budget": len(pool), "seed": seed, "surrogate": {"initial": 8, "cv_folds": 0}},
           "store": store}
    if arm == "prior half":
        path = _table(folder / "prior.csv", prior, truth, name)
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        with CampaignDB(parse_config(cfg).store) as db:
            store_rows(db, prepare(df, path, "prior", ColumnMap.resolve(list(df.columns), [name])))
        cfg["search"]["prior"] = ["prior"]
    camp = Campaign(parse_config(cfg))
    camp.run()
    results = camp.results(properties=["round", name, "status"])
    hit = min(r["round"] for r in results if r.get(name) is not None and r[name] >= best)
    return sum(r["round"] <= hit for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("docs/warm-start-data-latest.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    table: dict[str, dict[str, list[int]]] = {}
    sizes = {}
    with Progress() as progress:
        task = progress.add_task("campaigns", total=len(DATA) * len(ARMS) * args.seeds)
        for label, (load, name) in DATA.items():
            comps, ys, _ = load()
            truth: dict[str, float] = {}
            for c, y in zip(comps, ys, strict=True):
                truth.setdefault(composition_key(c), y)  # steels: one row per composition already
            sizes[label] = len(truth)
            table[label] = {arm: [] for arm in ARMS}
            for seed in range(args.seeds):
                for arm in ARMS:
                    with tempfile.TemporaryDirectory() as tmp:
                        table[label][arm].append(run(Path(tmp), arm, seed, truth, name))
                    progress.advance(task)
    lines = [
        "# Warm start on measured data",
        "",
        f"Command: `python benchmarks/warm_start_data.py --seeds {args.seeds}` ({platform.node()}, "
        f"{os.cpu_count()} cores, {time.perf_counter() - started:.0f} s in all).",
        "",
        "Each data set split at random (per seed) into a prior half, imported and named in "
        "`search.prior`, and a pool half, the campaign's candidates, answered by a replayed "
        "laboratory. Evaluations until the pool's best is measured, to the end of its round "
        "(batch 4 after 8 initial points).",
        "",
        "| data set | pool | no prior: median (range) | prior half: median (range) "
        "| random: median (range) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, arms in table.items():
        cells = [f"{statistics.median(v):g} ({min(v)}–{max(v)})" for v in arms.values()]
        lines.append(f"| {label} | {sizes[label] - sizes[label] // 2} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed:", ""]
    for label, arms in table.items():
        for arm, v in arms.items():
            lines.append(f"- {label}, {arm}: {v}")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
