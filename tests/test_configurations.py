"""Several decorations per composition: the mean is the value, the spread is stored and is the model's noise."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli, small_campaign_config, write_yaml
from jobflow import run_locally

from htflow.calculators.flows import average_properties
from htflow.calculators.registry import get_calculator
from htflow.campaign.validation import parse_config
from htflow.schemas.config import StoreConfig
from htflow.search.surrogates import Forest, GaussianProcess, fit
from htflow.space.structures import StructureBuilder
from htflow.store.db import CampaignDB
from htflow.store.repository import CampaignRepository


def test_each_configuration_is_another_decoration_of_the_same_composition():
    b = StructureBuilder("fcc", 16)
    comp = {"Cu": 0.5, "Ni": 0.25, "Pd": 0.25}
    first, second, again = b.build(comp), b.build(comp, 1), b.build(comp, 1)
    assert first == b.build(comp, 0)  # configuration 0 is the campaign's usual structure
    assert first.composition == second.composition
    assert [str(s.specie) for s in second] == [str(s.specie) for s in again]  # deterministic
    # the same species on different sites: not the same structure up to a permutation of sites
    site_of = {tuple(np.round(s.frac_coords, 6)): str(s.specie) for s in first}
    assert any(site_of[tuple(np.round(s.frac_coords, 6))] != str(s.specie) for s in second)


def test_average_over_configurations():
    outs = [{"energy_per_atom": -1.0, "density": 8.0, "n_steps": 10, "relax_seconds": 1.0, "converged": True,
             "structure": {"a": 1}, "formation_energy_per_atom": None},
            {"energy_per_atom": -1.3, "density": 9.0, "n_steps": 20, "relax_seconds": 2.0, "converged": False,
             "structure": {"a": 2}, "formation_energy_per_atom": None},
            {"energy_per_atom": -1.2, "density": 10.0, "n_steps": 30, "relax_seconds": 3.0, "converged": True,
             "structure": {"a": 3}, "formation_energy_per_atom": None}]
    job = average_properties(outs)
    out = run_locally(job, ensure_success=True, log=False)[job.uuid][1].output
    assert out["energy_per_atom"] == pytest.approx(-3.5 / 3)
    assert out["density"] == pytest.approx(9.0)
    assert out["configurations"]["std"]["density"] == pytest.approx(1.0)  # sample std
    assert out["configurations"]["std"]["energy_per_atom"] == pytest.approx(np.std([-1, -1.3, -1.2], ddof=1))
    assert out["configurations"]["values"]["density"] == [8.0, 9.0, 10.0]
    assert out["structure"] == {"a": 2} and out["configurations"]["lowest"] == 1  # lowest energy
    assert out["n_steps"] == 60 and out["relax_seconds"] == 6.0 and out["converged"] is False
    assert out["formation_energy_per_atom"] is None  # not a number in every configuration: not averaged


@pytest.mark.slow
def test_a_campaign_averages_its_decorations_and_the_model_gets_their_noise(tmp_path, capsys, monkeypatch):
    cfg = small_campaign_config()
    cfg["structure"]["configurations"] = 3
    cfg["structure"]["n_atoms"] = 8
    cfg["search"] = {"sampler": "surrogate", "batch_size": 3, "budget": 9, "seed": 2,
                     "surrogate": {"initial": 4}}
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["run", str(write_yaml(tmp_path / "c.yaml", cfg)), "--quiet"], capsys)
    assert code == 0, err
    assert "σ of 3" in out  # the spread is in the summary
    with CampaignDB(StoreConfig(path=str(tmp_path / "htflow-data"))).connect() as db:
        repo = CampaignRepository(db, "small")
        results = [r for r in repo.results() if r["nelements"] > 1]
        rounds = repo.doc()["rounds"]
    assert len(results) >= 5
    # the stored values are the mean of the decorations, each as a one-structure evaluation gives it
    b = StructureBuilder("fcc", 8, configurations=3)
    refs = _refs(tmp_path)
    r = results[0]
    maker = get_calculator("emt").evaluation_maker(parse_config(cfg))  # the campaign's own settings
    singles = []
    for c in range(3):
        flow = maker.make(b.build(r["composition"], c), refs)
        singles.append(run_locally(flow, ensure_success=True, log=False, root_dir=tmp_path)[
            flow.output.uuid][1].output["formation_energy_per_atom"])
    assert r["configurations"]["values"]["formation_energy_per_atom"] == pytest.approx(singles, abs=1e-9)
    assert r["formation_energy_per_atom"] == pytest.approx(np.mean(singles), abs=1e-9)
    assert r["configurations"]["std"]["formation_energy_per_atom"] == pytest.approx(np.std(singles, ddof=1))
    spreads = [x["configurations"]["std"]["formation_energy_per_atom"] for x in results]
    assert max(spreads) > 1e-4  # decorations of an 8-atom cell differ by meV/atom
    # every model round fitted with the noise of those means
    model_rounds = [x for x in rounds if x.get("phase") == "model"]
    assert model_rounds and all(x["noise_std_mean"] > 0 for x in model_rounds)


def _refs(tmp_path) -> dict[str, float]:
    with CampaignDB(StoreConfig(path=str(tmp_path / "htflow-data"))).connect() as db:
        doc = CampaignRepository(db, "small").doc()
    return {el: v["energy_per_atom"] for el, v in doc["references"].items()}


@pytest.mark.parametrize("model", [GaussianProcess, Forest])
def test_a_noisy_value_pulls_the_model_less(model):
    """Smooth data with one value off the trend: told that value is noisy, the model stays nearer the
    trend there (GP) or is less sure everywhere (forest)."""
    x = np.linspace(0, 1, 15)[:, None]
    y = np.sin(3 * x[:, 0])
    y[7] += 0.5
    noise = np.zeros(15)
    noise[7] = 0.5**2
    plain = model(seed=0).fit(x, y)
    told = fit(model(seed=0), x, y, noise)
    if model is GaussianProcess:
        truth = np.sin(3 * x[7, 0])
        assert abs(told.predict(x[7:8])[0][0] - truth) < abs(plain.predict(x[7:8])[0][0] - truth)
        # kriging believer keeps the noise of the points it had
        assert told.condition(np.array([[0.55]]), np.array([0.0])).noise[7] == noise[7]
    else:
        assert np.all(told.predict(x)[1] > plain.predict(x)[1])


def test_configurations_need_a_calculator_of_structures(tmp_path, capsys):
    cfg = small_campaign_config()
    cfg["structure"]["configurations"] = 2
    cfg["calculator"] = {"name": "lookup", "options": {"table": "emt-fcc7"}}
    code, _, err = run_cli(["validate", str(write_yaml(tmp_path / "c.yaml", cfg))], capsys)
    assert code == 2 and len(err) == 1 and "structure.configurations" in err[0] and "lookup" in err[0]
