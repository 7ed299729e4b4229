"""Calibrated uncertainty: the CV measures how much wider (or narrower) the model's sigma must be for
+-1 sigma to cover 68% of held-out results, and ``search.surrogate.calibrate`` acquires with it."""

from __future__ import annotations

import numpy as np
import pytest

from htflow.search.planner import Planner, cross_validate, surrogate_settings


class Overconfident:
    """A least-squares model whose sigma is a third of its true error scale."""

    def fit(self, X, y):
        A = np.c_[X, np.ones(len(X))]
        self.w = np.linalg.lstsq(A, y, rcond=None)[0]
        self.s = float(np.std(y - A @ self.w))
        return self

    def predict(self, X):
        return np.c_[X, np.ones(len(X))] @ self.w, np.full(len(X), self.s / 3)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(4), n)
    return X, X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(0, 0.1, n)


def test_the_cv_scale_makes_one_sigma_cover_two_thirds_of_held_out_results():
    X, y = _data(400)
    cv = cross_validate(Overconfident, X, y, 5, seed=0)
    assert cv["within_1sigma"] < 0.35  # a third of the true scale: about 26% inside +-1 sigma
    assert cv["sigma_calibration"] == pytest.approx(3.0, rel=0.15)
    # on data the CV never saw, sigma x the scale covers about 68%
    Xt, yt = _data(4000, seed=1)
    m, s = Overconfident().fit(X, y).predict(Xt)
    assert 0.62 < np.mean(np.abs(m - yt) <= cv["sigma_calibration"] * s) < 0.74


@pytest.mark.parametrize("calibrate", [False, True])
def test_calibrate_acquires_with_the_scaled_sigma(calibrate, monkeypatch):
    X, y = _data(40)
    cands, _ = _data(300, seed=2)
    planner = Planner(surrogate_settings(model="gp-plain", calibrate=calibrate), ["A", "B", "C", "D"])
    seen = []
    real = planner.acquisition

    def spy(m, sd, best, rng, limit):
        seen.append(np.array(sd))
        return real(m, sd, best, rng, limit)

    monkeypatch.setattr(planner, "acquisition", spy)
    sel = planner.select(X, y, cands, 1, seed=0, rnd=1)
    scale = sel.info["cv"]["sigma_calibration"]
    assert scale != pytest.approx(1.0, abs=0.05)  # the GP is not calibrated as it stands
    if calibrate:
        assert sel.info["sigma_calibration"] == scale
        assert np.allclose(seen[0], sel.std * scale)
    else:
        assert "sigma_calibration" not in sel.info
        assert np.allclose(seen[0], sel.std)


def test_a_campaign_records_the_calibration_its_rounds_acquired_with():
    from helpers import run_campaign

    cfg = {
        "name": "cal",
        "space": {"elements": ["Cu", "Ni", "Pd", "Au"], "step": 0.125, "max_elements": 3},
        "structure": {"prototype": "fcc", "n_atoms": 32},
        "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
        "search": {"batch_size": 4, "budget": 20, "seed": 1,
                   "surrogate": {"initial": 8, "calibrate": True, "explain": False}},
        "store": "memory://",
    }
    camp = run_campaign(cfg)
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "cal"})
    model = [r for r in doc["rounds"] if r.get("phase") == "model"]
    assert len(model) == 3
    for r in model:
        assert r["sigma_calibration"] == r["cv"]["sigma_calibration"] > 0
