"""Featurizers, surrogates, acquisition functions and CV metrics against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from htflow.errors import InputError
from htflow.search.acquisition import (
    ACQUISITIONS,
    expected_improvement,
    get_acquisition,
    probability_of_improvement,
    ucb,
)


# -- acquisition functions: closed forms and numerical integrals ----------------
@pytest.mark.parametrize(("mean", "std", "best"), [(0.5, 2.0, 1.0), (0.0, 1.0, 0.0), (2.0, 0.3, 1.0), (-1.0, 0.5, 0.0)])
def test_expected_improvement_equals_the_integral(mean, std, best):
    """EI = E[max(best - Y, 0)] for Y ~ N(mean, std²), integrated numerically."""
    ref, _ = integrate.quad(lambda y: (best - y) * stats.norm.pdf(y, mean, std), -np.inf, best)
    assert expected_improvement(np.array([mean]), np.array([std]), best)[0] == pytest.approx(ref, rel=1e-7, abs=1e-12)


def test_expected_improvement_known_values():
    # z = 0.25: 0.5 Φ(0.25) + 2 φ(0.25)
    assert expected_improvement([0.5], [2.0], 1.0)[0] == pytest.approx(1.0726889, rel=1e-6)
    assert expected_improvement([0.0], [1.0], 0.0)[0] == pytest.approx(1 / np.sqrt(2 * np.pi))
    # xi shifts the threshold: same as a best lowered by xi
    assert expected_improvement([0.2], [0.5], 1.0, xi=0.3)[0] == pytest.approx(expected_improvement([0.2], [0.5], 0.7)[0])
    # with no uncertainty EI is the plain improvement
    assert expected_improvement([0.25], [1e-15], 1.0)[0] == pytest.approx(0.75)


def test_probability_of_improvement_equals_the_normal_cdf():
    assert probability_of_improvement([1.0], [1.0], 1.0)[0] == pytest.approx(0.5)
    assert probability_of_improvement([0.0], [1.0], 1.0)[0] == pytest.approx(stats.norm.cdf(1.0))
    assert probability_of_improvement([0.5], [0.25], 1.0, xi=0.25)[0] == pytest.approx(stats.norm.cdf(1.0))


def test_ucb_is_the_lower_confidence_bound_negated():
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([0.5, 0.1, 2.0])
    np.testing.assert_allclose(ucb(mean, std, 0.0, beta=2.0), -(mean - 2.0 * std))
    np.testing.assert_allclose(ACQUISITIONS["greedy"](mean, std, 0.0), -mean)
    np.testing.assert_allclose(ACQUISITIONS["explore"](mean, std, 0.0), std)


def test_thompson_draws_from_the_predictive_distribution():
    rng = np.random.default_rng(0)
    mean, std = np.full(200_000, 1.5), np.full(200_000, 0.5)
    draws = -ACQUISITIONS["thompson"](mean, std, 0.0, rng=rng)
    assert draws.mean() == pytest.approx(1.5, abs=0.01)
    assert draws.std() == pytest.approx(0.5, abs=0.01)


def test_unknown_acquisition_names_the_choices():
    with pytest.raises(InputError, match="unknown acquisition 'eii'.*greedy, ucb, ei, pi, thompson, explore"):
        get_acquisition("eii")


# -- featurizers -----------------------------------------------------------------
def test_magpie_features_equal_matminer():
    from matminer.featurizers.composition import ElementProperty
    from pymatgen.core import Composition

    from htflow.search.features import Magpie, fraction_matrix

    els = ["Al", "Cu", "Ni", "Pt", "Fe", "C", "Mn"]
    comps = [{"Al": 0.5, "Cu": 0.25, "Pt": 0.25}, {"Fe": 0.9, "C": 0.02, "Mn": 0.08}, {"Ni": 1.0},
             {"Cu": 0.5, "Ni": 0.5}, {"Al": 0.1, "Cu": 0.2, "Ni": 0.3, "Pt": 0.4}]
    ep = ElementProperty.from_preset("magpie")
    feat = Magpie(els)
    assert feat.labels() == ep.feature_labels()
    ours = feat(fraction_matrix(comps, els))
    ref = np.array([ep.featurize(Composition(c)) for c in comps])
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_pairs_and_combined_features():
    from htflow.search.features import fraction_matrix, get_featurizer

    els = ["Cu", "Ni", "Pd"]
    F = fraction_matrix([{"Cu": 0.5, "Ni": 0.25, "Pd": 0.25}], els)
    pairs = get_featurizer("pairs", els)
    np.testing.assert_allclose(pairs(F)[0], [0.5, 0.25, 0.25, 0.125, 0.125, 0.0625])
    assert pairs.labels()[3:] == ["x_Cu*x_Ni", "x_Cu*x_Pd", "x_Ni*x_Pd"]
    both = get_featurizer("fractions+pairs", els)
    assert both(F).shape == (1, 9)
    with pytest.raises(InputError, match="unknown featurizer 'fractons'.*fractions, pairs, magpie"):
        get_featurizer("fractons", els)


# -- surrogates ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gp", "gp-iso", "forest"])
def test_surrogates_learn_a_smooth_function_with_honest_uncertainty(name):
    from htflow.search.surrogates import get_surrogate

    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (80, 3))
    f = lambda X: np.sin(3 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2]  # noqa: E731
    model = get_surrogate(name, seed=0).fit(X, f(X))
    Xt = rng.uniform(0, 1, (200, 3))
    mean, std = model.predict(Xt)
    assert mean.shape == std.shape == (200,)
    assert (std > 0).all()
    err = np.abs(mean - f(Xt))
    assert err.mean() < 0.1 * np.ptp(f(Xt))
    # far from the data the model is less sure than at a training point
    _, s_train = model.predict(X[:5])
    _, s_far = model.predict(np.array([[3.0, 3.0, 3.0]]))
    assert s_far[0] > s_train.mean()


def test_gp_condition_keeps_hyperparameters_and_shrinks_uncertainty_at_the_new_point():
    from htflow.search.surrogates import get_surrogate

    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, (30, 2))
    y = X[:, 0] - X[:, 1]
    gp = get_surrogate("gp").fit(X, y)
    x_new = np.array([[0.9, 0.1]])
    m0, s0 = gp.predict(x_new)
    gp2 = gp.condition(x_new, m0)
    m1, s1 = gp2.predict(x_new)
    assert str(gp2.gp.kernel_) == str(gp.gp.kernel_)
    assert s1[0] < s0[0]
    assert m1[0] == pytest.approx(m0[0], abs=1e-3 * (abs(m0[0]) + 1))


# -- cross-validation metrics ------------------------------------------------------
def test_cv_metrics_equal_sklearn_on_the_same_predictions():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import KFold

    from htflow.search.planner import cross_validate
    from htflow.search.surrogates import get_surrogate

    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, (40, 2))
    y = X[:, 0] ** 2 + 0.05 * rng.standard_normal(40)
    cv = cross_validate(lambda: get_surrogate("gp"), X, y, folds=5, seed=11)
    pred, std = np.array(cv["y_pred"]), np.array(cv["y_std"])
    # the out-of-fold predictions are those of an independent loop over the same folds
    ref = np.empty(40)
    for tr, te in KFold(5, shuffle=True, random_state=11).split(X):
        ref[te] = get_surrogate("gp").fit(X[tr], y[tr]).predict(X[te])[0]
    np.testing.assert_allclose(pred, ref, rtol=1e-6, atol=1e-9)
    assert cv["mae"] == pytest.approx(mean_absolute_error(y, pred))
    assert cv["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)))
    assert cv["r2"] == pytest.approx(r2_score(y, pred))
    assert cv["within_1sigma"] == pytest.approx(np.mean(np.abs(y - pred) <= std))
    assert cv["within_2sigma"] == pytest.approx(np.mean(np.abs(y - pred) <= 2 * std))
    assert cv["n"] == 40 and cv["folds"] == 5


@pytest.mark.parametrize("acquisition", ["ei", "ucb"])
def test_believer_batches_spread_out(acquisition):
    """Top-k picks neighbours of one predicted optimum; the believer batch spreads over the simplex."""
    from scipy.spatial.distance import pdist

    from htflow.search.guided import Planner
    from htflow.search.planner import surrogate_settings as settings

    cands = np.array([(i / 40, j / 40, 1 - i / 40 - j / 40) for i in range(41) for j in range(41 - i)])
    train = cands[np.random.default_rng(0).choice(len(cands), 15, replace=False)]

    def f(X):  # two wells
        return (-np.exp(-((X[:, 0] - 0.6) ** 2 + (X[:, 1] - 0.2) ** 2) / 0.05)
                - 0.8 * np.exp(-((X[:, 0] - 0.1) ** 2 + (X[:, 1] - 0.7) ** 2) / 0.05))

    common = dict(model="gp", features="fractions", acquisition=acquisition, cv_folds=0,
                  prune={"enabled": False})
    picks = {
        batch: Planner(settings(batch=batch, **common), ["Cu", "Ni", "Pd"]).select(train, f(train), cands, 8, 0, 2)
        for batch in ("top", "believer")
    }
    assert len(set(picks["believer"].chosen)) == 8
    spread = {b: pdist(cands[sel.chosen]).mean() for b, sel in picks.items()}
    assert spread["believer"] > 3 * spread["top"]
