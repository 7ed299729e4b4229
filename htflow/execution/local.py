"""The ``local`` executor: evaluation flows one after another in the driver's process."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from jobflow import JobStore

from htflow.execution.base import EvalTask, Outcome, to_outcome
from htflow.execution.engine import run_unit, scratch_store, write_documents
from htflow.utils.threads import pin_threads


class LocalExecutor:
    """Run flows one after another in this process (the default).

    Each flow runs through :func:`htflow.execution.engine.run_unit`, the same code a
    Dask worker runs, and its job documents are written to ``store``.
    """

    def __init__(self, threads: int = 1, walltime: float | None = None):
        self.threads = threads
        self.walltime = walltime

    def run(self, tasks: list[EvalTask], store: JobStore) -> Iterator[Outcome]:

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
