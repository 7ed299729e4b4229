"""The GP on inducing points that takes over past ``MAX_EXACT`` results: exact when every result is an
inducing point, as accurate as the exact GP on held-out data with far fewer, honest far from the
data, and its kriging believer is the DTC posterior conditioned on the picks."""

from __future__ import annotations

import numpy as np
import pytest

import htflow.search.sparse as sparse
from htflow.search.planner import Planner, surrogate_settings
from htflow.search.sparse import SparseBeliever, SparsePosterior, cross_kernel, inducing_points
from htflow.search.surrogates import GaussianProcess


def _data(n: int, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(d), n)
    y = np.sin(4 * X[:, 0]) + 2 * X[:, 1] * X[:, 2] - X[:, 3] + rng.normal(0, 0.01, n)
    return X, y


def _exact(X, y) -> GaussianProcess:
    gp = GaussianProcess(anisotropic=False, restarts=0, plain=True)
    gp.max_exact = 10**9
    return gp.fit(X, y)


def test_with_every_result_as_an_inducing_point_it_is_the_exact_gp():
    X, y = _data(150)
    gp = _exact(X, y)
    post = SparsePosterior(gp.gp.kernel_, X, y, gp.gp.alpha, m=150)
    Xt, _ = _data(100, seed=1)
    m0, s0 = gp.predict(Xt)
    m1, s1 = post.predict(Xt)
    assert len(post.U) >= 140  # pivoting stops only where a point adds (almost) nothing
    assert np.allclose(m1, m0, atol=1e-4 * np.std(y)) and np.allclose(s1, s0, rtol=1e-3)


def test_inducing_points_are_the_results_the_others_explain_least():
    X, y = _data(200)
    kernel = _exact(X, y).gp.kernel_.k1
    idx = inducing_points(kernel, X, 30, tol=0.0)
    assert len(idx) == len(set(idx)) == 30
    # the first pivot of a stationary kernel is any point (equal prior variances); a duplicate row adds nothing
    Xd = np.vstack([X[:20], X[:20]])
    assert len(inducing_points(kernel, Xd, 40, tol=1e-8)) <= 20


def test_past_max_exact_a_campaign_gp_goes_sparse_and_stays_as_accurate(monkeypatch):
    monkeypatch.setattr(sparse, "INDUCING", 120)
    X, y = _data(700)
    Xt, yt = _data(400, seed=3)
    exact = _exact(X, y)
    gp = GaussianProcess(anisotropic=False, restarts=0, plain=True)
    gp.max_exact = 300
    gp.fit(X, y)
    assert gp.sparse is not None and len(gp.sparse.U) <= 120
    assert gp.prediction_size == len(gp.sparse.U) and exact.prediction_size == 700  # what a row costs
    err_exact = np.mean(np.abs(exact.predict(Xt)[0] - yt))
    mean, _ = gp.predict(Xt)
    assert np.mean(np.abs(mean - yt)) < 1.2 * err_exact
    assert np.allclose(gp.mean(Xt), mean)
    # far from every result the variance returns to the prior's (the DTC does not collapse there)
    far = np.full((1, X.shape[1]), 5.0)
    prior = np.sqrt(gp.gp.kernel_.diag(far)[0]) * np.std(y)
    assert gp.predict(far)[1][0] == pytest.approx(prior, rel=1e-3)


def test_the_sparse_believer_conditions_the_dtc_posterior_on_each_pick():
    X, y = _data(300)
    gp = _exact(X, y)
    post = SparsePosterior(gp.gp.kernel_, X, y, gp.gp.alpha, m=40)
    Xc, _ = _data(120, seed=4)
    state = SparseBeliever(post, Xc)
    assert np.allclose(state.std(), post.predict(Xc)[1])
    # the DTC posterior covariance of the candidates, conditioned by hand on noisy observations
    K = cross_kernel(post.signal, Xc, post.U)
    cov = post.signal(Xc) - K @ post.P @ K.T + post.noise * np.eye(len(Xc))
    for p in (int(np.argmax(state.std())), 7, 55):
        state.observe(p)
        latent = cov[:, p] - post.noise * (np.arange(len(Xc)) == p)
        cov = cov - np.outer(latent, latent) / cov[p, p]
        want = np.sqrt(np.maximum(np.diag(cov), 1e-30)) * post.y_std
        assert np.allclose(state.std(), want, rtol=1e-4)


def test_the_planner_decides_with_the_sparse_gp(monkeypatch):
    import htflow.search.surrogates as surrogates

    monkeypatch.setattr(surrogates, "MAX_EXACT", 200)
    monkeypatch.setattr(sparse, "INDUCING", 80)
    X, y = _data(400, d=4)
    cands, _ = _data(2000, d=4, seed=9)
    sel = Planner(surrogate_settings(model="gp-plain"), ["A", "B", "C", "D"]).select(X, y, cands, 4, seed=0,
                                                                                     rnd=3)
    assert sel.model.sparse is not None and len(set(sel.chosen)) == 4
    assert sel.info["cv"]["r2"] > 0.9  # the CV (exact, on its subset) sees a good model
