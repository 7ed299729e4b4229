"""An experiment-in-the-loop campaign replayed through worksheets and ``htflow ingest``.

The laboratory is the Borg et al. 2020 Vickers hardness data set (377 alloys, 27 elements, CC-BY-4.0;
``workflows/data/hea-hardness.csv``, repeats averaged): each round, ``htflow run`` proposes 8
samples and writes the worksheet; this script plays the laboratory, filling in the published
hardness of each sample, and records it with ``htflow ingest``; then ``htflow run`` again. The
candidates are the 377 alloys (``space: {mode: list}``). Reported: rounds (and samples) until the
hardest alloy is measured, over 10 seeds, for the default search and for random selection (the
same loop with ``sampler: random``).

Usage::

    python benchmarks/experiment_replay.py [--seeds 10] [--out docs/experiment-replay-latest.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).parent))
import datasets

from htflow.cli import main
from htflow.space.compositions import composition_key

BATCH = 8


def htflow(*argv: str) -> str:
    """``htflow ARGV`` in this process; its standard output (an error exits the benchmark)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(list(argv))
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"htflow {' '.join(argv)} exited {exc.code}: {out.getvalue()}") from None
    return out.getvalue()


def campaign(folder: Path, sampler: str, seed: int, truth: dict[str, float], best_key: str) -> int:
    """Rounds until the hardest alloy is measured (each a run, a filled worksheet and an ingest)."""
    cfg = {"name": "lab", "space": {"mode": "list", "file": str(datasets.HEA)},
           "calculator": {"name": "experiment"},
           "objectives": [{"name": "HV", "goal": "maximize", "unit": "HV"}],
           "search": {"sampler": sampler, "batch_size": BATCH, "budget": len(truth), "seed": seed},
           "store": str(folder / "store")}
    file = folder / "lab.yaml"
    file.write_text(yaml.safe_dump(cfg, sort_keys=False))
    for rnd in range(1, len(truth) // BATCH + 2):
        htflow("run", "-q", str(file))
        sheet = folder / "store" / "worksheets" / f"lab-round-{rnd}.csv"
        w = pd.read_csv(sheet, dtype=str, keep_default_na=False)
        w["HV"] = [str(truth[k]) for k in w["key"]]
        w.to_csv(sheet, index=False)
        htflow("ingest", str(sheet))
        if best_key in set(w["key"]):
            return rnd
    raise RuntimeError("the budget ran out before the hardest alloy was measured")


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("docs/experiment-replay-latest.md"))
    args = parser.parse_args()
    comps, hv, _ = datasets.hea_hardness()
    truth = {composition_key(c): v for c, v in zip(comps, hv, strict=True)}
    best_key = max(truth, key=truth.get)
    rows, started = {}, time.perf_counter()
    with Progress() as progress:
        task = progress.add_task("campaigns", total=2 * args.seeds)
        for sampler in ("surrogate", "random"):
            rounds, seconds = [], []
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    rounds.append(campaign(Path(tmp), sampler, seed, truth, best_key))
                    seconds.append(time.perf_counter() - t0)
                progress.advance(task)
            rows[sampler] = (rounds, seconds)
    lines = [
        "# Experiment in the loop, replayed through worksheets",
        "",
        f"Command: `python benchmarks/experiment_replay.py --seeds {args.seeds}` "
        f"({platform.node()}, {os.cpu_count()} cores, {time.perf_counter() - started:.0f} s in all).",
        "",
        f"Laboratory: Borg et al. 2020 Vickers hardness, {len(truth)} alloys of 27 elements (repeats "
        f"averaged); the hardest is {best_key} at {truth[best_key]:.0f} HV. {BATCH} samples per round; "
        "each round is `htflow run` (proposes, writes the worksheet), the worksheet filled in with the "
        "published values, `htflow ingest`.",
        "",
        "| search | rounds to the hardest alloy, median (range) | samples, median "
        "| seconds per campaign, median |",
        "| --- | --- | --- | --- |",
    ]
    for sampler, (rounds, seconds) in rows.items():
        name = "default (surrogate)" if sampler == "surrogate" else "random selection"
        lines.append(f"| {name} | {statistics.median(rounds):g} ({min(rounds)}–{max(rounds)}) | "
                     f"{BATCH * statistics.median(rounds):g} | {statistics.median(seconds):.1f} |")
    lines += ["", "Per seed (rounds): " + "; ".join(f"{s}: {rows[s][0]}" for s in rows), ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main_()
