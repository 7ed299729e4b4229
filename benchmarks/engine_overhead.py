"""Engine overhead per trivial job, and parallel efficiency on real EMT relaxations.

Part ``overhead``: jobs that add two numbers, independent or in chains of
dependent jobs (``add(prev.output, 1)``, ten per flow), run by

- htflow's Dask executor (LocalCluster, one single-threaded worker per core;
  the driver writes every job document to an in-memory store, or to the
  embedded SQLite store where marked),
- jobflow's ``run_locally`` (one flow holding all jobs; maggma MemoryStore),
- a plain Dask ``client.map`` (one task per job; chains as dependent futures),
- a bare ``ProcessPoolExecutor.map`` (the floor: no jobflow, no scheduler).

Time is wall time from handing over the jobs to having every output, divided
by the number of jobs; making the jobs is timed apart. Cluster start-up is
excluded (reported once).

Part ``emt``: the same EMT relaxations (32-atom fcc cells of Cu-Ni-Pd-Pt, one
BLAS thread per worker) through htflow's evaluation flow on 1 and on N
workers; efficiency = T1 / (N · TN).

    python benchmarks/engine_overhead.py --out docs/distributed-latest.md
    python benchmarks/engine_overhead.py --parts emt --workers 16      # on a 16-core host
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jobflow import Flow, JobStore, job, run_locally

CHAIN = 10


@job
def add(a, b):
    return a + b


def plain_add(ab):
    return ab[0] + ab[1]


def make_units(n: int, chains: bool) -> list[tuple[str, object, dict]]:
    """``n`` jobs: independent (one unit per job) or in flows of CHAIN dependent jobs."""
    units = []
    if not chains:
        return [(str(i), add(i, 1), {}) for i in range(n)]
    for c in range(n // CHAIN):
        jobs = [add(c, 1)]
        for _ in range(CHAIN - 1):
            jobs.append(add(jobs[-1].output, 1))
        units.append((str(c), Flow(jobs, output=jobs[-1].output), {}))
    return units


def expected(n: int, chains: bool) -> list[int]:
    return sorted(c + CHAIN for c in range(n // CHAIN)) if chains else list(range(1, n + 1))


def bench_htflow(ex, n: int, chains: bool, store: str = "memory", tmp: Path | None = None) -> dict:
    from htflow.execution.engine import scratch_store

    t0 = time.perf_counter()
    units = make_units(n, chains)
    make_s = time.perf_counter() - t0
    if store == "sqlite":
        from htflow.store.sqlite import SQLiteStore

        path = tmp / f"jobs-{n}-{chains}.sqlite"
        path.unlink(missing_ok=True)
        js = JobStore(SQLiteStore(path, "jobs", key="uuid"), additional_stores={"data": SQLiteStore(
            path, "jobs_data", key="blob_uuid")})
        js.connect()
    else:
        js = scratch_store(("data",))
    ex.tasks_submitted = 0
    t0 = time.perf_counter()
    outs = sorted(r.output for r in ex.run_units(units, js))
    wall = time.perf_counter() - t0
    assert outs == expected(n, chains), "wrong outputs"
    docs = js.count({})
    assert docs == n, f"{docs} job documents for {n} jobs"
    return {"wall": wall, "make": make_s, "tasks": ex.tasks_submitted}


def bench_run_locally(n: int, chains: bool) -> dict:
    from maggma.stores import MemoryStore

    t0 = time.perf_counter()
    units = make_units(n, chains)
    flow = Flow([u for _, u, _ in units])
    make_s = time.perf_counter() - t0
    store = JobStore(MemoryStore())
    t0 = time.perf_counter()
    run_locally(flow, store=store, log=False, ensure_success=True)
    return {"wall": time.perf_counter() - t0, "make": make_s, "tasks": n}


def bench_client_map(client, n: int, chains: bool) -> dict:
    t0 = time.perf_counter()
    if not chains:
        futs = client.map(plain_add, [(i, 1) for i in range(n)], pure=False)
    else:
        futs = []
        for c in range(n // CHAIN):
            f = client.submit(plain_add, (c, 1), pure=False)
            for _ in range(CHAIN - 1):
                f = client.submit(lambda x: x + 1, f, pure=False)
            futs.append(f)
    outs = sorted(client.gather(futs))
    wall = time.perf_counter() - t0
    assert outs == expected(n, chains)
    return {"wall": wall, "make": 0.0, "tasks": n}


def bench_pool(pool, n: int) -> dict:
    """The floor: 64 chunks of plain function calls, no jobflow, no scheduler."""
    t0 = time.perf_counter()
    outs = list(pool.map(plain_add, [(i, 1) for i in range(n)], chunksize=max(1, n // 64)))
    wall = time.perf_counter() - t0
    assert outs == list(range(1, n + 1))
    return {"wall": wall, "make": 0.0, "tasks": 64}


def overhead(args) -> list[str]:
    import tempfile

    from htflow.execution.dask_executor import DaskExecutor

    sizes = [int(float(s)) for s in args.sizes]
    rows = []
    t0 = time.perf_counter()
    ex = DaskExecutor(workers=args.workers, announce=lambda line: None)
    client = ex.start()
    start_s = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp())
    # warm the workers' imports (jobflow, networkx for flows) so the first size is not charged for them
    from htflow.execution.engine import scratch_store

    for chains in (False, True):
        list(ex.run_units(make_units(200, chains), scratch_store()))

    def row(engine: str, kind: str, n: int, r: dict) -> None:
        ms = r["wall"] / n * 1e3
        rows.append(f"| {engine} | {kind} | {n:,} | {r['wall']:.2f} | **{ms:.3f}** | {r['tasks']:,} | "
                     f"{r['make'] / n * 1e3:.3f} |")
        print(rows[-1], flush=True)

    for chains in (False, True):
        kind = f"chains of {CHAIN}" if chains else "independent"
        for n in sizes:
            row("htflow dask", kind, n, bench_htflow(ex, n, chains))
        n_sql = min(10_000, max(sizes))
        row("htflow dask, embedded store", kind, n_sql, bench_htflow(ex, n_sql, chains, "sqlite", tmp))
        for n in sizes:
            if n <= args.max_plain:
                row("dask client.map" if not chains else "dask submit (dependent)", kind, n,
                    bench_client_map(client, n, chains))
        for n in sizes:
            if n <= args.max_local:
                row("jobflow run_locally", kind, n, bench_run_locally(n, chains))
    ex.close()
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(plain_add, [(0, 1)] * 100))
        for n in sizes:
            row("ProcessPoolExecutor.map (64 chunks)", "independent", n, bench_pool(pool, n))
    head = [
        f"cluster start-up: {start_s:.1f} s ({args.workers} workers)",
        "",
        "| engine | jobs | n | wall s | ms/job | Dask tasks | making jobs ms/job |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    return head + rows


def emt(args) -> list[str]:
    from htflow.calculators.flows import EvaluationMaker
    from htflow.calculators.registry import get_calculator
    from htflow.execution.base import EvalTask
    from htflow.execution.dask_executor import DaskExecutor
    from htflow.execution.engine import scratch_store
    from htflow.execution.local import LocalExecutor
    from htflow.schemas.config import CalculatorConfig
    from htflow.space.compositions import CompositionSpace
    from htflow.space.structures import StructureBuilder

    space = CompositionSpace(("Cu", "Ni", "Pd", "Pt"), step=0.125, max_elements=3)
    comps = [c for c in space.pool() if len([v for v in c.values() if v > 0]) > 1][: args.emt_n]
    builder = StructureBuilder("fcc", 32)
    cfg = CalculatorConfig(name="emt", fmax=0.05)
    maker = EvaluationMaker(relax_maker=get_calculator("emt").relax_maker(cfg))

    def tasks():
        return [EvalTask(str(i), maker.make(builder.build(c))) for i, c in enumerate(comps)]

    # interleaved repeats, medians: this VM's speed drifts by tens of percent over minutes
    execs = {w: DaskExecutor(workers=w, announce=lambda line: None) for w in sorted({1, args.workers})}
    for w, ex in execs.items():
        ex.start()
        list(ex.run(tasks()[:w], scratch_store(("data",))))  # imports warmed on every worker
    walls: dict[str, list[float]] = {"local": [], **{w: [] for w in execs}}
    for rep in range(args.repeats):
        for name in walls:
            ex = LocalExecutor() if name == "local" else execs[name]
            t0 = time.perf_counter()
            outs = list(ex.run(tasks(), scratch_store(("data",))))
            walls[name].append(time.perf_counter() - t0)
            assert all(o.ok for o in outs), [o.error for o in outs if not o.ok]
        print(f"repeat {rep + 1}: " + ", ".join(f"{k}: {v[-1]:.1f} s" for k, v in walls.items()), flush=True)
    for ex in execs.values():
        ex.close()
    med = {k: statistics.median(v) for k, v in walls.items()}
    local = med["local"]
    rows = [f"| in-process (local executor) | 1 | {local:.1f} | {local / len(comps):.2f} | — | — |"]
    for w in execs:
        eff1 = med[1] / (w * med[w])
        effl = med["local"] / (w * med[w])
        rows.append(f"| htflow dask | {w} | {med[w]:.1f} | {med[w] / len(comps):.2f} | **{eff1:.0%}** | "
                    f"{effl:.0%} |")
    return [
        f"{len(comps)} EMT relaxations of 32-atom fcc cells (Cu-Ni-Pd-Pt, fmax 0.05), "
        f"one BLAS thread per worker; median of {args.repeats} interleaved repeats",
        "",
        "| engine | workers | wall s | s per relaxation | efficiency vs 1 Dask worker | vs in-process |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["overhead", "emt"], choices=["overhead", "emt"])
    ap.add_argument("--sizes", nargs="+", default=["1e3", "1e4", "1e5"])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-local", type=int, default=5000, help="largest n for run_locally (8 ms/job)")
    ap.add_argument("--max-plain", type=int, default=10_000, help="largest n for client.map (2 ms/job)")
    ap.add_argument("--emt-n", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = [
        f"# Engine benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"`python benchmarks/engine_overhead.py {' '.join(sys.argv[1:])}` on {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
    ]
    if "overhead" in args.parts:
        lines += ["## Overhead per trivial job", "", *overhead(args), ""]
    if "emt" in args.parts:
        lines += ["## Parallel efficiency on EMT relaxations", "", *emt(args), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
