"""The shapes of htflow's data: the campaign file (pure pydantic models) and the store's documents."""

from htflow.schemas.config import (
    CalculatorConfig,
    CampaignConfig,
    ExecutorConfig,
    ObjectiveConfig,
    SearchConfig,
    SpaceConfig,
    StoreConfig,
    StructureConfig,
    SurrogateConfig,
)
from htflow.schemas.documents import (
    CAMPAIGNS,
    CANDIDATES,
    JOBS,
    MATERIALS,
    RESULTS,
    CampaignDoc,
    CandidateDoc,
    ResultDoc,
    RoundDoc,
    Status,
)

__all__ = [
    "CAMPAIGNS", "CANDIDATES", "JOBS", "MATERIALS", "RESULTS", "CalculatorConfig", "CampaignConfig",
    "CampaignDoc", "CandidateDoc", "ExecutorConfig", "ObjectiveConfig", "ResultDoc", "RoundDoc",
    "SearchConfig", "SpaceConfig", "Status", "StoreConfig", "StructureConfig", "SurrogateConfig",
]
