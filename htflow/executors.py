"""Executors: where evaluation flows run.

An executor takes :class:`EvalTask` s and yields an :class:`Outcome` for each as
soon as it finishes, so the campaign can store it at once (a crash loses at
most the calculations in flight). The in-process executor runs each flow with
jobflow's ``run_locally`` on the campaign's ``JobStore``; the Dask and
FireWorks executors of the distributed-execution issue plug in here.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
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


def pin_threads(n: int = 1) -> None:
    """Limit BLAS/OpenMP threads of this process (EMT ran 8-14x slower oversubscribed)."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(n))
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


class _FailureLog(logging.Handler):
    """Collects the tracebacks jobflow's local manager logs for failed jobs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "failed with exception" in msg:
            self.messages.append(msg)


def summarise_error(text: str) -> str:
    """The last line of a traceback (the exception and its message)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "unknown error"


class LocalExecutor:
    """Run flows one after another in this process (the default)."""

    def __init__(self, threads: int = 1):
        self.threads = threads

    def run(self, tasks: list[EvalTask], store: JobStore) -> Iterator[Outcome]:
        from jobflow import run_locally

        pin_threads(self.threads)
        logger = logging.getLogger("jobflow.managers.local")
        for task in tasks:
            handler = _FailureLog()
            logger.addHandler(handler)
            old_level = logger.level
            logger.setLevel(logging.INFO)
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    responses = run_locally(task.flow, store=store, log=False)
                output = _flow_output(task.flow, responses)
                error = None
                if output is None:
                    error = summarise_error(handler.messages[-1]) if handler.messages else (
                        "flow finished without output"
                    )
            except Exception as exc:  # a calculation's failure is data, never fatal
                output, error = None, f"{type(exc).__name__}: {exc}"
                logging.getLogger(__name__).debug(traceback.format_exc())
            finally:
                logger.removeHandler(handler)
                logger.setLevel(old_level)
            yield Outcome(task.key, output, error, time.perf_counter() - start, task.meta)


def _flow_output(flow: Flow, responses: dict[str, dict[int, Any]]) -> dict | None:
    """The output of the flow's last job, if it ran."""
    last = flow.jobs[-1]
    resp = responses.get(last.uuid, {})
    if not resp:
        return None
    out = resp[max(resp)].output
    return out if isinstance(out, dict) else None


EXECUTORS = {"local": LocalExecutor}


def get_executor(name: str, **kwargs: Any) -> Executor:
    """An executor by name."""
    return EXECUTORS[name](**kwargs)
