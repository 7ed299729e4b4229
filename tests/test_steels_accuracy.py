"""The matbench_steels accuracy benchmark's parts: weight fractions and the averaged models."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import steels_accuracy


def test_weight_fractions_weigh_each_element_by_its_atomic_mass():
    comps = [{"Fe": 0.5, "C": 0.5}, {"Fe": 1.0}]
    atomic = steels_accuracy.features(comps, "atomic")  # columns in element order: C, Fe
    weight = steels_accuracy.features(comps, "weight")
    np.testing.assert_allclose(atomic, [[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(weight[0], [12.011 / (12.011 + 55.845), 55.845 / (12.011 + 55.845)], rtol=1e-3)
    np.testing.assert_allclose(weight.sum(axis=1), 1.0)


@pytest.mark.parametrize("kind", ["forest", "forest+boost"])
def test_a_candidate_learns_a_positive_target_in_log_space(kind):
    rng = np.random.default_rng(0)
    X = rng.random((80, 3))
    y = np.exp(1.0 + 2.0 * X[:, 0])  # positive, log-linear in the first column
    model = steels_accuracy.Model(kind, log=True, seed=0).fit(X[:60], y[:60])
    pred = model.predict(X[60:])
    assert np.all(pred > 0) and len(model.parts) == len(kind.split("+"))
    assert np.mean(np.abs(pred - y[60:])) < 0.3 * np.mean(np.abs(y[60:] - y[:60].mean()))
