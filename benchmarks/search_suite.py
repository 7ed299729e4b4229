"""Search suite: every strategy on several public pools, through the code a campaign runs.

Each pool is a ground truth (a computed EMT grid, or a published list of compositions with a
measured property). A campaign on it is replayed with :func:`htflow.campaign.replay.replay`: the
same generator, context and result summaries a campaign uses, the value looked up instead of
computed (``tests/test_active.py`` checks that a replay proposes what a real campaign does).
Every strategy evaluates batches of 4 (the model-guided ones choose the first 8 at random) until
it has evaluated the pool's best (or spent the pool). Reported per pool and strategy, over seeds:
evaluations (whole batches) to the best and to any of the top 1% (median and range), and the
ratio of medians to the plain GP's (:mod:`baselines`).

Pools:

- ``emt-fcc7``: 3,997 binary and ternary fcc alloys of Al, Cu, Ni, Pd, Ag, Au, Pt (1/16 grid,
  32 atoms, EMT formation energy, minimised; ``htflow/data/emt-fcc7.csv``);
- ``emt-bcc5``: 495 bcc alloys of Cu, Ni, Pd, Ag, Au, up to five at a time (1/8 grid, 16 atoms,
  EMT formation energy, minimised; ``benchmarks/pools/emt-bcc5.csv``, computed once by
  ``python benchmarks/emt_pool.py benchmarks/pools/emt-bcc5.yaml --out benchmarks/pools/emt-bcc5.csv``);
- ``steels``: matbench_steels, 312 steels, yield strength maximised (crabnet==2.0.8 wheel);
- ``hea-hardness``: Borg et al. 2020, 377 alloys of 27 elements, Vickers hardness maximised
  (mean per composition; CC-BY-4.0);
- ``expt-gap``: matbench_expt_gap, 4,604 compositions, a target-value problem: the distance of
  the band gap from 1.3-1.5 eV, minimised (the "best" are every composition inside the band).

Usage::

    python benchmarks/search_suite.py [--seeds 10] [--pools emt-bcc5,steels] [--workers 2]
                                      [--out docs/search-suite-latest.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import PLAIN_GP
from rich.progress import Progress

BATCH, INITIAL = 4, 8
#: the strategies measured before the trust region became part of the default (session 8) keep it off,
#: so their rows reproduce; the default's row is today's default
OFF = {"trust_region": False}
#: the model-guided strategies' first 8 points: random
FIRST = {"initial": INITIAL, "initial_sampler": "random"}
#: label -> (sampler, search.surrogate settings)
STRATEGIES: dict[str, tuple[str, dict | None]] = {
    "random": ("random", None),
    "plain GP + EI": ("surrogate", PLAIN_GP),
    # today's defaults (gp-plain, kriging-believer batches, no pruning, the trust region from the whole
    # space), the first 8 at random
    "htflow default": ("surrogate", {**FIRST}),
    # the default chosen in session 6: the same without the trust region
    "gp-plain without trust region (previous default)": ("surrogate", {**OFF, "initial": INITIAL,
                                                                   "initial_sampler": "random"}),
    # the other candidates the default was chosen from (docs/search-suite.md)
    "anisotropic GP + pruning (old default)": ("surrogate", {**OFF, **FIRST,
                                                             "model": "gp", "prune": {"enabled": True}}),
    "anisotropic GP": ("surrogate", {**OFF, **FIRST, "model": "gp"}),
    "isotropic GP": ("surrogate", {**OFF, **FIRST, "model": "gp-iso"}),
    "isotropic GP top 4": ("surrogate", {**OFF, **FIRST, "model": "gp-iso",
                                         "batch": "top"}),
    "default + calibrated sigma": ("surrogate", {**OFF, **FIRST,
                                                 "calibrate": True}),
    # TuRBO's own start, a box of half the range (session 7)
    "default + trust region": ("surrogate", {**FIRST,
                                             "trust_region": True, "trust_start": 0.5}),
    # the same rules from a box of the whole space: global rounds until three fail to improve (today's
    # default, written out)
    "trust region from the whole space": ("surrogate", {**FIRST,
                                                        "trust_region": True, "trust_start": 1.0}),
    "auto (GP or forest by CV)": ("surrogate", {**OFF, **FIRST,
                                                "model": "auto"}),
    "generative": ("generative", {**OFF, **FIRST}),
    "ga": ("ga", None),
    # BoTorch's SingleTaskGP (its default priors: dimension-scaled length scales, inputs normalised,
    # outcomes standardised), the model EHVI uses, as the single objective's surrogate; no CV (it does not
    # change the picks, and five BoTorch refits a round made a run minutes long)
    "BoTorch GP": ("surrogate", {**OFF, **FIRST,
                                 "model": "htflow.search.ehvi:BotorchGP", "cv_folds": 0}),
    "forest + UCB": ("surrogate", {**OFF, **FIRST, "model": "forest",
                                   "acquisition": "ucb"}),
    # the "small ensemble of both": an equal mixture of the default GP and the forest
    "GP + forest mixture": ("surrogate", {**OFF, **FIRST,
                                          "model": "baselines:GPForestMixture"}),
    # physically informed features: regular-solution pair terms x_i x_j beside the fractions, and
    # Magpie's elemental-property statistics (standardised, so a GP with fitted scales)
    "default + pair features": ("surrogate", {**OFF, **FIRST,
                                              "features": "pairs"}),
    "isotropic GP + Magpie": ("surrogate", {**OFF, **FIRST,
                                            "model": "gp-iso", "features": "fractions+magpie"}),
    "forest + Magpie + UCB": ("surrogate", {**OFF, **FIRST,
                                            "model": "forest", "features": "fractions+magpie",
                                            "acquisition": "ucb"}),
    # issue 20, point 3: CHGNet's crystal features of each composition's cell (EMT pools only: the
    # measured pools have no cells), alone and beside the fractions
    "graph features (CHGNet)": ("surrogate", {**OFF, **FIRST,
                                              "features": "chgnet"}),
    "fractions + graph features": ("surrogate", {**OFF, **FIRST,
                                                 "features": "fractions+chgnet"}),
}
#: strategies that need the pool's cells
GRAPH = ("graph features (CHGNet)", "fractions + graph features")
#: the strategies a default may be chosen from
CANDIDATES = ("htflow default", "gp-plain without trust region (previous default)",
              "anisotropic GP + pruning (old default)", "anisotropic GP", "isotropic GP",
              "isotropic GP top 4", "forest + UCB", "default + calibrated sigma", "auto (GP or forest by CV)",
              "default + trust region", "BoTorch GP", "default + pair features", "isotropic GP + Magpie",
              "forest + Magpie + UCB", "GP + forest mixture",
              "trust region from the whole space")
PLAIN, DEFAULT = "plain GP + EI", "htflow default"
#: not a strategy: the fewest evaluations any strategy could need after the same 8 random points
#: (derived from the random runs, whose first 8 are the model-guided strategies' first 8)
ORACLE = "oracle bound (the best right after the 8 random)"


@dataclass
class Pool:
    """A ground truth: the campaign config whose space is the pool, every value, what counts as found."""

    name: str
    config: dict
    values: dict[str, float]
    best: set[str]
    top: set[str]
    note: str


def _grid_pool(name: str, yaml_file: Path, table: str, note: str) -> Pool:
    import yaml

    from htflow.campaign.replay import pool_values
    from htflow.schemas.config import CampaignConfig

    cfg = yaml.safe_load(yaml_file.read_text())
    cfg.update(calculator={"name": "lookup", "options": {"table": table}}, store="memory://",
               objectives=[{"name": "formation_energy_per_atom", "goal": "minimize"}])
    values = pool_values(CampaignConfig.model_validate({**cfg, "search": {"budget": 1}}), table)
    return _finish(name, cfg, values, note)


def _finish(name: str, cfg: dict, values: dict[str, float], note: str, best: set[str] | None = None) -> Pool:
    """Minimised values: the best (all keys at the minimum) and the top 1% (at least one)."""
    order = sorted(values, key=values.get)
    low = values[order[0]]
    best = best or {k for k in order if values[k] <= low + 1e-12}
    top = set(order[:max(1, len(order) // 100)]) | best
    return Pool(name, cfg, values, best, top, note)


def _list_pool(name: str, comps: list[dict[str, float]], ys: list[float], folder: Path, note: str,
               sign: float = 1.0, band: tuple[float, float] | None = None) -> Pool:
    """A list space of ``comps`` (experiment builder: exact compositions), value ``sign * y`` minimised
    (or, with ``band``, the distance of y from it); repeats of a composition averaged."""
    from htflow.space.compositions import composition_key
    from htflow.space.structures import ExactBuilder

    builder, groups = ExactBuilder(), {}
    for comp, y in zip(comps, ys, strict=True):
        key = composition_key(builder.realise(comp))
        groups.setdefault(key, [comp, []])[1].append(y)
    elements = sorted({el for comp, _ in groups.values() for el in comp})
    path = folder / f"{name}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(elements)
        for comp, _ in groups.values():
            w.writerow([comp.get(el, 0.0) for el in elements])
    values = {}
    for key, (_, vals) in groups.items():
        y = sum(vals) / len(vals)
        values[key] = max(0.0, band[0] - y, y - band[1]) if band else sign * y
    best = {k for k, v in values.items() if v == 0.0} if band else None
    cfg = {"name": name, "space": {"mode": "list", "file": str(path)},
           "calculator": {"name": "experiment"}, "store": "memory://",
           "objectives": [{"name": "y", "goal": "minimize"}]}
    return _finish(name, cfg, values, note, best)


def load_pools(names: list[str], folder: Path) -> list[Pool]:
    import datasets

    out = []
    for name in names:
        if name == "emt-fcc7":
            out.append(_grid_pool(name, HERE / "pools" / "emt-fcc7.yaml", "emt-fcc7",
                                  "EMT, fcc, 7 elements, 32 atoms"))
        elif name == "emt-bcc5":
            out.append(_grid_pool(name, HERE / "pools" / "emt-bcc5.yaml",
                                  str(HERE / "pools" / "emt-bcc5.csv"), "EMT, bcc, 5 elements, 16 atoms"))
        elif name == "steels":
            comps, ys, _ = datasets.steels()
            out.append(_list_pool(name, comps, ys, folder, "measured yield strength, maximised", sign=-1.0))
        elif name == "hea-hardness":
            comps, ys, _ = datasets.hea_hardness()
            out.append(_list_pool(name, comps, ys, folder, "measured Vickers hardness, maximised", sign=-1.0))
        elif name == "expt-gap":
            comps, ys, _ = datasets.expt_gap()
            out.append(_list_pool(name, comps, ys, folder, "measured band gap in 1.3-1.5 eV",
                                  band=(1.3, 1.5)))
        else:
            raise SystemExit(f"unknown pool {name!r}; pools: {', '.join(POOLS)}")
    return out


POOLS = ("emt-fcc7", "emt-bcc5", "steels", "hea-hardness", "expt-gap")


def run_one(pool: Pool, strategy: str, seed: int) -> dict:
    """One replayed campaign until the pool's best is evaluated: evaluations to it and to the top 1%."""
    from htflow.campaign.replay import replay
    from htflow.schemas.config import CampaignConfig
    from htflow.search.registry import get_generator

    sampler, surrogate = STRATEGIES[strategy]
    if surrogate is not None and sampler in ("surrogate", "generative"):
        surrogate = {"explain": False, **surrogate}  # explained after the picks: same picks, less time
    search = {"sampler": sampler, "batch_size": BATCH, "budget": len(pool.values), "seed": seed,
              **({"surrogate": surrogate} if surrogate else {})}
    cfg = CampaignConfig.model_validate({**pool.config, "search": search})
    gen = get_generator(sampler, cfg.search.surrogate, cfg.search.generative)
    t0 = time.perf_counter()
    trace = replay(cfg, gen, pool.values, len(pool.values), stop=lambda t: not pool.best.isdisjoint(t.keys))
    seconds = time.perf_counter() - t0
    select = [r.get("select_seconds") for r in trace.reports if r.get("select_seconds") is not None]
    return {"pool": pool.name, "strategy": strategy, "seed": seed, "seconds": seconds,
            "to_best": trace.evaluations_to(pool.best, BATCH),
            "to_top": trace.evaluations_to(pool.top, BATCH),
            "evaluated": len(trace.keys), "max_select_s": max(select, default=None)}


_POOLS: dict[str, Pool] = {}
#: CHGNet features by (elements, builder, fractions), shared by this process's runs
_GRAPH_CACHE: dict[tuple, object] = {}


def _share_graph_features() -> None:
    """One CHGNet pass per composition per worker process instead of one per replayed campaign
    (htflow caches the features per campaign; here the runs of a pool share them)."""
    from htflow.search import graph

    if getattr(graph.CHGNetFeatures, "shared_by_suite", False):
        return
    own = graph.CHGNetFeatures._features

    def features(self, rows):
        tag = (tuple(self.elements), repr(self.builder))
        keys = [(*tag, row.round(9).tobytes()) for row in rows]
        todo = [row for row, k in zip(rows, keys, strict=True) if k not in _GRAPH_CACHE]
        if todo:
            for row, fea in zip(todo, own(self, todo), strict=True):
                _GRAPH_CACHE[(*tag, row.round(9).tobytes())] = fea
        return [_GRAPH_CACHE[k] for k in keys]

    graph.CHGNetFeatures._features = features
    graph.CHGNetFeatures.shared_by_suite = True


def _init(names: list[str], folder: str) -> None:
    _POOLS.update({p.name: p for p in load_pools(names, Path(folder))})
    _share_graph_features()


def _job(args: tuple[str, str, int]) -> dict:
    return run_one(_POOLS[args[0]], args[1], args[2])


def oracle_runs(runs: list[dict]) -> list[dict]:
    """Per random run: an oracle that picks the best (or a top 1%) straight after the same 8 random
    initial points. It needs the random run's count where that is within the first 8, else one more
    batch: what no strategy can beat, so a ratio target below the oracle's is out of reach."""
    out = []
    for r in runs:
        if r["strategy"] == "random":
            bound = {k: r[k] if r[k] is not None and r[k] <= INITIAL else INITIAL + BATCH
                     for k in ("to_best", "to_top")}
            out.append({**r, **bound, "strategy": ORACLE, "seconds": 0.0})
    return out


def med(xs: list) -> str:
    got = [x for x in xs if x is not None]
    if not got:
        return "never"
    missing = len(xs) - len(got)
    text = f"{statistics.median(got):g} ({min(got)}–{max(got)})"
    return text + (f", {missing} never" if missing else "")


def table(runs: list[dict], pools: list[Pool]) -> list[str]:
    lines = ["| pool | strategy | evaluations to the best | to the top 1% | vs plain GP (best / top 1%) "
             "| s per run |", "| --- | --- | --- | --- | --- | --- |"]
    for pool in pools:
        mine = [r for r in runs if r["pool"] == pool.name]
        plain = [r for r in mine if r["strategy"] == PLAIN]
        base = {k: statistics.median([r[k] or len(pool.values) for r in plain] or [1])
                for k in ("to_best", "to_top")}
        for strategy in [*STRATEGIES, ORACLE]:
            rs = [r for r in mine if r["strategy"] == strategy]
            if not rs:
                continue
            ratio = "/".join(f"{statistics.median([r[k] or len(pool.values) for r in rs]) / base[k]:.2f}"
                             for k in ("to_best", "to_top"))
            lines.append(f"| {pool.name} ({len(pool.values)}, {len(pool.best)} best) | {strategy} | "
                         f"{med([r['to_best'] for r in rs])} | {med([r['to_top'] for r in rs])} | {ratio} | "
                         f"{statistics.median(r['seconds'] for r in rs):.1f} |")
    return lines


def ratios(runs: list[dict], pools: list[Pool], key: str = "to_best") -> dict[tuple[str, str], float]:
    """(pool, strategy) -> median evaluations over the plain GP's median (never: the pool's size)."""
    out = {}
    for pool in pools:
        def median(strategy: str, pool: Pool = pool) -> float | None:
            got = [r[key] or len(pool.values) for r in runs
                   if r["pool"] == pool.name and r["strategy"] == strategy]
            return statistics.median(got) if got else None
        base = median(PLAIN)
        for strategy in [*STRATEGIES, ORACLE]:
            m = median(strategy)
            if m is not None and base:
                out[pool.name, strategy] = m / base
    return out


def leave_one_pool_out(runs: list[dict], pools: list[Pool]) -> list[str]:
    """For each pool: the candidate default chosen on the other pools, by the geometric mean of its
    ratios to the plain GP and by its worst ratio, and how each does on the pool left out."""
    r = ratios(runs, pools)
    names = [p.name for p in pools]
    lines = ["| left out | chosen by geometric mean | ratio there | chosen by worst case | ratio there |",
             "| --- | --- | --- | --- | --- |"]
    for out in names:
        rest = [n for n in names if n != out]
        usable = [c for c in CANDIDATES if rest and all((n, c) in r for n in [*rest, out])]
        if not usable:
            continue
        mean = min(usable, key=lambda c: statistics.geometric_mean([r[n, c] for n in rest]))
        worst = min(usable, key=lambda c: max(r[n, c] for n in rest))
        lines.append(f"| {out} | {mean} | {r[out, mean]:.2f} | {worst} | {r[out, worst]:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--pools", default=",".join(POOLS))
    ap.add_argument("--strategies", default="random,plain GP + EI,htflow default",
                    help=f"comma-separated, of: {', '.join(STRATEGIES)}")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--runs", type=Path, default=None, help="also write every run as JSON here")
    args = ap.parse_args(argv)
    names = [p.strip() for p in args.pools.split(",") if p.strip()]
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        ap.error(f"unknown strategy {unknown[0]!r}; strategies: {', '.join(STRATEGIES)}")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="htflow-suite-") as folder:
        pools = load_pools(names, Path(folder))
        jobs = [(p.name, s, seed) for p in pools for s in strategies for seed in range(args.seeds)
                if s not in GRAPH or p.config.get("structure")]  # graph features need cells
        runs = []
        with Progress() as progress, ProcessPoolExecutor(args.workers, initializer=_init,
                                                         initargs=(names, folder)) as ex:
            task = progress.add_task("replayed campaigns", total=len(jobs))
            for fut in as_completed([ex.submit(_job, j) for j in jobs]):
                runs.append(fut.result())
                progress.advance(task)
        runs += oracle_runs(runs)
    lines = [f"# Search suite ({time.strftime('%Y-%m-%d')})", "",
             f"`{shlex.join(['python', 'benchmarks/search_suite.py', *(argv or sys.argv[1:])])}` on "
             f"{platform.machine()} with {os.cpu_count()} cores, {args.workers} workers, one thread each; "
             f"{time.time() - t0:.0f} s in all. Batches of {BATCH}, the first {INITIAL} points random; "
             "each run stops when it has evaluated the pool's best. Cells: median evaluations, counted in "
             "whole batches (range over seeds).", "",
             *table(runs, pools), "", "Leave one pool out: among the candidate defaults run ("
             + ", ".join(c for c in CANDIDATES if c in strategies) + "), the one with the best geometric "
             "mean (or the best worst case) of evaluations to the best over the plain GP's on the other "
             "pools, scored on the pool left out (below 1: fewer evaluations than the plain GP):", "",
             *leave_one_pool_out(runs, pools), "", "Pools:", *(f"- {p.name}: {p.note}" for p in pools)]
    if args.runs:
        args.runs.write_text(json.dumps(sorted(runs, key=lambda r: (r["pool"], r["strategy"], r["seed"])),
                                        indent=1))
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
