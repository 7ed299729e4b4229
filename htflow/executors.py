"""Executors: where evaluation flows run.

An executor takes :class:`EvalTask` s and yields an :class:`Outcome` for each as
soon as it finishes, so the campaign can store it at once (a crash loses at
most the calculations in flight). Every executor runs a flow through
:func:`htflow.engine.run_unit` (jobflow's semantics on a private store) and
writes the job documents to the campaign's ``JobStore`` from the driver:
``local`` in this process, ``dask`` on Dask workers
(:mod:`htflow.dask_executor`), ``fireworks`` through a FireWorks LaunchPad
(:mod:`htflow.fireworks`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobflow import Flow, JobStore

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


_PINNED: set[int] = set()


def pin_threads(n: int = 1) -> None:
    """Limit BLAS/OpenMP threads of this process (EMT ran 8-14x slower oversubscribed).

    The environment variables cover libraries loaded later; threadpoolctl
    limits the pools already loaded, once per process (a call scans every
    loaded library: ~10 ms with atomate2 imported).
    """
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(n))
    if n in _PINNED:
        return
    _PINNED.add(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # threadpoolctl is optional; the variables cover fresh processes
        pass


@dataclass
class EvalTask:
    """One candidate to evaluate."""

    key: str
    flow: Flow
    meta: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What became of one task: the flow output, or the error."""

    key: str
    output: dict | None
    error: str | None
    seconds: float
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.output is not None


class Executor(Protocol):
    """Runs evaluation flows."""

    def run(self, tasks: list[EvalTask], store: JobStore) -> Iterator[Outcome]:
        """Yield one outcome per task, in completion order."""

    def close(self) -> None:
        """Release workers and connections."""


class LocalExecutor:
    """Run flows one after another in this process (the default).

    Each flow runs through :func:`htflow.engine.run_unit`, the same code a
    Dask worker runs, and its job documents are written to ``store``.
    """

    def __init__(self, threads: int = 1, walltime: float | None = None):
        self.threads = threads
        self.walltime = walltime

    def run(self, tasks: list[EvalTask], store: JobStore) -> Iterator[Outcome]:
        from htflow.engine import run_unit, scratch_store, write_documents

        pin_threads(self.threads)
        extra = tuple(store.additional_stores)
        scratch = scratch_store(extra)
        for task in tasks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run_unit(task.key, task.flow, extra, self.walltime, store=scratch)
            write_documents(store, res.docs)
            yield to_outcome(res, task.meta)

    def close(self) -> None:
        """Nothing to stop."""


def to_outcome(res: Any, meta: dict) -> Outcome:
    """An evaluation outcome from a unit's result: the flow output must be a dict."""
    output = res.output if isinstance(res.output, dict) else None
    error = res.error
    if error is None and output is None:
        error = "the flow finished without output"
    return Outcome(res.key, None if error else output, error, res.seconds, meta)


def get_executor(config: Any = None, announce: Any = None, tag: str = "") -> Executor:
    """The executor an ``ExecutorConfig`` (or ``None``: in-process) describes."""
    kind = getattr(config, "type", "local")
    if kind == "local":
        return LocalExecutor(walltime=getattr(config, "walltime", None))
    if kind == "dask":
        from htflow.dask_executor import DaskExecutor

        return DaskExecutor(
            workers=config.workers, threads_per_worker=config.threads_per_worker, address=config.address,
            cluster=config.cluster, max_attempts=config.max_attempts, walltime=config.walltime,
            pack=config.pack, announce=announce,
        )
    if kind == "fireworks":
        from htflow.fireworks import FireWorksExecutor

        return FireWorksExecutor(launchpad=config.launchpad, poll_seconds=config.poll_seconds,
                                 rlaunch=config.rlaunch, announce=announce, tag=tag)
    raise ValueError(f"unknown executor type {kind!r}")
