"""API latency of ``htflow serve`` under load while a campaign writes, with and without plot
requests; and the time to take over a dead driver's lock.

Target (issue "Hardening"): p99 <= 300 ms for the JSON endpoints with 20 concurrent clients,
whether or not other clients ask for plots at the same time.

The store holds one finished campaign (48 results, with a model: every plot exists) and a second
campaign that an ``htflow run`` keeps writing to during the measurement (so the served campaign
list changes and the plots of the writing campaign are redrawn as its results arrive). Clients
are threads issuing GETs back to back over keep-alive connections (httpx).

Usage::

    python benchmarks/api_latency.py [--requests 400] [--clients 20] [--out docs/api-latency-latest.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
JSON_URLS = ["/api/campaigns", "/api/results?limit=20&sort=-created_at",
             '/api/results?filter={"formation_energy_per_atom":{"$lt":0}}&limit=50&fields=key,formation_energy_per_atom',
             '/api/results?filter={"key":{"$regex":"(a|aa)+$"}}&limit=5', "/api/campaigns/served",
             "/optimade/v1/structures?page_limit=10", "/optimade/v1/structures?filter=nelements=2"]
PLOT_URLS = [f"/api/campaigns/{c}/plots/{p}.png" for c in ("served", "writing")
             for p in ("learning-curve", "parity", "composition-map", "hull")]


def campaign(name: str, store: Path, budget: int, seed: int) -> dict:
    return {"name": name, "space": {"elements": ["Cu", "Ni", "Pd", "Au"], "step": 0.0625},
            "structure": {"prototype": "fcc", "n_atoms": 16}, "calculator": {"name": "emt"},
            "objectives": [{"name": "formation_energy_per_atom", "goal": "minimize"}],
            "search": {"sampler": "surrogate", "batch_size": 4, "budget": budget, "seed": seed},
            "store": str(store)}


def htflow(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "htflow.cli", *args], env=env, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(url: str, n: int, clients: int, plots: bool, progress: Progress) -> dict[str, list[float]]:
    """``n`` GETs from ``clients`` threads; latencies (ms) of JSON and plot requests."""
    rng = random.Random(1)
    paths = [rng.choice(PLOT_URLS) if plots and rng.random() < 0.3 else rng.choice(JSON_URLS)
             for _ in range(n)]
    times: dict[str, list[float]] = {"json": [], "plot": []}
    lock = threading.Lock()
    local = threading.local()
    task = progress.add_task(f"{n} requests, {clients} clients, plots {'on' if plots else 'off'}", total=n)

    def get(path: str) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=120)
        t0 = time.perf_counter()
        r = local.client.get(path)
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code >= 500:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
        with lock:
            times["plot" if path.endswith(".png") else "json"].append(ms)
            times.setdefault(path, []).append(ms)
        progress.advance(task)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(get, paths))
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else float("nan")


def lock_takeover(tmp: Path) -> float:
    """Seconds to take over the lock of a campaign whose driver on this host is gone."""
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB
    from htflow.store.locks import DriverLock

    db = CampaignDB(StoreConfig(path=str(tmp / "locks")))
    dead = DriverLock(db, "c")
    dead.me = {**dead.me, "pid": 2**22 + 12345}  # no such process
    dead.acquire()
    t0 = time.perf_counter()
    mine = DriverLock(db, "c")
    mine.acquire()
    elapsed = time.perf_counter() - t0
    assert mine.taken_over is not None
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="htflow-latency-") as tmp_name:
        tmp = Path(tmp_name)
        store = tmp / "store"
        (tmp / "served.yaml").write_text(yaml.safe_dump(campaign("served", store, 48, 1)))
        (tmp / "writing.yaml").write_text(yaml.safe_dump(campaign("writing", store, 4000, 2)))
        console.print("preparing: a 48-result campaign to serve (about a minute)")
        htflow("run", "-q", str(tmp / "served.yaml"), cwd=tmp).wait()
        htflow("build", "--store", str(store), cwd=tmp, stdout=subprocess.DEVNULL).wait()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = htflow("serve", "--store", str(store), "--port", str(port), cwd=tmp,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        writer = htflow("run", "-q", str(tmp / "writing.yaml"), cwd=tmp,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = []
        try:
            for _ in range(600):
                try:
                    httpx.get(url + "/api/campaigns", timeout=2)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(5)  # the writer is computing by now
            with Progress(console=console) as progress:
                for plots in (False, True):
                    t = load(url, args.requests, args.clients, plots, progress)
                    rows.append((plots, t))
        finally:
            writer.terminate()
            server.terminate()
            writer.wait()
            server.wait()
        takeover = lock_takeover(tmp)
    lines = ["# API latency under load (`benchmarks/api_latency.py`)", "",
             f"Command: `python benchmarks/api_latency.py --requests {args.requests} "
             f"--clients {args.clients}`; "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}; a campaign writing to the store throughout.", "",
             "| plot requests | endpoint kind | requests | p50 (ms) | p99 (ms) | max (ms) |",
             "|---|---|---|---|---|---|"]
    for plots, t in rows:
        for kind in ("json", "plot"):
            v = t[kind]
            if v:
                lines.append(f"| {'30% of requests' if plots else 'none'} | {kind} | {len(v)} | "
                             f"{pct(v, 50):.0f} | {pct(v, 99):.0f} | {max(v):.0f} |")
    lines += ["", f"Taking over the lock of a dead driver on this host: {takeover * 1000:.1f} ms "
              "(another host's lock: after `HTFLOW_LOCK_STALE_SECONDS` without a heartbeat, default 6 h)."]
    lines += ["", "Per endpoint (plot requests on):", "", "| endpoint | requests | p50 (ms) | p99 (ms) |",
              "|---|---|---|---|"]
    for path, v in sorted(rows[-1][1].items()):
        if path.startswith("/"):
            lines.append(f"| `{path}` | {len(v)} | {pct(v, 50):.0f} | {pct(v, 99):.0f} |")
    text = "\n".join(lines) + "\n"
    console.print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
