"""Import speed: rows per second of ``htflow import`` for a large CSV, and the memory peak.

Target (issue "Real data"): >= 20,000 rows/s into the embedded store for a 100,000-row CSV.

The table is synthetic but shaped like a lab's: a formula of 3-6 of 12 elements with at% amounts,
a hardness with its uncertainty, a DOI and a processing route; 1 row in 5 repeats an earlier
composition (a repeated measurement). The command is run as a user runs it (a subprocess), timed
end to end, and its peak resident memory read from the kernel (``ru_maxrss`` of the child).

Usage::

    python benchmarks/import_speed.py [--rows 100000] [--out docs/import-speed-latest.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ELEMENTS = ["Al", "Co", "Cr", "Cu", "Fe", "Hf", "Mo", "Nb", "Ni", "Ta", "Ti", "Zr"]


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    formulas: list[str] = []
    with path.open("w") as f:
        f.write("formula,HV,HV_err,doi,processing\n")
        for i in range(rows):
            if formulas and rng.random() < 0.2:
                formula = rng.choice(formulas)
            else:
                els = rng.sample(ELEMENTS, rng.randint(3, 6))
                cuts = sorted(rng.sample(range(1, 1000), len(els) - 1))
                parts = [b - a for a, b in zip([0, *cuts], [*cuts, 1000], strict=True)]
                formula = "".join(f"{el}{p / 10:g}" for el, p in zip(els, parts, strict=True) if p)
                formulas.append(formula)
            f.write(f"{formula},{rng.uniform(100, 800):.1f},{rng.uniform(1, 20):.1f},10.1000/x.{i % 997},"
                    f"{rng.choice(['cast', 'annealed', 'sputtered'])}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="htflow-import-") as tmp_name:
        tmp = Path(tmp_name)
        table = tmp / "lab.csv"
        write_table(table, args.rows)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "htflow.cli", "import", str(table), "--campaign", "lab", "--property",
               "HV=hardness", "--uncertainty", "HV_err=hardness", "--composition-unit", "at%",
               "--store", str(tmp / "store")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        elapsed = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr)
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        again_s = time.perf_counter() - t0
        size_mb = table.stat().st_size / 1e6
        db_mb = (tmp / "store" / "htflow.sqlite").stat().st_size / 1e6
    lines = ["# Import speed (`benchmarks/import_speed.py`)", "",
             f"Command: `python benchmarks/import_speed.py --rows {args.rows}`; "
             f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.", "",
             "| rows | CSV (MB) | store (MB) | time (s) | rows/s | peak memory (MiB) | same file again (s) |",
             "|---|---|---|---|---|---|---|",
             f"| {args.rows} | {size_mb:.1f} | {db_mb:.1f} | {elapsed:.1f} | {args.rows / elapsed:,.0f} | "
             f"{peak_mib:.0f} | {again_s:.1f} |", "",
             "Time is the whole command as a user runs it (start-up, reading, checking every row, "
             "storing), in a subprocess.", "", "Output of the first run:", "", "```",
             proc.stdout.strip(), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
