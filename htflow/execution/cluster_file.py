"""Cluster files (``cluster/*.yaml``): which Dask cluster runs the workers, its settings and scaling.

The settings under ``jobqueue`` are checked against the signature of the named
dask-jobqueue (or distributed) class, so a typo is an error before any job is
submitted.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from htflow.errors import InputError
from htflow.schemas.messages import format_validation_error
from htflow.utils.yaml import read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdaptConfig(_Strict):
    """Adaptive scaling of a batch-queue cluster, in queue jobs."""

    minimum_jobs: Annotated[int, Field(ge=0)] = 0
    maximum_jobs: Annotated[int, Field(ge=1)] = 4


class ClusterFile(_Strict):
    """A ``cluster/*.yaml`` file: which dask-jobqueue cluster, its settings and its scaling."""

    type: Literal["slurm", "pbs", "local"]
    jobqueue: dict[str, Any] = Field(default_factory=dict)
    adapt: AdaptConfig | None = None
    jobs: Annotated[int, Field(ge=1)] | None = None


JOBQUEUE_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}


def load_cluster_file(path: str | Path) -> ClusterFile:
    """Read and check a cluster file; errors name the file and the field."""

    data = read_yaml(Path(path))
    try:
        spec = ClusterFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, str(path), ClusterFile)) from None

    if spec.type == "local":
        import distributed  # heavy: only to read its signatures

        allowed = set()
        for klass in (distributed.LocalCluster, distributed.Nanny, distributed.Worker):  # worker_kwargs
            allowed |= set(inspect.signature(klass.__init__).parameters)
        name = "LocalCluster"
    else:
        import dask_jobqueue  # heavy: only to read its signatures

        cls = getattr(dask_jobqueue, JOBQUEUE_CLASSES[spec.type])
        allowed = {"scheduler_options"}
        for klass in (*cls.job_cls.__mro__, cls):
            if klass.__init__ is not object.__init__:
                allowed |= set(inspect.signature(klass.__init__).parameters)
        name = cls.__name__
    allowed -= {"self", "args", "kwargs", "worker_kwargs", "name", "scheduler", "config_name"}
    unknown = sorted(set(spec.jobqueue) - allowed)
    if unknown:
        raise InputError(
            f"{path}: jobqueue: unknown setting(s) {', '.join(unknown)} for {name}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return spec
