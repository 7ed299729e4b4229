"""Several objectives by expected hypervolume improvement (BoTorch), and ParEGO without BoTorch."""

from __future__ import annotations

import csv
import itertools
from importlib.resources import files

import numpy as np
import pytest
from test_multiobjective import _mo_campaign

from htflow.analysis.pareto import hypervolume, pareto_mask
from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.errors import InputError

botorch = pytest.importorskip("botorch", reason="BoTorch is not installed (pip install 'htflow[bo]')")


def _run(**search) -> tuple[Campaign, dict]:
    camp = Campaign(parse_config(_mo_campaign(**search), "test"))
    return camp, camp.run()


def test_log_ehvi_equals_monte_carlo_of_the_exact_hypervolume():
    """exp(log EHVI) of htflow's acquisition equals the mean hypervolume gain of posterior draws,
    computed with htflow's exact hypervolume, for candidates that improve the front and ones that
    barely can; so signs, the reference point and the front are what BoTorch is handed."""
    from htflow.search.ehvi import BotorchGP, HypervolumeAcquisition

    rng = np.random.default_rng(0)
    X = rng.random((24, 2))
    Y = np.c_[np.sin(3 * X[:, 0]) + X[:, 1], np.cos(2 * X[:, 1]) - X[:, 0]]  # larger is better
    ref = Y.min(axis=0) - 0.1
    models = [BotorchGP(0).fit(X, Y[:, j]) for j in range(2)]
    acq = HypervolumeAcquisition(models, Y, ref, seed=0)
    cands = rng.random((4, 2))
    got = np.exp(acq(cands))
    goals = ["maximize", "maximize"]
    base = hypervolume(Y, ref, goals)
    draws = 600  # the tolerance below is three standard errors of the mean of these
    for c, g in zip(cands, got, strict=True):
        (m0, m1), (s0, s1) = zip(*(m.predict(c[None]) for m in models), strict=True)
        z = np.c_[rng.normal(m0[0], s0[0], draws), rng.normal(m1[0], s1[0], draws)]
        # the gain of one point: hypervolume of the front with it minus without it
        gains = np.array([hypervolume(np.vstack([Y, p]), ref, goals) - base for p in z])
        want = gains.mean()
        assert g == pytest.approx(want, rel=0.1, abs=3 * gains.std() / np.sqrt(len(gains)) + 1e-12)


@pytest.mark.parametrize("goals", [("minimize", "minimize"), ("minimize", "maximize")])
def test_ehvi_campaign_finds_more_of_the_front_than_random(goals):
    """With either direction of the second objective (density, volume per atom) EHVI finds more of
    the true front of the pool than random selection on the same budget and seed."""
    second = "density" if goals[1] == "minimize" else "volume_per_atom"
    objectives = [{"name": "formation_energy_per_atom", "goal": goals[0]}, {"name": second, "goal": goals[1]}]
    rows = list(csv.DictReader((files("htflow") / "data" / "emt-fcc7.csv").read_text().splitlines()))
    allowed = set(_mo_campaign()["space"]["elements"])
    pool = [r for r in rows if not any(float(r[e]) for e in {"Ag", "Au"})
            and sum(float(r[e]) > 0 for e in allowed) <= 2]
    y = np.array([[float(r[o["name"]]) for o in objectives] for r in pool])
    true = {r["key"] for r, on in zip(pool, pareto_mask(y, list(goals)), strict=True) if on}
    found, hv = {}, {}
    for sampler in ("surrogate", "random"):
        cfg = _mo_campaign(sampler=sampler, budget=36, surrogate={"multi_objective": "ehvi"})
        cfg["objectives"] = objectives
        camp = Campaign(parse_config(cfg, "test"))
        doc = camp.run()
        found[sampler] = len(true & {r["key"] for r in camp.results(status="done")})
        hv[sampler] = doc["rounds"][-1]["pareto"]["hypervolume"]
        if sampler == "surrogate":
            rounds = sorted(doc["rounds"], key=lambda r: r["round"])
            assert [r.get("multi_objective") for r in rounds if r.get("phase") == "model"] == ["ehvi"] * 4
    assert found["surrogate"] > found["random"], (found, len(true))


def test_ehvi_rounds_record_front_models_and_predictions():
    camp, doc = _run(surrogate={"multi_objective": "ehvi"})
    rounds = sorted(doc["rounds"], key=lambda r: r["round"])
    model = [r for r in rounds if r.get("phase") == "model"]
    assert model and all(r["multi_objective"] == "ehvi" and r["acquisition"] == "qLogEHVI" for r in model)
    hvs = [r["pareto"]["hypervolume"] for r in rounds]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(hvs))
    # the reference handed to EHVI is the campaign's hypervolume reference
    assert model[-1]["reference"] == pytest.approx(doc["hv_reference"])
    # cross-validation of each objective's model, the first one as the round's headline
    cvs = model[-1]["cv_objectives"]
    assert set(cvs) == {"formation_energy_per_atom", "density"}
    assert model[-1]["cv"]["of"] == "formation_energy_per_atom"
    assert model[-1]["cv"]["mae"] == cvs["formation_energy_per_atom"]["mae"] > 0
    # each objective explained through the round's own model of it; Pt raises density, Al lowers it
    for r in model:
        density = r["explain_objectives"]["density"]
        assert r["explain"]["objective"] == "formation_energy_per_atom"
        assert density["model"] == "the round's botorch-gp of density"
        top = {e["element"]: e["direction"] for e in density["elements"][:2]}
        assert set(top) == {"Pt", "Al"} and top["Pt"] > 0.9 and top["Al"] < -0.9
    # CV predictions are kept in the objective's own units and direction
    cvp = doc["cv_predictions"]
    done = {r["key"]: r["formation_energy_per_atom"] for r in camp.results(status="done")}
    assert len(cvp["y_true"]) == model[-1]["cv"]["n"]
    assert all(any(abs(v - w) < 1e-9 for w in done.values()) for v in cvp["y_true"])
    # every proposal of a model round says what the models expected of it
    last = max(r["round"] for r in model)
    with camp.db:
        picks = list(camp.db.candidates.query({"campaign": "mo", "round": last}))
    computed = {r["key"]: r for r in camp.results(status="done")}
    assert picks and all(p["prediction"]["of"] == "ehvi" for p in picks)
    for p in picks:
        pred = p["prediction"]
        assert np.isfinite(pred["log_ehvi"]) and pred["std_density"] > 0
        # density is nearly linear in the fractions: the model knows it (Al 2.7 to Pt 21 g/cm3)
        assert pred["mean_density"] == pytest.approx(computed[p["key"]]["density"], rel=0.1)


def test_ehvi_is_deterministic_for_a_seed():
    a, _ = _run(surrogate={"multi_objective": "ehvi"}, budget=24)
    a_keys = sorted((r["round"], r["key"]) for r in a.results())
    b, _ = _run(surrogate={"multi_objective": "ehvi"}, budget=24)
    assert sorted((r["round"], r["key"]) for r in b.results()) == a_keys
    from botorch.acquisition.multi_objective import logei

    # HTFLOW_EHVI_FUSED_KERNEL=false (conftest): BoTorch's pure-Python path, nothing compiled
    assert logei._load_attempted and logei._C is None


def test_without_botorch_auto_is_parego_and_ehvi_is_refused(monkeypatch):
    from htflow.search import ehvi

    monkeypatch.setattr(ehvi, "available", lambda: False)
    with pytest.raises(InputError) as err:
        parse_config(_mo_campaign(surrogate={"multi_objective": "ehvi"}), "test")
    assert "pip install 'htflow[bo]'" in str(err.value) and "parego" in str(err.value)
    _, doc = _run(budget=18)
    model = [r for r in doc["rounds"] if r.get("phase") == "model"]
    assert model and all("parego_weights" in r and "multi_objective" not in r for r in model)
