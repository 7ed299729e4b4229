"""Helpers the tests share (import them from here, not from conftest)."""

from __future__ import annotations

import contextlib
import copy
import os
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
