"""Running a campaign again: a finished one stays finished (the same command computes nothing,
whatever made it stop, until the budget or the patience is raised), and a round resumed after an
interruption is counted whole."""

from __future__ import annotations

import pytest
from helpers import StopAfter, run_campaign, small_campaign_config

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.space.compositions import composition_key


class ChangesItsMind:
    """Proposes 3 compositions the first time it is asked in this process, then nothing, then
    3 more: a stand-in for a model whose pruning differs between runs."""

    calls = 0

    def propose(self, ctx, n):
        type(self).calls += 1
        if type(self).calls == 2:
            return []
        fresh = [p for p in ctx.pool if composition_key(ctx.builder.realise(p)) not in ctx.known]
        return fresh[:n]


def _cfg(budget: int) -> dict:
    cfg = small_campaign_config()
    cfg["search"] = {"sampler": "test_rerun:ChangesItsMind", "batch_size": 3, "budget": budget, "seed": 1}
    return cfg


def test_a_rerun_of_a_finished_campaign_computes_nothing_until_the_budget_is_raised():
    ChangesItsMind.calls = 0
    camp = run_campaign(_cfg(9))
    doc = camp.repo.doc()
    assert doc["stop_reason"] == "no candidates left in the space" and len(camp.results()) == 3
    assert doc["stopped_with"] == {"budget": 9, "patience": None}
    again = run_campaign(_cfg(9))  # the sampler would now propose 3 more
    assert len(again.results()) == 3 and again.repo.doc()["stop_reason"] == "no candidates left in the space"
    assert ChangesItsMind.calls == 2  # not even asked
    more = run_campaign(_cfg(12))  # a raised budget continues it, to the new budget
    assert len(more.results()) == 12 and more.repo.doc()["stop_reason"] == "budget spent"
    assert more.repo.doc()["stopped_with"] == {"budget": 12, "patience": None}


def test_a_round_resumed_after_an_interruption_counts_all_its_results():
    cfg = small_campaign_config()
    cfg["search"] = {"sampler": "sobol", "batch_size": 4, "budget": 8, "seed": 2}
    with pytest.raises(KeyboardInterrupt):
        Campaign(parse_config(cfg)).run(progress=StopAfter(2))  # round 1: 2 of 4 stored
    camp = run_campaign(cfg)
    rounds = {r["round"]: r for r in camp.repo.doc()["rounds"]}
    for rnd, summary in rounds.items():
        in_round = [r for r in camp.results() if r["round"] == rnd]
        assert summary["evaluated"] == len(in_round) == 4, (rnd, summary)
        assert summary["failed"] == sum(r["status"] == "failed" for r in in_round)


def test_the_stored_config_never_holds_a_store_password():
    from htflow.campaign.resume import open_campaign
    from htflow.schemas.config import CampaignConfig
    from htflow.store.db import CampaignDB
    from htflow.store.repository import CampaignRepository

    data = {**small_campaign_config(), "store": "mongodb://admin:hunter2@db.example:27017/?authSource=admin"}
    cfg = CampaignConfig.model_validate(data)
    db = CampaignDB(CampaignConfig.model_validate(small_campaign_config() | {"store": "memory://"}).store)
    repo = CampaignRepository(db, "small")
    with db:
        doc = open_campaign(repo, cfg, {})
        stored = repo.doc()
    for d in (doc, stored):
        assert "hunter2" not in str(d["config"]) and d["config"]["store"]["uri"].startswith("mongodb://***@db.example")
    with db:
        assert open_campaign(repo, cfg, {})["name"] == "small"  # the same campaign resumes
