"""The decision step's cost is bounded as results grow: hyperparameters and CV on seeded subsets."""

from __future__ import annotations

import numpy as np

from htflow.search.planner import Planner, surrogate_settings
from htflow.search.surrogates import GaussianProcess


def _data(n: int, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(d), n)
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + rng.normal(0, 0.01, n)
    return X, y


def test_a_large_gp_takes_its_hyperparameters_from_a_subset_and_conditions_on_everything(monkeypatch):
    from sklearn.gaussian_process import GaussianProcessRegressor

    calls = []
    real = GaussianProcessRegressor.fit

    def spy(self, X, y):
        calls.append((len(y), self.optimizer))
        return real(self, X, y)

    monkeypatch.setattr(GaussianProcessRegressor, "fit", spy)
    X, y = _data(400)
    big = GaussianProcess(seed=5, max_opt=120).fit(X, y)
    # maximum likelihood on 120 points, then one fit of all 400 with those hyperparameters
    assert calls == [(120, "fmin_l_bfgs_b"), (400, None)]
    assert big.gp.X_train_.shape[0] == 400
    sub = np.sort(np.random.default_rng(5).choice(400, 120, replace=False))
    small = GaussianProcess(seed=5, max_opt=120).fit(X[sub], y[sub])
    Xt, yt = _data(200, seed=1)
    err_big = np.mean(np.abs(big.predict(Xt)[0] - yt))
    err_small = np.mean(np.abs(small.predict(Xt)[0] - yt))
    assert err_big < err_small  # conditioning on all 400 points beats the 120 of the subset alone
    calls.clear()
    GaussianProcess(seed=5, max_opt=120).fit(X[:100], y[:100])
    assert calls == [(100, "fmin_l_bfgs_b")]  # small data: one ordinary fit


def test_cross_validation_runs_on_a_bounded_subset():
    X, y = _data(500, d=3)
    settings = surrogate_settings(cv_max=60, model="forest", prune={"enabled": False})
    sel = Planner(settings, ["A", "B", "C"]).select(X, y, np.random.default_rng(2).dirichlet(np.ones(3), 50),
                                                    4, seed=0, rnd=3)
    cv = sel.info["cv"]
    assert cv["n"] == 60 and cv["subset_of"] == 500 and len(cv["y_true"]) == 60
    assert set(cv["y_true"]) <= set(y.tolist())
    assert len(sel.chosen) == 4
