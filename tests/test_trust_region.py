"""The trust region (``search.surrogate.trust_region``): its radius follows the campaign's rounds as
TuRBO's does, its candidates lie in the box around the best result, and a campaign with it records
the region every model round and is refused where it cannot work."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cli_in_process, run_campaign, two_objective_config, write_yaml

from htflow.campaign.validation import parse_config
from htflow.search import trust


def _history(values_per_round: list[list[float]]) -> list[tuple[int, float]]:
    return [(rnd, v) for rnd, vals in enumerate(values_per_round) for v in vals]


def test_the_radius_grows_after_two_improvements_and_shrinks_after_three_failures():
    initial = [[5.0, 4.0, 6.0, 7.0]]  # the initial design: leaves the radius alone
    assert trust.radius(_history(initial), 4) == trust.START
    assert trust.radius(_history([*initial, [3.0], [2.0]]), 4) == 2 * trust.START  # two improvements
    assert trust.radius(_history([*initial, [3.0], [2.0], [1.0], [0.5]]), 4) == 1.0  # at most the space
    stuck = [*initial, [9.0], [9.0], [9.0]]
    assert trust.radius(_history(stuck), 4) == trust.START / 2  # three rounds without improvement
    assert trust.radius(_history(initial + [[9.0]] * 9), 4) == trust.START / 8
    # below the smallest radius the region starts again
    assert trust.radius(_history(initial + [[9.0]] * 12), 4) == trust.START
    # an improvement resets the count of failures
    assert trust.radius(_history([*initial, [9.0], [9.0], [1.0], [9.0], [9.0]]), 4) == trust.START


def test_a_region_that_starts_from_the_whole_space_narrows_only_when_rounds_stop_improving():
    initial = [[5.0, 4.0, 6.0, 7.0]]
    assert trust.radius(_history([*initial, [3.0], [9.0]]), 4, start=1.0) == 1.0  # no box yet
    assert trust.radius(_history(initial + [[9.0]] * 3), 4, start=1.0) == 0.5
    assert trust.radius(_history(initial + [[9.0]] * 12), 4, start=1.0) == 1.0 / 16
    assert trust.radius(_history(initial + [[9.0]] * 15), 4, start=1.0) == 1.0  # restarts at its start
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert trust.inside(np.array([1.0, 0.0]), X, 1.0, 1).tolist() == [0, 1, 2]  # the whole space


def test_candidates_are_those_in_the_box_or_the_nearest():
    centre = np.array([0.5, 0.5, 0.0])
    X = np.array([[0.6, 0.4, 0.0], [0.5, 0.25, 0.25], [0.0, 0.0, 1.0], [0.25, 0.75, 0.0]])
    assert trust.inside(centre, X, 0.25, 1).tolist() == [0, 1, 3]
    assert trust.inside(centre, X, 0.1, 1).tolist() == [0]
    assert trust.inside(centre, X, 0.1, 3).tolist() == [0, 1, 3]  # too few inside: the three nearest


def _campaign(**surrogate) -> dict:
    return {
        "name": "tr",
        "space": {"elements": ["Cu", "Ni", "Pd", "Au"], "step": 0.125, "max_elements": 3},
        "structure": {"prototype": "fcc", "n_atoms": 32},
        "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
        "search": {"batch_size": 4, "budget": 28, "seed": 1,
                   "surrogate": {"initial": 8, "explain": False, **surrogate}},
        "store": "memory://",
    }


def test_a_campaign_chooses_inside_the_region_and_records_it():
    camp = run_campaign(_campaign(trust_region=True, trust_start=0.5))
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "tr"})
    results = {r["key"]: r for r in camp.results(status="done")}
    model = sorted((r for r in doc["rounds"] if r.get("phase") == "model"), key=lambda r: r["round"])
    assert len(model) == 5
    elements = ["Cu", "Ni", "Pd", "Au"]
    for r in model:
        region = r["trust_region"]
        before = [v for v in results.values() if v["round"] < r["round"]]
        best = min(before, key=lambda v: v["formation_energy_per_atom"])
        assert region["centre"] == best["key"] and region["inside"] <= region["of"]
        expected = trust.radius([(v["round"], v["formation_energy_per_atom"]) for v in before], 8)
        assert region["radius"] == expected
        if region["inside"] > 16:  # more than the four batches it keeps at least: the box itself
            centre = np.array([best["composition"].get(e, 0.0) for e in elements])
            for v in results.values():
                if v["round"] == r["round"]:
                    x = np.array([v["composition"].get(e, 0.0) for e in elements])
                    assert np.abs(x - centre).max() <= region["radius"] + 1e-9
    # the same seed proposes the same
    again = run_campaign(_campaign(trust_region=True, trust_start=0.5))
    assert sorted((r["round"], r["key"]) for r in again.results()) == sorted(
        (r["round"], r["key"]) for r in camp.results())


def test_by_default_a_grid_campaign_starts_its_region_from_the_whole_space():
    cfg = _campaign()  # trust_region: auto, trust_start: 1
    cfg["search"]["budget"] = 16
    camp = run_campaign(cfg)
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "tr"})
    model = [r for r in doc["rounds"] if r.get("phase") == "model"]
    assert [r["trust_region"]["radius"] for r in model] == [1.0, 1.0]
    assert all(r["trust_region"]["inside"] == r["trust_region"]["of"] for r in model)  # the whole space


def test_by_default_a_continuous_campaign_searches_without_a_region():
    cfg = {**_campaign(), "space": {"elements": ["Cu", "Ni", "Pd"], "mode": "continuous"},
           "calculator": {"name": "emt"}, "structure": {"prototype": "fcc", "n_atoms": 4}}
    cfg["search"].update(budget=10, batch_size=2, surrogate={"initial": 8, "explain": False, "evolve": 0,
                                                              "candidates": 64})
    camp = run_campaign(cfg)
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "tr"})
    model = [r for r in doc["rounds"] if r.get("phase") == "model"]
    assert model and not any("trust_region" in r for r in model)


@pytest.mark.parametrize("change, message", [
    ({"space": {"elements": ["Cu", "Ni", "Pd"], "mode": "continuous"}}, "narrows a grid or list of candidates"),
    ("two objectives", "centres on one best result"),
])
def test_where_it_cannot_work_it_is_one_line(tmp_path, change, message):
    if change == "two objectives":
        cfg = two_objective_config(str(tmp_path / "htflow-data"), surrogate={"trust_region": True})
    else:
        cfg = {**_campaign(trust_region=True), **change, "store": str(tmp_path / "htflow-data")}
    path = write_yaml(tmp_path / "c.yaml", cfg)
    code, out, err = cli_in_process(["validate", str(path)], cwd=tmp_path)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err
    assert not (tmp_path / "htflow-data").exists()


def test_a_campaign_stored_before_the_region_existed_resumes_without_it(tmp_path):
    from htflow.campaign.resume import with_defaults

    cfg = {**_campaign(), "store": str(tmp_path / "d")}
    stored = parse_config(cfg).model_dump(mode="json")
    assert stored["search"]["surrogate"]["trust_region"] == "auto"  # today's default
    for key in ("trust_region", "trust_start"):
        stored["search"]["surrogate"].pop(key)  # as an older htflow stored it
    old = with_defaults(stored)["search"]["surrogate"]
    assert (old["trust_region"], old["trust_start"]) == (False, 0.5)
    # a campaign stored with the settings keeps its own
    stored["search"]["surrogate"].update(trust_region=True, trust_start=0.25)
    assert with_defaults(stored)["search"]["surrogate"]["trust_start"] == 0.25
