"""Pareto fronts: equal to a brute-force definition, and drawn in the report for two objectives."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from htflow.analysis.pareto import pareto_mask


def brute_force(y: np.ndarray, goals: list[str]) -> np.ndarray:
    sign = np.array([1 if g == "minimize" else -1 for g in goals])
    z = y * sign
    out = []
    for i in range(len(z)):
        if np.isnan(z[i]).any():
            out.append(False)
            continue
        dominated = any(not np.isnan(z[j]).any() and all(z[j] <= z[i]) and any(z[j] < z[i])
                        for j in range(len(z)) if j != i)
        out.append(not dominated)
    return np.array(out)


@pytest.mark.parametrize("goals", [["minimize", "minimize"], ["minimize", "maximize"],
                                   ["maximize", "maximize", "minimize"]])
def test_front_equals_brute_force(goals):
    rng = np.random.default_rng(len(goals) * 7 + (goals[1] == "maximize"))
    for n in (1, 5, 60, 700):  # 700 spans two blocks
        y = rng.normal(size=(n, len(goals))).round(1)  # rounding makes ties and duplicates
        if n > 5:
            y[3] = np.nan
        assert (pareto_mask(y, goals) == brute_force(y, goals)).all()


def test_known_front():
    y = [[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5]]
    assert pareto_mask(y, ["minimize", "minimize"]).tolist() == [True, True, False, True, True, False]
    assert pareto_mask(y, ["maximize", "maximize"]).tolist() == [False, False, False, False, False, True]
    assert not pareto_mask(np.empty((0, 2)), ["minimize", "minimize"]).any()
    with pytest.raises(ValueError, match="must be"):
        pareto_mask([[1, 2, 3]], ["minimize", "minimize"])


@pytest.mark.slow
def test_report_draws_the_front_for_two_objectives(small_campaign, tmp_path):
    from htflow.campaign.loop import Campaign
    from htflow.campaign.validation import parse_config
    from htflow.report.html import write_report

    cfg = copy.deepcopy(small_campaign)
    cfg["objectives"] = [{"name": "formation_energy_per_atom", "goal": "minimize"},
                         {"name": "density", "goal": "maximize"}]
    camp = Campaign(parse_config(cfg, "test"))
    camp.run()
    with camp.db:
        page = write_report(camp.view(), tmp_path / "r").read_text()
    assert "<h2>Trade-off</h2>" in page and "density; the Pareto front" in page
    assert (tmp_path / "r" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
