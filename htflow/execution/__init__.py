"""Execution: where evaluation flows run (in process, on Dask workers, through FireWorks).

``engine`` runs one jobflow flow with jobflow's semantics on a private store;
``base`` defines tasks and outcomes; ``local``, ``dask_executor`` and
``fireworks_executor`` are the executors; ``registry.get_executor`` picks one
from the campaign file.
"""

from htflow.execution.base import EvalTask, Executor, Outcome
from htflow.execution.engine import UnitResult, run_unit
from htflow.execution.local import LocalExecutor
from htflow.execution.registry import get_executor

__all__ = ["EvalTask", "Executor", "LocalExecutor", "Outcome", "UnitResult", "get_executor", "run_unit"]
