"""End-to-end campaigns with real EMT on the embedded store."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from ase.calculators.emt import EMT
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.errors import InputError
from htflow.store.db import CampaignDB

pytestmark = pytest.mark.slow


def _run(cfg_dict: dict) -> Campaign:
    camp = Campaign(parse_config(copy.deepcopy(cfg_dict)))
    camp.run()
    return camp


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One small campaign, run once for the tests that only read it."""
    import os

    from helpers import ROOT  # noqa: F401  (tests folder on sys.path)

    folder = tmp_path_factory.mktemp("finished")
    old = os.getcwd()
    os.chdir(folder)
    cfg = {
        "name": "small",
        "space": {"elements": ["Cu", "Ni", "Pd"], "step": 0.25},
        "structure": {"prototype": "fcc", "n_atoms": 16},
        "search": {"sampler": "sobol", "batch_size": 3, "budget": 7, "seed": 3},
        "store": str(folder / "htflow-data"),
    }
    try:
        camp = _run(cfg)
        with camp.db:
            results = list(camp.db.results.query({"campaign": "small"}))
            cands = list(camp.db.candidates.query({"campaign": "small"}))
            doc = camp.db.campaigns.query_one({"name": "small"})
        # nothing is left in the user's folder but the store (atomate2 writes an .xyz by default)
        assert sorted(p.name for p in folder.iterdir()) == ["htflow-data"]
    finally:
        os.chdir(old)
    return cfg, results, cands, doc


def test_campaign_spends_budget_once_per_composition(finished):
    _cfg, results, cands, doc = finished
    keys = [r["key"] for r in results]
    assert len(keys) == len(set(keys)) == 7
    assert {c["key"] for c in cands} == set(keys)
    assert all(c["status"] == "done" for c in cands)
    assert doc["state"] == "complete" and doc["stop_reason"] == "budget spent"
    assert [r["round"] for r in doc["rounds"]] == [1, 2, 3]
    assert set(doc["references"]) == {"Cu", "Ni", "Pd"}


def test_result_documents_are_complete_and_consistent(finished):
    _, results, _, doc = finished
    refs = {el: r["energy_per_atom"] for el, r in doc["references"].items()}
    for r in results:
        s = Structure.from_dict(r["structure"])
        assert s.composition.get_el_amt_dict() == r["counts"]
        assert r["composition"] == {el: n / 16 for el, n in r["counts"].items()}
        ef = r["energy_per_atom"] - sum(x * refs[el] for el, x in r["composition"].items())
        assert r["formation_energy_per_atom"] == pytest.approx(ef, abs=1e-12)
        assert r["calculator"]["name"] == "emt" and r["timings"]["evaluation_s"] > 0
        assert r["error"] is None and r["converged"] is True
    assert doc["best"]["value"] == min(r["formation_energy_per_atom"] for r in results)


def test_energies_equal_ase_emt_on_the_relaxed_structures(finished):
    _, results, _, doc = finished
    docs = results + [ref["result"] for ref in doc["references"].values()]
    pure = [d for d in docs if len(Structure.from_dict(d["structure"]).composition) == 1]
    alloys = [d for d in docs if len(Structure.from_dict(d["structure"]).composition) > 1]
    assert pure and alloys
    for d in docs:
        atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(d["structure"]))
        atoms.calc = EMT()
        e = atoms.get_potential_energy() / len(atoms)
        assert abs(e - d["energy_per_atom"]) < 1e-6
        # relaxed: forces small (fmax 0.05 eV/Å)
        assert np.abs(atoms.get_forces()).max() < 0.06


def test_rerun_computes_nothing_and_budget_increase_continues(finished, tmp_path):
    cfg, results, _, _ = finished
    camp = _run(cfg)
    with camp.db:
        again = list(camp.db.results.query({"campaign": "small"}))
    assert sorted((r["key"], r["created_at"]) for r in again) == sorted(
        (r["key"], r["created_at"]) for r in results
    )
    more = copy.deepcopy(cfg)
    more["search"]["budget"] = 9
    camp = _run(more)
    with camp.db:
        assert camp.db.results.count({"campaign": "small"}) == 9
    changed = copy.deepcopy(more)
    changed["space"]["step"] = 0.5
    with pytest.raises(InputError, match="different space.step"):
        _run(changed)


def test_same_seed_same_proposals_other_seed_differs(small_campaign, tmp_path):
    orders = []
    for i, seed in enumerate([5, 5, 6]):
        cfg = copy.deepcopy(small_campaign)
        cfg.update(name=f"s{i}", store=str(tmp_path / f"db{i}"))
        cfg["calculator"]["steps"] = 0  # proposals do not depend on energies here
        cfg["calculator"]["relax"] = False
        cfg["search"].update(seed=seed, budget=5, batch_size=2)
        camp = _run(cfg)
        with camp.db:
            orders.append([(c["round"], c["key"]) for c in camp.db.candidates.query({}, sort={"round": 1})])
    assert sorted(orders[0]) == sorted(orders[1])
    assert sorted(orders[0]) != sorted(orders[2])


@pytest.mark.parametrize("sampler", ["grid", "random", "sobol"])
def test_samplers_exhaust_a_small_grid_without_repeats(sampler, tmp_path):
    cfg = {
        "name": f"exhaust-{sampler}",
        "space": {"elements": ["Cu", "Ni"], "step": 0.25},
        "structure": {"n_atoms": 4},
        "calculator": {"relax": False},
        "search": {"sampler": sampler, "batch_size": 2, "budget": 50},
        "store": str(tmp_path / "db"),
    }
    camp = _run(cfg)
    with camp.db:
        keys = [r["key"] for r in camp.db.results.query({})]
        doc = camp.db.campaigns.query_one({})
    assert sorted(keys) == sorted(["Cu1", "Cu0.75Ni0.25", "Cu0.5Ni0.5", "Cu0.25Ni0.75", "Ni1"])
    assert doc["stop_reason"] == "no candidates left in the space"


def test_continuous_mode_realises_whole_atoms(tmp_path):
    cfg = {
        "name": "cont",
        "space": {"elements": ["Cu", "Ni", "Pd"], "mode": "continuous", "bounds": {"Cu": [0.2, 0.8]}},
        "structure": {"n_atoms": 8},
        "calculator": {"relax": False},
        "search": {"sampler": "sobol", "batch_size": 4, "budget": 8},
        "store": str(tmp_path / "db"),
    }
    camp = _run(cfg)
    with camp.db:
        results = list(camp.db.results.query({}))
    assert len(results) == 8
    for r in results:
        assert sum(r["counts"].values()) == 8
        assert 0.2 <= r["composition"]["Cu"] <= 0.8


def test_failed_calculations_are_recorded_not_fatal(small_campaign, tmp_path):
    cfg = copy.deepcopy(small_campaign)
    cfg["calculator"] = {"name": "htflow.testing:FailingEMT", "options": {"element": "Pd", "fraction": 0.5}}
    cfg["search"].update(sampler="grid", budget=15, batch_size=5)
    camp = _run(cfg)
    with camp.db:
        failed = list(camp.db.results.query({"status": "failed"}))
        done = camp.db.results.count({"status": "done"})
        cand_failed = camp.db.candidates.count({"status": "failed"})
        doc = camp.db.campaigns.query_one({})
    assert failed and done
    assert cand_failed == len(failed)
    assert done + len(failed) == 15
    for r in failed:
        assert r["composition"]["Pd"] >= 0.5
        assert "injected failure" in r["error"]
        assert r["input_structure"]["sites"]
    assert sum(r["failed"] for r in doc["rounds"]) == len(failed)
    # rerun: failures are not retried forever
    camp = _run(cfg)
    with camp.db:
        assert camp.db.results.count({}) == 15


def test_memory_store_runs_the_same_campaign(small_campaign):
    cfg = copy.deepcopy(small_campaign)
    cfg["store"] = "memory://"
    cfg["search"]["budget"] = 3
    camp = _run(cfg)
    assert camp.db.cfg.backend == "memory"
    with camp.db:
        assert camp.db.results.count({"campaign": "small"}) == 3
    assert not CampaignDB(parse_config(small_campaign).store).exists()


def test_a_campaign_keeps_the_defaults_it_started_with_when_resumed(tmp_path):
    """A campaign started when the search defaults were others (an older htflow: the anisotropic GP
    and pruning) resumes from the same file with those settings; a setting the file changes is
    still refused."""
    from htflow.campaign.loop import Campaign
    from htflow.campaign.validation import parse_config
    from htflow.errors import InputError

    cfg = {"name": "old", "space": {"elements": ["Cu", "Ni", "Pd"], "step": 0.25},
           "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
           "search": {"budget": 12, "batch_size": 4, "seed": 1,
                      "surrogate": {"initial": 4, "model": "gp", "prune": {"enabled": True}}},
           "store": str(tmp_path / "s")}
    Campaign(parse_config(copy.deepcopy(cfg))).run()
    # what the file said then, without the settings that were the defaults at the time
    plain = copy.deepcopy(cfg)
    plain["search"].update(budget=14, surrogate={"initial": 4})
    camp = Campaign(parse_config(copy.deepcopy(plain)))
    assert camp.config.search.surrogate.model == "gp" and camp.config.search.surrogate.prune.enabled
    doc = camp.run()
    models = [r["model"] for r in doc["rounds"] if "model" in r]
    assert models and set(models) == {"gp"}
    assert len(camp.results()) == 14
    # a new campaign from the same file gets today's defaults
    fresh = Campaign(parse_config({**copy.deepcopy(plain), "name": "new"}))
    assert fresh.config.search.surrogate.model == "gp-plain"
    assert not fresh.config.search.surrogate.prune.enabled
    # a setting the file does change is refused as before
    changed = copy.deepcopy(plain)
    changed["search"]["surrogate"]["model"] = "forest"
    with pytest.raises(InputError, match="search.surrogate.model"):
        Campaign(parse_config(changed)).run()
