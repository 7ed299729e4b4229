"""``htflow submit``: run a campaign's driver as a batch job (Slurm or PBS), its workers from there."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from htflow.cli.app import StoreOpt, app, console


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Campaign file (YAML).")],
    cluster: Annotated[Path, typer.Option(
        "--cluster", help="A batch-queue cluster file: cluster/slurm.yaml or cluster/pbs.yaml.")],
    store: StoreOpt = None,
    walltime: Annotated[str | None, typer.Option(
        help="The driver job's wall time, HH:MM:SS (default: the cluster file's).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the driver's and the workers' job scripts; submit nothing.")] = False,
) -> None:
    """Submit the campaign's driver as a batch job: nothing has to stay up on the login node.

    The driver job runs `htflow run FILE --cluster CLUSTER` in the cluster file's environment
    (its job_script_prologue) and submits the Dask workers from there. When the driver's wall time
    ends it stops cleanly; run the same command to continue the campaign from the store.
    Follow it with `htflow status FILE`.
    """
    from htflow.campaign.validation import load_config  # lazy: CLI start-up (atomate2)
    from htflow.execution import submit as batch  # lazy: as above
    from htflow.execution.cluster_file import load_cluster_file  # lazy: CLI start-up

    cfg = load_config(file, store=store, executor={"type": "dask", "cluster": str(cluster)})
    spec = load_cluster_file(cluster)
    python = str(spec.jobqueue.get("python") or sys.executable)
    workdir = Path.cwd()
    script = batch.driver_script(cfg.name, file.resolve(), cluster.resolve(), spec, python, workdir, walltime,
                                 store)
    out = console()
    if dry_run:
        out.print(f"# driver job of {cfg.name!r} ({spec.type}; would be submitted with "
                  f"{'sbatch' if spec.type == 'slurm' else 'qsub'})", highlight=False)
        out.print(script, highlight=False, markup=False, soft_wrap=True)
        out.print("# the workers' job script (the driver submits these through dask-jobqueue)",
                  highlight=False)
        out.print(batch.worker_script(spec, python), highlight=False, markup=False, soft_wrap=True)
        return
    batch.submitter(spec.type)  # before anything is written
    jobs = workdir / "htflow-jobs"
    jobs.mkdir(exist_ok=True)
    path = jobs / f"{cfg.name}-driver.sh"
    path.write_text(script)
    job = batch.submit(path, spec.type)
    out.print(f"submitted the driver of {cfg.name!r} as job {job} ({path}); follow it with "
              f"htflow status {file}; its log goes to {jobs}/", soft_wrap=True, highlight=False)
