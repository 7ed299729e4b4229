"""``htflow submit``: the campaign's driver as a batch job of its own, so no login shell has to stay up.

The driver job runs ``htflow run FILE --cluster CLUSTER`` on a compute node, with the cluster
file's queue, account, extra directives and prologue (where the environment is activated), and
its own walltime. From there it submits its Dask workers with dask-jobqueue as usual. Slurm
signals the driver two minutes before its walltime (``--signal=B:TERM@120``; on PBS, the kill at
the walltime sends SIGTERM first); the driver stops as on Ctrl-C and releases the campaign, so
the same ``htflow submit`` continues it from the store.

The worker job script is dask-jobqueue's own (:func:`worker_script`). Its interpreter is
``jobqueue.python`` if the cluster file names one, else the driver's (the environment the
driver job activated), so the workers run the same htflow as the driver.
"""

from __future__ import annotations

import inspect
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from htflow.errors import CampaignError, InputError
from htflow.execution.cluster_file import ClusterFile

SUBMIT = {"slurm": "sbatch", "pbs": "qsub"}


def _slurm_header(name: str, jq: dict, walltime: str, log: Path) -> list[str]:
    lines = [f"#SBATCH -J htflow-{name}", "#SBATCH -n 1", "#SBATCH --cpus-per-task=1",
             "#SBATCH --mem=4G", f"#SBATCH -t {walltime}", f"#SBATCH -o {log}", "#SBATCH --signal=B:TERM@120"]
    if jq.get("queue"):
        lines.insert(1, f"#SBATCH -p {jq['queue']}")
    if jq.get("account"):
        lines.insert(1, f"#SBATCH -A {jq['account']}")
    return lines + [f"#SBATCH {d}" for d in jq.get("job_extra_directives") or []]


def _pbs_header(name: str, jq: dict, walltime: str, log: Path) -> list[str]:
    lines = [f"#PBS -N htflow-{name}"[:20], "#PBS -l select=1:ncpus=1:mem=4gb",
             f"#PBS -l walltime={walltime}", f"#PBS -o {log}", "#PBS -j oe"]
    if jq.get("queue"):
        lines.insert(1, f"#PBS -q {jq['queue']}")
    if jq.get("account"):
        lines.insert(1, f"#PBS -A {jq['account']}")
    return lines + [f"#PBS {d}" for d in jq.get("job_extra_directives") or []]


def driver_script(name: str, campaign_file: Path, cluster_file: Path, cluster: ClusterFile,
                  python: str, workdir: Path, walltime: str | None = None, store: str | None = None) -> str:
    """The driver job's script: directives, the cluster file's prologue, ``htflow run``."""
    if cluster.type not in SUBMIT:
        raise InputError(f"--cluster: {cluster_file} is a {cluster.type} cluster; htflow submit needs a "
                         "batch queue (type slurm or pbs)")
    jq = cluster.jobqueue
    walltime = walltime or jq.get("walltime") or "24:00:00"
    if not re.fullmatch(r"(\d+-)?\d{1,3}:\d{2}(:\d{2})?", str(walltime)):
        raise InputError(f"--walltime: {walltime!r} is not a wall time; use HH:MM:SS (or D-HH:MM:SS on "
                         "Slurm)")
    log_name = f"{name}-driver-%j.out" if cluster.type == "slurm" else f"{name}-driver.out"
    log = workdir / "htflow-jobs" / log_name
    header = (_slurm_header if cluster.type == "slurm" else _pbs_header)(name, jq, str(walltime), log)
    run = [python, "-m", "htflow.cli", "run", str(campaign_file), "--cluster", str(cluster_file), "--quiet"]
    if store:
        run += ["--store", store]
    lines = ["#!/usr/bin/env bash", *header, "", "# the cluster file's prologue (the environment)",
             *(jq.get("job_script_prologue") or []), f"cd {shlex.quote(str(workdir))}",
             "exec " + " ".join(shlex.quote(a) for a in run)]
    return "\n".join(lines) + "\n"


def worker_script(cluster: ClusterFile, python: str) -> str:
    """dask-jobqueue's job script for the workers (the scheduler's address is filled in at run time)."""
    from dask_jobqueue.core import Job  # heavy: dask
    from dask_jobqueue.pbs import PBSJob  # heavy: dask
    from dask_jobqueue.slurm import SLURMJob  # heavy: dask

    job = {"slurm": SLURMJob, "pbs": PBSJob}[cluster.type]
    takes = set(inspect.signature(job.__init__).parameters) | set(inspect.signature(Job.__init__).parameters)
    settings = {k: v for k, v in cluster.jobqueue.items() if k in takes}  # not the cluster's own settings
    settings.setdefault("python", python)
    return job(scheduler="tcp://DRIVER-NODE:8786", name="htflow-worker", **settings).job_script()


def submitter(kind: str) -> str:
    """``sbatch`` or ``qsub``; :class:`CampaignError` when it is not on PATH."""
    command = SUBMIT[kind]
    if shutil.which(command) is None:
        raise CampaignError(f"`{command}` is not on PATH: run htflow submit on the cluster's login node "
                            "(or use --dry-run to see the scripts)")
    return command


def submit(script: Path, kind: str) -> str:
    """Submit a job script with ``sbatch`` or ``qsub``; the job id."""
    command = submitter(kind)
    done = subprocess.run([command, str(script)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split())[:300]
        raise CampaignError(f"{command} refused the driver job (exit {done.returncode}): {why}")
    found = re.search(r"(\d+(\.[\w.-]+)?)\s*$", done.stdout.strip())
    return found.group(1) if found else done.stdout.strip()
