"""The Python API's functions for notebook users: load a campaign, run or resume it, read its results.

>>> import htflow
>>> cfg = htflow.load_config("workflows/demo.yaml", store="memory://")   # doctest: +SKIP
>>> camp = htflow.run_campaign(cfg)                                       # doctest: +SKIP
>>> df = htflow.results_frame(camp.name, store=cfg.store)                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import load_config, parse_config
from htflow.schemas.config import CampaignConfig, StoreConfig, store_from_shorthand
from htflow.schemas.documents import Status
from htflow.store.db import CampaignDB
from htflow.store.repository import CampaignRepository, campaign_names

#: result fields in a results table, before the element fractions (columns ``x_<El>``)
FRAME_COLUMNS = ["key", "formula", "status", "round", "nelements", "n_atoms", "energy_per_atom",
                 "formation_energy_per_atom", "e_above_hull", "volume_per_atom", "density", "error"]


def open_store(store: str | StoreConfig | dict | None = None) -> CampaignDB:
    """The campaign database of a store: a folder (embedded), ``mongodb://...``, ``memory://``, a
    ``stores/*.yaml`` file, a :class:`StoreConfig`, or ``None`` for ``./htflow-data``."""
    if isinstance(store, StoreConfig):
        return CampaignDB(store)
    if isinstance(store, str):
        store = store_from_shorthand(store)
    return CampaignDB(StoreConfig.model_validate(store or {}))


def run_campaign(campaign: CampaignConfig | str | Path | dict, progress: Any = None,
                 db: CampaignDB | None = None) -> Campaign:
    """Run a campaign to its end, or resume it where it stopped; returns the :class:`Campaign`.

    ``campaign`` is a checked config, a campaign file or a mapping (checked here). ``progress``
    is an optional object with ``start_round``, ``advance`` and ``end_round`` (see the CLI's).
    ``db`` shares a store already open (a ``memory://`` store lives as long as its object).
    """
    if isinstance(campaign, dict):
        campaign = parse_config(campaign)
    elif not isinstance(campaign, CampaignConfig):
        campaign = load_config(campaign)
    camp = Campaign(campaign, db=db)
    camp.run(progress=progress)
    return camp


def results_frame(campaign: str | Campaign, store: str | StoreConfig | dict | CampaignDB | None = None,
                  status: Status | str | None = None) -> pd.DataFrame:
    """A campaign's results as a table: one row per result (:data:`FRAME_COLUMNS`, every objective
    of the campaign, and one ``x_<El>`` column of atomic fractions per element), in evaluation order."""
    if isinstance(campaign, Campaign):
        db, name, objectives = campaign.db, campaign.name, [o.name for o in campaign.config.objectives]
    else:
        db = store if isinstance(store, CampaignDB) else open_store(store)
        name = campaign
        doc = CampaignRepository(db, name).doc()
        if doc is None:
            raise KeyError(f"no campaign named {name!r} in {db.location}; campaigns: "
                           f"{', '.join(campaign_names(db)) or 'none'}")
        objectives = [o["name"] for o in doc["config"]["objectives"]]
    fields = list(dict.fromkeys([*FRAME_COLUMNS, *objectives, "composition", "created_at"]))
    rows = CampaignRepository(db, name).results(Status(status) if status else None, fields)
    rows.sort(key=lambda r: (r.get("round", 0), str(r.get("created_at"))))
    elements = sorted({el for r in rows for el in r.get("composition") or {}})
    table = [{**{c: r.get(c) for c in fields if c not in ("composition", "created_at")},
              **{f"x_{el}": (r.get("composition") or {}).get(el, 0.0) for el in elements}} for r in rows]
    return pd.DataFrame(table, columns=[*(c for c in fields if c not in ("composition", "created_at")),
                                        *(f"x_{el}" for el in elements)])
