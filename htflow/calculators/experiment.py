"""The ``experiment`` calculator: a laboratory measures each round (or a table replays it).

Nothing is computed: ``htflow run`` proposes a round and writes its worksheet, the laboratory makes
and measures the samples, and ``htflow ingest`` records what it measured (see
:mod:`htflow.campaign.experiment`). The objectives are whatever the laboratory measures (any name,
with a unit), so this spec accepts every property name and has no Maker.
"""

from __future__ import annotations

from jobflow import Maker

from htflow.calculators.base import CalculatorSpec
from htflow.errors import InputError
from htflow.schemas.config import CalculatorConfig, CampaignConfig
from htflow.space.compositions import CompositionSpace


def _no_maker(cfg: CalculatorConfig) -> Maker:
    raise InputError("calculator experiment: samples are measured in a laboratory, not computed by a Maker")


class ExperimentSpec(CalculatorSpec):
    """Laboratory measurements through worksheets (``options.oracle``: replayed from a table)."""

    def __init__(self) -> None:
        super().__init__("experiment", _no_maker, properties=None, meta={"method": "laboratory measurement"})

    def check(self, campaign: CampaignConfig, space: CompositionSpace) -> None:
        if campaign.promote is not None:
            raise InputError("promote: an experiment campaign has nothing to promote to; promote a computed "
                             "campaign's best instead (calculator emt, chgnet, ...)")

    def metadata(self) -> dict:
        return {"name": self.name, **self.meta}
