"""The decision step's cost is bounded as results grow: hyperparameters and CV on seeded subsets."""

from __future__ import annotations

import numpy as np
import pytest

from htflow.search.planner import Planner, surrogate_settings
from htflow.search.surrogates import GaussianProcess


def _data(n: int, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(d), n)
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + rng.normal(0, 0.01, n)
    return X, y


@pytest.fixture
def gp_fits(monkeypatch) -> list[tuple[int, object]]:
    """Every scikit-learn GP fit from here on: (points, optimizer)."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    calls = []
    real = GaussianProcessRegressor.fit

    def spy(self, X, y):
        calls.append((len(y), self.optimizer))
        return real(self, X, y)

    monkeypatch.setattr(GaussianProcessRegressor, "fit", spy)
    return calls


def test_a_large_gp_takes_its_hyperparameters_from_a_subset_and_conditions_on_everything(gp_fits):
    calls = gp_fits
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


def test_the_fast_kriging_believer_equals_a_fixed_kernel_refit():
    """Observing picks at the GP's own mean without refitting: the variances equal those of the GP
    refitted (same kernel, same target normalisation) on the data plus the pseudo-observations,
    and the means stay where they were."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    X, y = _data(60)
    gp = GaussianProcess(seed=0, plain=True, anisotropic=False, restarts=0).fit(X, y)
    Xc = np.random.default_rng(3).dirichlet(np.ones(4), 300)
    mean, std = gp.predict(Xc)
    state = gp.believer(Xc)
    assert np.allclose(state.std(), std, rtol=1e-6)
    picks = [int(np.argmax(std)), 17, 123]
    for p in picks:
        state.observe(p)
    g = gp.gp
    mu, sd = g._y_train_mean, g._y_train_std
    Xa = np.vstack([X, Xc[picks]])
    ya = np.concatenate([(y - mu) / sd, (mean[picks] - mu) / sd])  # normalised as the fit had them
    ref = GaussianProcessRegressor(kernel=g.kernel_, optimizer=None, normalize_y=False, alpha=1e-10).fit(Xa, ya)
    m2, s2 = ref.predict(Xc, return_std=True)
    assert np.allclose(state.std(), s2 * sd, rtol=1e-4, atol=1e-8)
    assert np.allclose(m2 * sd + mu, mean, atol=1e-6)  # the believer moves no mean


def test_the_planner_picks_the_same_batch_with_the_fast_believer(monkeypatch):
    import htflow.search.planner as planner_module

    monkeypatch.setattr(planner_module, "FAST_BELIEVER", 10)  # the fast path at this small size
    X, y = _data(80, d=3)
    cands = np.random.default_rng(5).dirichlet(np.ones(3), 400)
    s = surrogate_settings(model="gp-plain")
    planner = Planner(s, ["A", "B", "C"])
    fast = planner.select(X, y, cands, 4, seed=0, rnd=2).chosen

    class Slow(GaussianProcess):  # the same GP without the fast path: a refit per pick
        believer = None

    import htflow.search.surrogates as surrogates

    orig = surrogates.SURROGATES["gp-plain"]
    surrogates.SURROGATES["gp-plain"] = lambda seed: Slow(anisotropic=False, restarts=0, seed=seed, plain=True)
    try:
        slow = planner.select(X, y, cands, 4, seed=0, rnd=2).chosen
    finally:
        surrogates.SURROGATES["gp-plain"] = orig
    assert len(fast) == 4 and fast[0] == slow[0]
    assert len(set(fast) & set(slow)) >= 3  # refits renormalise the targets: at most the last pick differs


def test_at_scale_the_cv_folds_keep_the_full_fits_hyperparameters(gp_fits):
    calls = gp_fits
    X, y = _data(320, d=3)
    cands = np.random.default_rng(5).dirichlet(np.ones(3), 200)
    sel = Planner(surrogate_settings(cv_max=100), ["A", "B", "C"]).select(X, y, cands, 1, seed=0, rnd=2)
    assert calls[0] == (300, "fmin_l_bfgs_b")  # maximum likelihood once, on a subset
    folds = calls[2:]
    assert len(folds) == 5 and all(opt is None and n == 80 for n, opt in folds)  # 5 folds of the 100
    assert sel.info["cv"]["hyperparameters"] == "fixed to the full fit's" and sel.info["cv"]["n"] == 100
    assert 0 <= sel.info["cv"]["within_1sigma"] <= 1
