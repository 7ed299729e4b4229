"""Crash safety: SIGKILL a running campaign mid-round, run it again, lose and repeat nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import orjson
import psutil
import pytest
from helpers import cli_in_process, htflow_env, write_yaml

pytestmark = pytest.mark.slow


def _results(db) -> dict[str, dict]:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT doc FROM results").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return {}
    finally:
        con.close()
    docs = [orjson.loads(r[0]) for r in rows]
    return {d["key"]: d for d in docs}


def _statuses(db) -> list[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return [orjson.loads(r[0])["status"] for r in con.execute("SELECT doc FROM candidates")]
    finally:
        con.close()


@pytest.mark.parametrize(("kill_after", "executor"), [(5, "local"), (3, "dask")])
def test_sigkill_mid_round_then_resume(kill_after, executor, small_campaign, tmp_path):
    cfg = dict(small_campaign)
    cfg["search"] = {"sampler": "sobol", "batch_size": 4, "budget": 9, "seed": 1}
    cfg["executor"] = {"type": executor, **({"workers": 2} if executor == "dask" else {})}
    file = write_yaml(tmp_path / "c.yaml", cfg)
    db = tmp_path / "htflow-data" / "htflow.sqlite"
    cmd = [sys.executable, "-m", "htflow.cli", "run", str(file), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=htflow_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 300
    while len(_results(db)) < kill_after:
        assert proc.poll() is None, proc.stderr.read().decode()
        if time.time() > deadline:
            pytest.fail("the campaign made no progress in 300 s")
        time.sleep(0.05)
    workers = psutil.Process(proc.pid).children(recursive=True)
    if executor == "dask":
        assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=60)  # Dask workers notice their parent is gone
    assert not alive, f"worker processes outlived the killed driver: {alive}"
    before = _results(db)
    assert 0 < len(before) < 9
    assert any(s in ("proposed", "running") for s in _statuses(db)), "killed mid-round"

    # the rest runs locally, in this process: resuming reads the store, whichever executor ran before (a
    # second Dask cluster, or a second process importing htflow, would add seconds for nothing tested)
    code, _, err = cli_in_process([*cmd[3:], "--executor", "local"], cwd=tmp_path)
    assert code == 0, err
    after = _results(db)
    assert len(after) == 9
    for key, doc in before.items():  # finished work kept, not recomputed
        assert after[key]["created_at"] == doc["created_at"]
        assert after[key]["energy_per_atom"] == doc["energy_per_atom"]
    con = sqlite3.connect(db)
    n_rows = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    n_keys = con.execute("SELECT COUNT(DISTINCT json_extract(doc, '$.key')) FROM results").fetchone()[0]
    con.close()
    assert n_rows == n_keys == 9  # exactly one result document per composition
    assert set(_statuses(db)) == {"done"}


def _terminal_child() -> None:
    """As a command started in a terminal: its own foreground process group, Ctrl-C not ignored."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_ctrl_c_stops_cleanly_and_says_how_to_continue(executor, small_campaign, tmp_path):
    cfg = {**small_campaign, "search": {"budget": 9, "batch_size": 3},
           "executor": {"type": executor, **({"workers": 2} if executor == "dask" else {})}}
    file = write_yaml(tmp_path / "c.yaml", cfg)
    db = tmp_path / "htflow-data" / "htflow.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "htflow.cli", "run", str(file), "--quiet"], cwd=tmp_path, env=htflow_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_terminal_child,
    )  # fmt: skip
    deadline = time.time() + 300
    while len(_results(db)) < 1:
        assert proc.poll() is None
        if time.time() > deadline:
            pytest.fail("the campaign made no progress in 300 s")
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group, Dask workers too
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "run the same command to continue" in err
    assert "Traceback" not in err + out and "KeyboardInterrupt" not in err + out
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive
