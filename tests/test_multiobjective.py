"""Several objectives: Pareto fronts and hypervolumes against pymoo, ParEGO, the genetic algorithm,
and constraints that every proposed composition respects."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from helpers import two_objective_config
from pymatgen.core import Composition

from htflow.analysis.pareto import crowding, hypervolume, pareto_mask, ranks
from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config


@pytest.mark.parametrize("goals", [["minimize", "minimize"], ["maximize", "minimize"],
                                   ["minimize", "maximize", "minimize"], ["minimize"] * 4])
def test_hypervolume_equals_pymoo(goals):
    from pymoo.indicators.hv import HV

    rng = np.random.default_rng(len(goals))
    sign = np.array([1 if g == "minimize" else -1 for g in goals])
    for n in (1, 4, 30, 120):
        y = rng.random((n, len(goals)))
        ref = np.where(sign > 0, 1.1, -0.1)  # beyond the worst in each direction
        want = HV(ref_point=ref * sign)(y * sign)  # pymoo minimises
        assert hypervolume(y, ref, goals) == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_hypervolume_known_fronts():
    mm = ["minimize", "minimize"]
    assert hypervolume([[1, 2], [2, 1]], [3, 3], mm) == pytest.approx(3.0)
    assert hypervolume([[1, 2], [2, 1], [2.5, 2.5]], [3, 3], mm) == pytest.approx(3.0)  # dominated: nothing
    assert hypervolume([[4, 4]], [3, 3], mm) == 0.0  # beyond the reference
    # the unit cube's corner against (1,1,1): a cube of side 1
    assert hypervolume([[0, 0, 0]], [1, 1, 1], ["minimize"] * 3) == pytest.approx(1.0)
    # linear front x + y = 1 sampled at k points: staircase area -> 1/2 - 1/(2k) inside the unit square
    k = 50
    x = np.linspace(0, 1, k + 1)[1:]
    front = np.c_[x - 1 / k, 1 - x]
    assert hypervolume(front, [1, 1], mm) == pytest.approx(0.5 + 0.5 / k)


def test_ranks_and_crowding():
    y = np.array([[1, 4], [2, 2], [4, 1], [3, 3], [5, 5], [np.nan, 0]])
    assert ranks(y, ["minimize", "minimize"]).tolist() == [0, 0, 0, 1, 2, 6]
    d = crowding(y[:3])
    assert np.isinf(d[0]) and np.isinf(d[2]) and d[1] == pytest.approx((4 - 1) / 3 + (4 - 1) / 3)


def _mo_campaign(**search) -> dict:
    return two_objective_config(**search)


@pytest.mark.parametrize("sampler", ["surrogate", "ga"])
def test_pareto_front_and_hypervolume_every_round(sampler):
    from pymoo.indicators.hv import HV

    camp = Campaign(parse_config(_mo_campaign(sampler=sampler), "test"))
    doc = camp.run()
    done = camp.results(status="done")
    assert len(done) == 30
    y = np.array([[r["formation_energy_per_atom"], r["density"]] for r in done])
    front = {r["key"] for r, on in zip(done, pareto_mask(y, ["minimize", "minimize"]), strict=True) if on}
    assert set(doc["pareto_front"]) == front
    rounds = sorted(doc["rounds"], key=lambda r: r["round"])
    hvs = [r["pareto"]["hypervolume"] for r in rounds]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(hvs))  # the front only grows
    assert hvs[-1] == pytest.approx(HV(ref_point=np.array(doc["hv_reference"]))(y), rel=1e-12)
    assert rounds[-1]["pareto"]["size"] == len(front)
    if sampler == "surrogate":
        model_rounds = [r for r in rounds if r.get("phase") == "model"]
        assert model_rounds, "ParEGO rounds after the initial ones"
    else:
        assert rounds[-1]["phase"] == "genetic"


def test_parego_beats_random_on_the_front():
    """Over the same budget ParEGO finds more of the true front than random selection (same seeds)."""
    import csv
    from importlib.resources import files

    rows = list(csv.DictReader((files("htflow") / "data" / "emt-fcc7.csv").read_text().splitlines()))
    space = _mo_campaign()["space"]
    allowed = set(space["elements"])
    pool = [r for r in rows if {e for e in allowed | {"Ag", "Au"} if float(r.get(e) or 0) > 0} <= allowed
            and sum(float(r[e]) > 0 for e in allowed) <= 2]
    y = np.array([[float(r["formation_energy_per_atom"]), float(r["density"])] for r in pool])
    true = {r["key"] for r, on in zip(pool, pareto_mask(y, ["minimize", "minimize"]), strict=True) if on}
    found = {}
    for sampler in ("surrogate", "random"):
        cfg = _mo_campaign(sampler=sampler, budget=36, surrogate={"multi_objective": "parego"})
        camp = Campaign(parse_config(cfg, "test"))
        camp.run()
        found[sampler] = len(true & {r["key"] for r in camp.results(status="done")})
    assert found["surrogate"] > found["random"]


CONSTRAINED = {
    "max_cost": 400.0,          # USD/kg: little Pd/Pt/Au
    "max_density": 9.5,         # g/cm³ (estimated before any calculation)
    "forbidden_pairs": [["Al", "Pt"], ["Ni", "Ag"]],
    "prices": {"Pd": 30000},
}


def _violations(fractions: dict, c: dict) -> list[str]:
    """Computed here from first principles: mass fractions and molar volumes from pymatgen."""
    from htflow.space.constraints import bundled_prices

    comp = Composition(fractions)
    prices = {**bundled_prices(), **c["prices"]}
    cost = sum(comp.get_wt_fraction(el) * prices[el.symbol] for el in comp.elements)
    vol = sum(amt * el.atomic_mass / (el.density_of_solid / 1000) for el, amt in comp.items())
    density = sum(amt * el.atomic_mass for el, amt in comp.items()) / vol
    out = []
    if cost > c["max_cost"] + 1e-9:
        out.append(f"cost {cost}")
    if density > c["max_density"] + 1e-9:
        out.append(f"density {density}")
    present = {el.symbol for el in comp.elements}
    out += [f"pair {a}-{b}" for a, b in c["forbidden_pairs"] if a in present and b in present]
    return out


@pytest.mark.parametrize("sampler", ["ga", "surrogate", "sobol"])
def test_every_proposal_respects_the_constraints(sampler):
    cfg = copy.deepcopy(_mo_campaign(sampler=sampler, budget=24))
    cfg["space"] = {"elements": ["Ag", "Al", "Au", "Cu", "Ni", "Pd", "Pt"], "step": 0.0625, "max_elements": 3,
                    "constraints": CONSTRAINED}
    camp = Campaign(parse_config(cfg, "test"))
    camp.run()
    with camp.db:
        cands = list(camp.db.candidates.query({"campaign": "mo", "status": {"$ne": "pruned"}}))
    assert len(cands) == 24
    for c in cands:
        assert len(c["counts"]) <= 3
        assert _violations(c["composition"], CONSTRAINED) == [], c["key"]


@pytest.mark.slow
def test_seven_element_continuous_example_respects_every_constraint(tmp_path):
    """workflows/hea-continuous.yaml, shrunk (16 atoms, 16 evaluations): runs on EMT within its budget,
    differential evolution adds candidates every model round, and every proposal obeys the file."""
    import yaml
    from helpers import ROOT

    cfg = yaml.safe_load((ROOT / "workflows" / "hea-continuous.yaml").read_text())
    cfg["structure"]["n_atoms"] = 16
    cfg["search"].update({"budget": 16, "batch_size": 4})
    cfg["search"]["surrogate"].update({"initial": 8, "candidates": 256, "evolve": 10})
    cfg["store"] = str(tmp_path / "db")
    assert len(cfg["space"]["elements"]) >= 6
    camp = Campaign(parse_config(cfg, "test"))
    doc = camp.run()
    with camp.db:
        cands = list(camp.db.candidates.query({"campaign": cfg["name"], "status": {"$ne": "pruned"}}))
    assert len(cands) == 16 == len(camp.results(status="done"))
    c = {**cfg["space"]["constraints"], "prices": {}}
    for cand in cands:
        comp = cand["composition"]
        assert len(comp) <= cfg["space"]["max_elements"]
        assert all(x <= cfg["space"]["bounds"][el][1] + 1e-9 for el, x in comp.items()), cand["key"]
        assert sum(cand["counts"].values()) == 16
        assert _violations(comp, c) == [], cand["key"]
    model_rounds = [r for r in doc["rounds"] if r.get("phase") == "model"]
    assert model_rounds and all(r.get("evolved", 0) > 0 for r in model_rounds)


@pytest.mark.slow
def test_failures_teach_a_feasibility_classifier():
    """Calculations fail wherever Pd is 25% or more: with the classifier, the model rounds propose
    far fewer compositions that fail than without it (same seed), and each round records it."""
    failed_late = {}
    for feasibility in (False, True):
        cfg = {"name": "f", "space": {"elements": ["Cu", "Ni", "Pd", "Ag"], "step": 0.125, "max_elements": 3},
               "structure": {"prototype": "fcc", "n_atoms": 8},
               "calculator": {"name": "htflow.testing:FailingEMT", "options": {"element": "Pd", "fraction": 0.25}},
               "objectives": [{"name": "formation_energy_per_atom"}],
               "search": {"batch_size": 6, "budget": 36, "seed": 4,
                          "surrogate": {"initial": 8, "feasibility": feasibility}},
               "store": "memory://"}
        camp = Campaign(parse_config(cfg, "test"))
        doc = camp.run()
        model_rounds = {r["round"] for r in doc["rounds"] if r.get("phase") == "model"}
        failed_late[feasibility] = sum(r["round"] in model_rounds for r in camp.results(status="failed"))
        assert len(camp.results()) == 36  # failures are recorded, never fatal
        if feasibility:
            assert all("feasibility" in r for r in doc["rounds"] if r["round"] in model_rounds)
    assert failed_late[True] <= failed_late[False] / 2, failed_late
