"""Store benchmark: ingest rate and indexed-filter latency of the embedded store.

Targets (issue "Foundation"): ingest >= 5,000 result documents/s; an indexed
filter over 100,000 documents answered in <= 100 ms.

Compares htflow's embedded ``SQLiteStore`` with maggma's ``MontyStore``
(montydb, the obvious embedded alternative) and maggma's in-memory
``MemoryStore`` (mongomock), on result documents shaped like the ones a
campaign writes (composition, 32-site structure, energies, timings).

Usage::

    python benchmarks/store_benchmark.py [--n 100000] [--monty-n 2000] [--out docs/store-benchmark.md]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from maggma.stores import MemoryStore

from htflow.store.sqlite import SQLiteStore

ELEMENTS = ["Ag", "Au", "Cu", "Ni", "Pd", "Pt"]
INDEXES = ["campaign", "key", "status", "formation_energy_per_atom", "elements", "round"]


def make_doc(i: int, rng: random.Random) -> dict:
    """A result document of realistic size (about 6 kB of JSON)."""
    els = sorted(rng.sample(ELEMENTS, rng.randint(1, 3)))
    counts = [rng.randint(1, 10) for _ in els]
    total = sum(counts)
    sites = [
        {
            "species": [{"element": rng.choice(els), "occu": 1}],
            "abc": [rng.random(), rng.random(), rng.random()],
            "xyz": [rng.random() * 7, rng.random() * 7, rng.random() * 7],
            "properties": {},
            "label": rng.choice(els),
        }
        for _ in range(32)
    ]
    return {
        "campaign": f"campaign-{i % 10}",
        "key": f"K{i:07d}",
        "status": rng.choice(["done"] * 9 + ["failed"]),
        "round": i % 50,
        "elements": els,
        "composition": {e: c / total for e, c in zip(els, counts, strict=True)},
        "energy_per_atom": -rng.random(),
        "formation_energy_per_atom": rng.gauss(0.0, 0.05),
        "volume_per_atom": 11 + rng.random() * 5,
        "structure": {
            "@module": "pymatgen.core.structure",
            "@class": "Structure",
            "lattice": {"matrix": [[7.2, 0, 0], [0, 7.2, 0], [0, 0, 7.2]]},
            "sites": sites,
        },
        "timings": {"relax_s": rng.random(), "total_s": rng.random()},
        "calculator": {"name": "emt", "version": "ase-3.29.0"},
        "error": None,
    }


def bench_store(
    make_store, docs: list[dict], batch: int = 1000, repeats: int = 20, ingests: int = 1
) -> dict:
    """Ingest ``docs`` in batches into ``ingests`` fresh stores, then time filters on the last."""
    rates = []
    for _ in range(ingests):
        store = make_store()
        store.connect()
        for field in INDEXES:
            try:
                store.ensure_index(field)
            except NotImplementedError:  # montydb has no indexes: every filter scans
                pass
        t0 = time.perf_counter()
        for i in range(0, len(docs), batch):
            store.update(docs[i : i + batch], key="key")
        rates.append(len(docs) / (time.perf_counter() - t0))
    ingest = statistics.median(rates)
    filters = {
        "equality (campaign, status)": {"campaign": "campaign-3", "status": "failed"},
        "range (formation energy < -0.1)": {"formation_energy_per_atom": {"$lt": -0.1}},
        "multikey ($all elements)": {"elements": {"$all": ["Cu", "Pt"]}, "round": 7},
        "top 10 by formation energy of one campaign": None,
    }
    out = {"ingest_docs_per_s": ingest, "ingest_range": (min(rates), max(rates)), "n": len(docs),
           "filters": {}}  # fmt: skip
    for name, flt in filters.items():
        times, n = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            if flt is None:
                res = list(
                    store.query(
                        {"campaign": "campaign-3"},
                        properties=["key", "formation_energy_per_atom"],
                        sort={"formation_energy_per_atom": 1},
                        limit=10,
                    )
                )
            else:
                res = list(store.query(flt, properties=["key", "formation_energy_per_atom"]))
            times.append(time.perf_counter() - t0)
            n = len(res)
        out["filters"][name] = {"median_ms": 1e3 * statistics.median(times), "hits": n}
    t0 = time.perf_counter()
    cnt = store.count({"status": "failed"})
    out["count_ms"] = 1e3 * (time.perf_counter() - t0)
    out["count_hits"] = cnt
    return out


def main() -> None:
    """Run the benchmark and print (and optionally write) a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="documents for SQLite/Memory")
    p.add_argument("--memory-n", type=int, default=5_000,
                   help="documents for MemoryStore (mongomock upserts scan: quadratic)")
    p.add_argument("--monty-n", type=int, default=2_000, help="documents for MontyStore")
    p.add_argument("--ingests", type=int, default=3,
                   help="fresh SQLite stores to ingest into (median and range reported)")
    p.add_argument("--out", type=Path, default=None, help="write a Markdown report here")
    args = p.parse_args()

    rng = random.Random(42)
    docs = [make_doc(i, rng) for i in range(args.n)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        count = iter(range(1000))
        rows.append(("htflow SQLiteStore (embedded default)", bench_store(
            lambda: SQLiteStore(Path(tmp) / f"bench{next(count)}.sqlite", "results", key="key"), docs,
            ingests=args.ingests)))
        rows.append(("maggma MemoryStore (mongomock, not persistent)", bench_store(
            lambda: MemoryStore(collection_name="results", key="key"), docs[: args.memory_n])))
        try:
            from maggma.stores import MontyStore

            monty = MontyStore("results", database_path=str(Path(tmp) / "monty"), key="key")
            rows.append(("maggma MontyStore (montydb)", bench_store(
                lambda: monty, docs[: args.monty_n], batch=100, repeats=3)))
        except ImportError:
            print("montydb not installed: MontyStore skipped (pip install montydb)")

    lines = [
        f"Host: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"command: `python benchmarks/store_benchmark.py --n {args.n} --memory-n {args.memory_n} "
        f"--monty-n {args.monty_n} --ingests {args.ingests}`",
        "",
        "| store | docs | ingest (docs/s, median [range]) | " + " | ".join(
            f"{k} (ms, hits)" for k in rows[0][1]["filters"]) + " | count (ms) |",
        "|---" * (4 + len(rows[0][1]["filters"])) + "|",
    ]
    for name, r in rows:
        cells = " | ".join(f"{v['median_ms']:.1f} ({v['hits']})" for v in r["filters"].values())
        lo, hi = r["ingest_range"]
        spread = f" [{lo:,.0f}–{hi:,.0f}]" if hi > lo else ""
        lines.append(f"| {name} | {r['n']:,} | {r['ingest_docs_per_s']:,.0f}{spread} | {cells} | "
                     f"{r['count_ms']:.1f} |")
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
