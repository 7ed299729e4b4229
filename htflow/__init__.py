"""htflow: closed-loop composition screening on jobflow, atomate2 and maggma.

The public API is a handful of names; they are imported on first use so that
``import htflow`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Campaign": "htflow.campaign",
    "CampaignConfig": "htflow.config",
    "load_config": "htflow.config",
    "CompositionSpace": "htflow.space",
    "composition_key": "htflow.space",
    "StructureBuilder": "htflow.structures",
    "EvaluationMaker": "htflow.flows",
    "LocalExecutor": "htflow.executors",
    "CampaignDB": "htflow.store.db",
    "SQLiteStore": "htflow.store.sqlite",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'htflow' has no attribute {name!r}")
