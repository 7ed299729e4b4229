"""Executors: where evaluation flows run.

An executor takes :class:`EvalTask` s and yields an :class:`Outcome` for each as
soon as it finishes, so the campaign can store it at once (a crash loses at
most the calculations in flight). Every executor runs a flow through
:func:`htflow.execution.engine.run_unit` (jobflow's semantics on a private store) and
writes the job documents to the campaign's ``JobStore`` from the driver:
``local`` in this process (:mod:`htflow.execution.local`), ``dask`` on Dask workers
(:mod:`htflow.execution.dask_executor`), ``fireworks`` through a FireWorks LaunchPad
(:mod:`htflow.execution.fireworks_executor`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobflow import Flow, JobStore


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


def to_outcome(res: Any, meta: dict) -> Outcome:
    """An evaluation outcome from a unit's result: the flow output must be a dict."""
    output = res.output if isinstance(res.output, dict) else None
    error = res.error
    if error is None and output is None:
        error = "the flow finished without output"
    return Outcome(res.key, None if error else output, error, res.seconds, meta)
