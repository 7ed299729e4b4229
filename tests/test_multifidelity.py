"""Multi-fidelity: screening results promoted to a more expensive calculator, each fidelity stored
and labelled in its own campaign."""

from __future__ import annotations

import math

import pytest

from htflow.analysis.builder import MaterialsBuilder
from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.errors import InputError


def _mf(promote_calc: dict, **promote) -> dict:
    return {
        "name": "mf",
        "space": {"elements": ["Cu", "Ni", "Pd"], "step": 0.25, "max_elements": 2},
        "structure": {"prototype": "fcc", "n_atoms": 4},
        "calculator": {"name": "emt", "relax": False},  # screening: single points
        "promote": {"calculator": promote_calc, **promote},
        "search": {"sampler": "surrogate", "batch_size": 5, "budget": 15, "seed": 2,
                   "surrogate": {"initial": 5}},
        "store": "memory://",
    }


def _check_promotions(camp: Campaign, doc: dict, best: float, uncertain: float) -> None:
    child = camp.promoted
    screened = camp.results(status="done")
    promoted = {r["key"]: r for r in child.results()}
    expected_total = 0
    for rnd in sorted(r["round"] for r in doc["rounds"] if "evaluated" in r):
        # pure elements are never promoted: the promoted campaign has them as its references
        mine = sorted((r for r in screened if r["round"] == rnd and len(r["counts"]) > 1),
                      key=lambda r: (r["formation_energy_per_atom"], r["key"]))
        n_best = math.ceil(best * len(mine))
        want_best = {r["key"] for r in mine[:n_best]}
        got = {k for k, r in promoted.items() if r["round"] == rnd}
        assert want_best <= got, rnd
        summary = next(r for r in doc["rounds"] if r["round"] == rnd).get("promoted")
        assert summary, (rnd, doc["rounds"])
        assert summary["complete"] and set(summary["keys"]) == got and summary["campaign"] == child.name
        extra = got - want_best
        assert len(extra) <= math.ceil(uncertain * len(mine))
        expected_total += len(got)
    assert len(promoted) == expected_total
    assert all(len(r["counts"]) > 1 for r in promoted.values())
    with child.db:
        cands = {c["key"]: c for c in child.db.candidates.query({"campaign": child.name})}
    for key, r in promoted.items():
        assert r["status"] == "done"
        assert cands[key]["promoted_from"]["campaign"] == "mf"
        assert cands[key]["promoted_from"]["reason"] in ("best", "uncertain")
        assert r.get("e_above_hull") is not None


def test_single_points_promoted_to_relaxations_resumably(monkeypatch):
    """EMT single points screen; the best 40% and the most uncertain 20% of each round are relaxed.
    Killed before the first promotion, the campaign promotes that round on the next run."""
    cfg = parse_config(_mf({"name": "emt", "relax": True}, best=0.4, uncertain=0.2), "test")
    assert cfg.promoted_config().name == "mf.emt"
    real = Campaign.promote_round

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Campaign, "promote_round", boom)
    with pytest.raises(KeyboardInterrupt):
        Campaign(cfg).run()
    monkeypatch.setattr(Campaign, "promote_round", real)
    camp = Campaign(cfg)
    doc = camp.run()
    assert doc["state"] == "complete" and doc["promoted_to"] == "mf.emt"
    _check_promotions(camp, doc, 0.4, 0.2)
    # the relaxed energies are lower than (or equal to) the single points they came from
    single = {r["key"]: r["energy_per_atom"] for r in camp.results(status="done")}
    for r in camp.promoted.results(status="done"):
        assert r["energy_per_atom"] <= single[r["key"]] + 1e-6
        assert r["calculator"]["name"] == "emt"
    # uncertain picks only come from model rounds (their candidates carry the model's std)
    model_rounds = {r["round"] for r in doc["rounds"] if r.get("phase") == "model"}
    with camp.db:
        cands = list(camp.db.candidates.query({"campaign": "mf.emt"}))
    assert all(c["round"] in model_rounds for c in cands if c["promoted_from"]["reason"] == "uncertain")
    assert any(c["promoted_from"]["reason"] == "uncertain" for c in cands)
    # running again computes nothing more at either fidelity
    n = len(camp.promoted.results())
    Campaign(cfg).run()
    assert len(camp.promoted.results()) == n


def test_screen_with_emt_confirm_with_chgnet():
    pytest.importorskip("chgnet", reason="pip install 'htflow[mlip]'")
    cfg = parse_config(_mf({"name": "chgnet", "relax": True, "steps": 50, "options": {"device": "cpu"}},
                           best=0.2), "test")
    camp = Campaign(cfg)
    doc = camp.run()
    _check_promotions(camp, doc, 0.2, 0.0)
    child = camp.promoted
    cdoc = child.status()["doc"]
    assert cdoc["promoted_from"] == "mf" and cdoc["calculator"]["name"] == "chgnet"
    assert set(cdoc["references"]) == {"Cu", "Ni", "Pd"}  # CHGNet's own elemental references
    chg = child.results(status="done")
    assert chg and all(r["calculator"]["name"] == "chgnet" for r in chg)
    # the materials collection keeps the CHGNet result where both fidelities exist
    with camp.db:
        MaterialsBuilder(camp.db.results, camp.db.materials).build()
        mats = {m["source"]["key"]: m for m in camp.db.materials.query({})}
    for r in chg:
        assert mats[r["key"]]["source"]["campaign"] == "mf.chgnet"
        assert mats[r["key"]]["formation_energy_per_atom"] == pytest.approx(r["formation_energy_per_atom"])


@pytest.mark.parametrize(
    ("promote", "words"),
    [
        ({"calculator": {"name": "emt"}, "best": 0, "uncertain": 0}, ["nothing would be promoted"]),
        ({"calculator": {"name": "emt"}, "best": 1.5}, ["promote.best", "less than or equal to 1"]),
        ({"calculator": {"name": "chgnet", "options": {"device": "gpu"}}},
         ["promote.calculator.options.device", "'auto', 'cpu' or 'cuda'"]),
        ({"calculator": {"name": "vasp9"}}, ["promote.calculator.name", "unknown calculator 'vasp9'"]),
        ({"best": 0.5}, ["promote.calculator", "required field is missing"]),
    ],
)
def test_bad_promote_settings(promote, words):
    cfg = _mf({"name": "emt"})
    cfg["promote"] = promote
    with pytest.raises(InputError) as err:
        parse_config(cfg, "test")
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_the_multi_fidelity_example_runs_end_to_end():
    """workflows/multi-fidelity.yaml as shipped, one round (budget 8) in memory: EMT screens, CHGNet
    relaxes the best quarter in fcc-mf.chgnet."""
    pytest.importorskip("chgnet", reason="pip install 'htflow[mlip]'")
    import yaml
    from helpers import ROOT

    data = yaml.safe_load((ROOT / "workflows" / "multi-fidelity.yaml").read_text())
    data["search"]["budget"] = 8
    data["store"] = "memory://"
    camp = Campaign(parse_config(data, "multi-fidelity.yaml"))
    doc = camp.run()
    assert doc["promoted_to"] == "fcc-mf.chgnet"
    screened = sorted(camp.results(status="done"), key=lambda r: r["formation_energy_per_atom"])
    assert len(screened) == 8
    promoted = camp.promoted.results(status="done")
    assert {r["key"] for r in promoted} == {r["key"] for r in screened[:2]}
    assert all(r["calculator"]["name"] == "chgnet" and r["formation_energy_per_atom"] is not None
               for r in promoted)
