"""Helpers the tests share (import them from here, not from conftest)."""

from __future__ import annotations

import contextlib
import copy
import os
import stat
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def small_campaign_config() -> dict:
    """A campaign small enough for seconds of EMT: Cu-Ni-Pd on a 16-atom fcc cell."""
    return {
        "name": "small",
        "space": {"elements": ["Cu", "Ni", "Pd"], "step": 0.25, "max_elements": 3},
        "structure": {"prototype": "fcc", "n_atoms": 16},
        "calculator": {"name": "emt", "fmax": 0.05},
        "objectives": [{"name": "formation_energy_per_atom", "goal": "minimize"}],
        "search": {"sampler": "sobol", "batch_size": 3, "budget": 6, "seed": 3},
        "store": "htflow-data",
    }


def two_objective_config(store: str = "memory://", **search) -> dict:
    """Formation energy and density, both minimised: Al-Cu-Ni-Pd-Pt binaries on a 1/16 grid, looked up
    in the bundled EMT table (seconds)."""
    return {
        "name": "mo",
        "space": {"elements": ["Al", "Cu", "Ni", "Pd", "Pt"], "step": 0.0625, "max_elements": 2},
        "structure": {"prototype": "fcc", "n_atoms": 32},
        "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
        "objectives": [{"name": "formation_energy_per_atom", "goal": "minimize"},
                       {"name": "density", "goal": "minimize"}],
        "search": {"batch_size": 6, "budget": 30, "seed": 2, **search},
        "store": store,
    }


def write_yaml(path: Path, data: dict) -> Path:
    """``data`` as a YAML file at ``path`` (keys in the order given)."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def htflow_env(**extra: str) -> dict:
    """The environment of an ``htflow`` subprocess: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_campaign(cfg: dict, source: str = "test"):
    """Check a campaign mapping (a copy of it), run it to its end, return the Campaign."""
    from htflow.campaign.loop import Campaign
    from htflow.campaign.validation import parse_config

    camp = Campaign(parse_config(copy.deepcopy(cfg), source))
    camp.run()
    return camp


class StopAfter:
    """Progress callback that interrupts the run after ``n`` stored results (a Ctrl-C mid-round)."""

    def __init__(self, n: int):
        self.n = n

    def start_round(self, rnd, size, label=""):
        pass

    def advance(self, outcome, best):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt

    def end_round(self, summary):
        pass


def run_cli(argv: list[str], capsys) -> tuple[int, str, list[str]]:
    """``htflow ARGV`` in this process, as a fresh process would run it: (exit status, stdout,
    stderr lines)."""
    from htflow.cli import main
    from htflow.store import connections

    connections._CHECKED.clear()  # a new process checks each store file again
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


@contextlib.contextmanager
def serving(store: str, root: Path):
    """``htflow serve --store STORE`` as a real process on a free loopback port; yields its URL."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = htflow_env()
    env["OPTIMADE_LOG_DIR"] = str(root / "optimade-logs")
    log = open(root / "serve.log", "w")  # noqa: SIM115 (open for the server's life)
    proc = subprocess.Popen([sys.executable, "-m", "htflow.cli", "serve", "--store", store, "--port", str(port)],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/api/campaigns", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("htflow serve did not start: " + (root / "serve.log").read_text()) from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


SBATCH = """#!/usr/bin/env bash
set -e
script="${@: -1}"
copy="$FAKE_QUEUE/job-$(date +%s%N).sh"
cp "$script" "$copy"
echo "$@" > "$copy.args"
setsid bash "$copy" > "$copy.log" 2>&1 < /dev/null &
echo "Submitted batch job $!"
"""
SCANCEL = """#!/usr/bin/env bash
for id in "$@"; do kill -- "-$id" 2>/dev/null || true; done
"""


def fake_slurm(tmp_path: Path, monkeypatch) -> Path:
    """``sbatch``/``scancel`` stand-ins on PATH: sbatch copies the job script into the returned queue
    folder and runs it as a local process group; scancel kills the group."""
    bin_ = tmp_path / "fakebin"
    queue = tmp_path / "queue"
    bin_.mkdir()
    queue.mkdir()
    for name, text in (("sbatch", SBATCH), ("scancel", SCANCEL)):
        path = bin_ / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUEUE", str(queue))
    return queue


def cli_in_process(argv: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
    """``htflow ARGV`` in this process (in ``cwd``), as a fresh process would run it (each store file
    checked again): (exit status, stdout, stderr)."""
    import contextlib
    import io

    from htflow.cli import main
    from htflow.store import connections

    connections._CHECKED.clear()
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code or 0
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()
