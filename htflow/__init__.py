"""htflow: closed-loop composition design on jobflow, atomate2 and maggma.

The public API is the names in ``__all__``; they are imported on first use so
that ``import htflow`` stays cheap (the calculators pull in atomate2, which
takes seconds). Everything else may move between versions.

Run a campaign::

    import htflow
    cfg = htflow.load_config("workflows/demo.yaml")
    camp = htflow.run_campaign(cfg)
    df = htflow.results_frame(camp)

Extend it: a calculator is a :class:`CalculatorSpec` (or a jobflow ``Maker`` or an
ASE calculator class), a sampler anything with ``propose(ctx: ProposalContext, n)``
(the :class:`Generator` protocol), a surrogate anything with ``fit`` and
``predict -> (mean, std)``; name it in the campaign file by ``package.module:object``
or register it as an entry point (``htflow.calculators``, ``htflow.samplers``,
``htflow.surrogates``, ``htflow.featurizers``, ``htflow.acquisitions``).
See docs/python-api.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # run campaigns
    "load_config": "htflow.campaign.validation",
    "parse_config": "htflow.campaign.validation",
    "run_campaign": "htflow.api",
    "results_frame": "htflow.api",
    "open_store": "htflow.api",
    "Campaign": "htflow.campaign.loop",
    "CampaignConfig": "htflow.schemas.config",
    "StoreConfig": "htflow.schemas.config",
    # documents
    "Status": "htflow.schemas.documents",
    "ResultDoc": "htflow.schemas.documents",
    "CandidateDoc": "htflow.schemas.documents",
    "CampaignDoc": "htflow.schemas.documents",
    "RoundDoc": "htflow.schemas.documents",
    # spaces and structures
    "CompositionSpace": "htflow.space.compositions",
    "composition_key": "htflow.space.compositions",
    "StructureBuilder": "htflow.space.structures",
    # extension points
    "Generator": "htflow.search.context",
    "ProposalContext": "htflow.search.context",
    "Surrogate": "htflow.search.surrogates",
    "CalculatorSpec": "htflow.calculators.base",
    "EvaluationMaker": "htflow.calculators.flows",
    "Executor": "htflow.execution.base",
    "EvalTask": "htflow.execution.base",
    "Outcome": "htflow.execution.base",
    "LocalExecutor": "htflow.execution.local",
    # stores, settings, errors
    "CampaignDB": "htflow.store.db",
    "SQLiteStore": "htflow.store.sqlite",
    "Settings": "htflow.settings",
    "get_settings": "htflow.settings",
    "InputError": "htflow.errors",
    "CampaignError": "htflow.errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'htflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
