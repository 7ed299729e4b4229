"""Stores: where candidates, results, campaigns and jobflow outputs live.

``db.CampaignDB`` opens the collections of one store (embedded SQLite by
default, MongoDB, or memory); ``sqlite.SQLiteStore`` is the embedded maggma
store (``codec``, ``connections``, ``planning`` and ``query`` are its parts);
``repository.CampaignRepository`` holds the queries on one campaign that the
loop, the CLI, the report and the server share.
"""

from htflow.store.db import CampaignDB, check_store_config
from htflow.store.repository import CampaignRepository
from htflow.store.sqlite import SQLiteStore

__all__ = ["CampaignDB", "CampaignRepository", "SQLiteStore", "check_store_config"]
