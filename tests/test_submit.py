"""``htflow submit``: the driver as a batch job (stand-in sbatch running it here), the job scripts of
--dry-run, and SIGTERM (a job's wall time) stopping a driver cleanly, its lock released."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml
from helpers import ROOT, cli_in_process, fake_slurm, htflow_env, run_cli, small_campaign_config, write_yaml


def _cluster(tmp_path, kind: str = "slurm", **extra) -> str:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump({"type": kind, "jobqueue": {
        "queue": "debug", "account": "chem42", "cores": 2, "processes": 2, "memory": "2GB",
        "walltime": "00:20:00", "python": sys.executable, "local_directory": str(tmp_path / "scratch"),
        "job_script_prologue": [f"export PYTHONPATH={ROOT}", "source /opt/envs/htflow/bin/activate"],
        **({"scheduler_options": {"host": "127.0.0.1"}} if kind == "slurm" else {}), **extra}, "jobs": 1}))
    return str(path)


def test_dry_run_prints_the_driver_and_worker_scripts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    file = write_yaml(tmp_path / "c.yaml", small_campaign_config())
    cluster = _cluster(tmp_path)
    code, out, err = run_cli(["submit", str(file), "--cluster", cluster, "--dry-run", "--walltime", "2-00:00:00"],
                             capsys)
    assert code == 0, err
    driver, worker = out.split("# the workers' job script")
    for line in ("#SBATCH -J htflow-small", "#SBATCH -p debug", "#SBATCH -A chem42", "#SBATCH -t 2-00:00:00",
                 "#SBATCH --signal=B:TERM@120", "source /opt/envs/htflow/bin/activate", f"cd {tmp_path}",
                 f"exec {sys.executable} -m htflow.cli run {file} --cluster {cluster} --quiet"):
        assert line in driver.splitlines(), line
    assert "#SBATCH -p debug" in worker and "source /opt/envs/htflow/bin/activate" in worker
    assert f"{sys.executable} -m distributed.cli.dask_worker" in worker  # the interpreter `python:` names
    assert not (tmp_path / "htflow-jobs").exists()  # a dry run writes nothing
    code, out, _ = run_cli(["submit", str(file), "--cluster", _cluster(tmp_path, "pbs"), "--dry-run"], capsys)
    assert code == 0 and "#PBS -q debug" in out and "#PBS -l walltime=00:20:00" in out and "#PBS -A chem42" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--cluster", str(ROOT / "cluster" / "local.yaml")], "htflow submit needs a batch queue (type slurm or pbs)"),
    (["--cluster", "{slurm}", "--walltime", "forever"], "--walltime: 'forever' is not a wall time"),
])
def test_submit_refuses_what_cannot_be_submitted(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    file = write_yaml(tmp_path / "c.yaml", small_campaign_config())
    argv = [a.replace("{slurm}", _cluster(tmp_path)) for a in argv]
    code, _, err = run_cli(["submit", str(file), *argv, "--dry-run"], capsys)
    assert code == 2 and any(message in line for line in err), err


def _results(db) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


@pytest.mark.slow
def test_the_driver_runs_as_a_batch_job_and_submits_its_workers(tmp_path, monkeypatch, capsys):
    queue = fake_slurm(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    cfg = {**small_campaign_config(), "search": {"sampler": "sobol", "batch_size": 2, "budget": 4, "seed": 1},
           "store": str(tmp_path / "htflow-data")}
    file = write_yaml(tmp_path / "c.yaml", cfg)
    code, out, err = run_cli(["submit", str(file), "--cluster", _cluster(tmp_path)], capsys)
    assert code == 0, err
    assert "submitted the driver of 'small' as job " in out
    db = tmp_path / "htflow-data" / "htflow.sqlite"
    deadline = time.time() + 400
    while True:
        con = sqlite3.connect(db) if db.exists() else None
        state = None
        if con is not None:
            try:
                row = con.execute("SELECT doc FROM campaigns").fetchone()
                state = json.loads(row[0]).get("state") if row else None
            except sqlite3.OperationalError:
                pass
            finally:
                con.close()
        if state == "complete":
            break
        if time.time() > deadline:  # a hang guard, not a speed check
            pytest.fail("the driver job did not finish: " + str([p.read_text()[-2000:] for p in queue.glob("*.log")]))
        time.sleep(1)
    assert _results(db) == 4
    scripts = sorted(p.read_text() for p in queue.glob("job-*.sh"))
    assert any("#SBATCH -J htflow-small" in s for s in scripts)  # the driver
    assert any("distributed.cli.dask_worker" in s for s in scripts)  # its workers, submitted from the driver job


def test_sigterm_stops_a_driver_cleanly_and_releases_the_campaign(tmp_path):
    cfg = {**small_campaign_config(), "search": {"sampler": "sobol", "batch_size": 3, "budget": 9, "seed": 3}}
    file = write_yaml(tmp_path / "c.yaml", cfg)
    db = tmp_path / "htflow-data" / "htflow.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "htflow.cli", "run", str(file), "--quiet"], cwd=tmp_path,
                            env=htflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _results(db) < 1:
        assert proc.poll() is None, proc.stderr.read()
        if time.time() > deadline:  # a hang guard, not a speed check
            pytest.fail("the campaign made no progress in 300 s")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # what Slurm sends at the end of the wall time
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    con = sqlite3.connect(db)
    locks = con.execute("SELECT COUNT(*) FROM locks").fetchone()[0]
    con.close()
    assert locks == 0  # released: the next job continues without --force
    code, _, err = cli_in_process(["run", str(file), "--quiet"], cwd=tmp_path)  # the next job (in this process)
    assert code == 0, err
    assert _results(db) == 9


def test_no_sbatch_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    file = write_yaml(tmp_path / "c.yaml", small_campaign_config())
    code, _, err = run_cli(["submit", str(file), "--cluster", _cluster(tmp_path)], capsys)
    assert code == 1 and err == ["error: `sbatch` is not on PATH: run htflow submit on the cluster's login node "
                                 "(or use --dry-run to see the scripts)"]
    assert not (tmp_path / "htflow-jobs").exists()
