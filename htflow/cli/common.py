"""What several commands share: the store from ``--store``, a campaign's document, number formats."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from htflow.errors import InputError
from htflow.schemas.config import StoreConfig, store_from_shorthand
from htflow.schemas.documents import CampaignDoc
from htflow.schemas.messages import format_validation_error
from htflow.settings import get_settings
from htflow.store.db import CampaignDB, check_store_config
from htflow.utils.text import suggest


def store_config(store: str | None, default_path: str = "htflow-data") -> StoreConfig:
    """The store ``--store`` names (else ``$HTFLOW_STORE``, else the embedded store in ``default_path``)."""
    store = store or get_settings().store
    data = store_from_shorthand(store) if store else {"backend": "embedded", "path": default_path}
    try:
        cfg = StoreConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, "--store", StoreConfig)) from None
    check_store_config(cfg)
    return cfg


def open_db(store: str | None) -> CampaignDB:
    """The campaign database of ``--store``; an error when there is none yet."""
    db = CampaignDB(store_config(store))
    if not db.exists():
        raise InputError(
            f"no htflow store at {db.location}; run a campaign first (htflow run FILE) or pass --store"
        )
    return db


def campaign_doc(db: CampaignDB, name: str) -> CampaignDoc:
    """A campaign's document, or an error naming the campaigns there are."""
    doc = db.campaigns.query_one({"name": name})
    if doc is None:
        names = db.campaigns.distinct("name")
        known = ", ".join(sorted(names)) or "none"
        raise InputError(f"no campaign named {name!r} in {db.location}{suggest(name, names)}; "
                         f"campaigns: {known}")
    return doc


def fmt(v: Any, digits: int = 4) -> str:
    """A value for a table cell or a CSV field."""
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.4g}"
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)
