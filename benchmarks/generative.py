"""Generative inverse design against differential evolution, a genetic algorithm and random selection.

Two problems, every sampler at the same budget, median over seeds of the best value found, and the
diversity of what each proposed after the initial design (mean total-variation distance between
the proposed compositions, half the L1 distance of their fractions: 0 = all the same, 1 = disjoint):

- ``emt``: the seven-element continuous fcc space of ``workflows/hea-continuous.yaml`` (bounds, five
  elements at most, cost, density and pair constraints; 32-atom cells), real EMT relaxations, formation
  energy minimised. ``surrogate`` there is the default sampler, which optimises the acquisition over the
  simplex by differential evolution (``search.surrogate.evolve``): the "DE" of the comparison.
- list pools of many elements, replayed through the campaign's code (:mod:`search_suite`):
  ``hea-hardness`` (27 elements) and ``steels`` (14 elements), maximised.

Usage::

    python benchmarks/generative.py [--problems emt,hea-hardness,steels] [--seeds 10] [--budget 32]
                                    [--out docs/generative-latest.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import yaml
from rich.progress import Progress

SAMPLERS = ("generative", "surrogate", "ga", "random")
INITIAL, BATCH = 8, 4


def diversity(comps: list[dict[str, float]]) -> float:
    """Mean total-variation distance between the compositions (0: identical, 1: no element shared)."""
    pairs = list(combinations(comps, 2))
    if not pairs:
        return 0.0
    return statistics.mean(0.5 * sum(abs(a.get(e, 0) - b.get(e, 0)) for e in set(a) | set(b))
                           for a, b in pairs)


def emt_run(sampler: str, seed: int, budget: int, folder: Path) -> dict:
    """One real EMT campaign of workflows/hea-continuous.yaml with ``sampler``."""
    from htflow.campaign.loop import Campaign
    from htflow.campaign.validation import check, parse_config

    data = yaml.safe_load((HERE.parent / "workflows" / "hea-continuous.yaml").read_text())
    data["name"] = f"{sampler}-{seed}"
    data["search"].update(sampler=sampler, seed=seed, budget=budget, batch_size=BATCH)
    data["search"]["surrogate"]["initial"] = INITIAL
    if sampler not in ("surrogate", "generative"):
        data["search"].pop("surrogate")
    data["store"] = str(folder / "htflow-data")
    cfg = parse_config(data)
    check(cfg)
    t0 = time.perf_counter()
    camp = Campaign(cfg)
    camp.run()
    done = [r for r in camp.results(status="done") if len(r["composition"]) > 1 or r["round"] > 0]
    later = [r["composition"] for r in done if r["round"] > INITIAL // BATCH + 1]
    return {"best": min(r["formation_energy_per_atom"] for r in done), "diversity": diversity(later),
            "seconds": time.perf_counter() - t0}


def pool_run(pool, sampler: str, seed: int, budget: int) -> dict:
    """One replayed campaign on a list pool (values minimised: -hardness, -yield strength)."""
    from htflow.campaign.replay import replay
    from htflow.schemas.config import CampaignConfig
    from htflow.search.registry import get_generator

    search = {"sampler": sampler, "batch_size": BATCH, "budget": budget, "seed": seed}
    if sampler in ("surrogate", "generative"):
        search["surrogate"] = {"initial": INITIAL, "initial_sampler": "random"}
    cfg = CampaignConfig.model_validate({**pool.config, "search": search})
    t0 = time.perf_counter()
    gen = get_generator(sampler, cfg.search.surrogate, cfg.search.generative)
    trace = replay(cfg, gen, pool.values, budget)
    from pymatgen.core import Composition

    later = [{el.symbol: x for el, x in Composition(k).fractional_composition.items()}
             for k, rnd in zip(trace.keys, trace.rounds, strict=True) if rnd > INITIAL // BATCH]
    return {"best": -min(trace.values), "diversity": diversity(later), "seconds": time.perf_counter() - t0,
            "rank": sorted(pool.values.values()).index(min(trace.values)) + 1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="emt,hea-hardness,steels")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=32)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    from search_suite import load_pools

    rows, t_all = [], time.time()
    with tempfile.TemporaryDirectory(prefix="htflow-gen-") as tmp, Progress() as progress:
        pools = {p.name: p for p in load_pools([p for p in problems if p != "emt"], Path(tmp))}
        task = progress.add_task("campaigns", total=len(problems) * len(SAMPLERS) * args.seeds)
        for problem in problems:
            for sampler in SAMPLERS:
                runs = []
                for seed in range(args.seeds):
                    if problem == "emt":
                        runs.append(emt_run(sampler, seed, args.budget, Path(tmp) / f"{sampler}-{seed}"))
                    else:
                        runs.append(pool_run(pools[problem], sampler, seed, args.budget))
                    progress.advance(task)
                rows.append((problem, sampler, runs))
    unit = {"emt": "formation energy, eV/atom, minimised", "hea-hardness": "Vickers hardness, HV, maximised",
            "steels": "yield strength, MPa, maximised"}
    lines = [f"# Generative sampler against DE, GA and random ({time.strftime('%Y-%m-%d')})", "",
             f"`python benchmarks/generative.py --problems {','.join(problems)} --seeds {args.seeds} "
             f"--budget {args.budget}`: {args.budget} evaluations in batches of {BATCH}, the model-guided "
             f"samplers starting from {INITIAL} space-filling points; {time.time() - t_all:.0f} s in all.",
             "",
             "| problem | sampler | best found: median (range) | rank in the pool: median, found the best "
             "| diversity after the initial design | s per campaign |",
             "| --- | --- | --- | --- | --- | --- |"]
    for problem, sampler, runs in rows:
        best = [r["best"] for r in runs]
        rank = (f"{statistics.median(r['rank'] for r in runs):g}, {sum(r['rank'] == 1 for r in runs)} of "
                f"{len(runs)}" if "rank" in runs[0] else "—")
        lines.append(f"| {problem} ({unit[problem]}) | {sampler} | {statistics.median(best):.4g} "
                     f"({min(best):.4g} to {max(best):.4g}) | {rank} | "
                     f"{statistics.median(r['diversity'] for r in runs):.3f} | "
                     f"{statistics.median(r['seconds'] for r in runs):.1f} |")
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
