"""Executors by the campaign file's ``executor.type``."""

from __future__ import annotations

from typing import Any

from htflow.execution.base import Executor
from htflow.execution.local import LocalExecutor
from htflow.schemas.config import ExecutorConfig


def get_executor(config: ExecutorConfig | None = None, announce: Any = None, tag: str = "") -> Executor:
    """The executor an ``ExecutorConfig`` (or ``None``: in-process) describes."""
    kind = getattr(config, "type", "local")
    if kind == "local":
        return LocalExecutor(walltime=getattr(config, "walltime", None))
    if kind == "dask":
        from htflow.execution.dask_executor import DaskExecutor  # heavy: distributed

        return DaskExecutor(
            workers=config.workers, threads_per_worker=config.threads_per_worker, address=config.address,
            cluster=config.cluster, max_attempts=config.max_attempts, walltime=config.walltime,
            pack=config.pack, announce=announce,
        )
    if kind == "fireworks":
        from htflow.execution.fireworks_executor import FireWorksExecutor  # heavy: fireworks (optional)

        return FireWorksExecutor(launchpad=config.launchpad, poll_seconds=config.poll_seconds,
                                 rlaunch=config.rlaunch, announce=announce, tag=tag)
    raise ValueError(f"unknown executor type {kind!r}")
