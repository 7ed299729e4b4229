"""dask-jobqueue end to end: a SLURM cluster file, with sbatch/scancel replaced by local stand-ins.

The stand-in ``sbatch`` runs the job script dask-jobqueue wrote (``#SBATCH``
header, prologue, ``python -m distributed.cli.dask_worker ...``) as a local
process group and prints a job id; ``scancel`` kills that group. Everything
else — the SLURMCluster, its scheduler, scaling, the workers connecting back —
is the real thing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from flowlib import add
from helpers import fake_slurm as _fake_slurm

from htflow.errors import CampaignError, InputError
from htflow.execution.dask_executor import DaskExecutor, load_cluster_file
from htflow.execution.engine import scratch_store

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

def test_templates_are_valid():
    for name in ("slurm", "pbs", "local"):
        spec = load_cluster_file(ROOT / "cluster" / f"{name}.yaml")
        assert spec.type == name


def test_unknown_jobqueue_setting_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"type": "slurm", "jobqueue": {"cores": 2, "qeueu": "x"}}))
    with pytest.raises(InputError, match=r"unknown setting\(s\) qeueu for SLURMCluster; allowed: .*queue"):
        load_cluster_file(path)
    path.write_text(yaml.safe_dump({"type": "lsf"}))
    with pytest.raises(InputError, match="type"):
        load_cluster_file(path)


def test_slurm_cluster_file_runs_flows(tmp_path, monkeypatch):
    queue = _fake_slurm(tmp_path, monkeypatch)
    cluster = tmp_path / "slurm.yaml"
    cluster.write_text(yaml.safe_dump({
        "type": "slurm",
        "jobqueue": {
            "queue": "debug", "cores": 2, "processes": 2, "memory": "2GB", "walltime": "00:10:00",
            "python": sys.executable, "local_directory": str(tmp_path / "scratch"),
            "job_script_prologue": [f"export PYTHONPATH={ROOT}:{ROOT / 'tests'}"],
            "scheduler_options": {"host": "127.0.0.1"},
        },
        "jobs": 1,
    }))
    lines = []
    ex = DaskExecutor(cluster=cluster, announce=lines.append)
    try:
        results = list(ex.run_units([(str(i), add(i, 1), {}) for i in range(50)], scratch_store()))
    finally:
        ex.close()
    assert sorted(r.output for r in results) == list(range(1, 51))
    assert any("slurm cluster" in line and "dashboard" in line for line in lines)
    [script] = [p for p in queue.glob("job-*.sh")]
    text = script.read_text()
    assert "#SBATCH -p debug" in text and "#SBATCH -t 00:10:00" in text
    assert "--nworkers 2" in text and "--nthreads 1" in text
    assert ex.threads_per_worker == 1


def test_no_sbatch_or_no_scheduler_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(CampaignError, match=r"slurm cluster but `sbatch` is not on PATH"):
        DaskExecutor(cluster=ROOT / "cluster" / "slurm.yaml").start()
    ex = DaskExecutor(address="tcp://127.0.0.1:9")
    ex.connect_timeout = 1
    with pytest.raises(CampaignError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        ex.start()
