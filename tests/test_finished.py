"""A finished campaign stays finished: the same command run again computes nothing, whatever
made it stop, until the budget or the patience is raised."""

from __future__ import annotations

from helpers import run_campaign, small_campaign_config

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
    cfg["search"] = {"sampler": "test_finished:ChangesItsMind", "batch_size": 3, "budget": budget, "seed": 1}
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
