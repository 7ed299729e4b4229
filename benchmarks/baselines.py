"""The plain Gaussian-process baseline of the search suite, exactly as a user would write it.

scikit-learn ``GaussianProcessRegressor(ConstantKernel() * Matern(length_scale=0.5, nu=2.5)
+ WhiteKernel(1e-2), normalize_y=True)`` on the element fractions, no input scaling, no
restarts. In the suite it runs through htflow's surrogate sampler as a plug-in model
(``search.surrogate.model: baselines:PlainGP``) with features ``fractions``, acquisition
``ei`` (xi = 0), batch ``top`` (the 4 best by EI each round), no CV, no pruning and no
feasibility model, after 8 random initial points. ``tests/test_search_suite.py`` checks that
this equals an independent 30-line scikit-learn loop.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from htflow.search.surrogates import get_surrogate


def plain_gp() -> GaussianProcessRegressor:
    return GaussianProcessRegressor(ConstantKernel() * Matern(length_scale=0.5, nu=2.5) + WhiteKernel(1e-2),
                                    normalize_y=True)


class PlainGP:
    """htflow's surrogate interface over :func:`plain_gp`."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> PlainGP:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.gp = plain_gp().fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.gp.predict(X, return_std=True)
        return mean, np.maximum(std, 1e-12)


#: search.surrogate settings of the baseline (sampler surrogate)
PLAIN_GP = {"model": "baselines:PlainGP", "features": "fractions", "acquisition": "ei", "xi": 0.0,
            "batch": "top", "cv_folds": 0, "prune": {"enabled": False}, "feasibility": False,
            "initial": 8, "initial_sampler": "random", "evolve": 0, "trust_region": False}


class GPForestMixture:
    """The issue's "small ensemble of both": htflow's default GP and its forest, an equal mixture of
    their predictive distributions (mean: the average; variance: the average variance plus the
    spread of the two means). Measured in the search suite, not a setting of htflow."""

    def __init__(self, seed: int = 0):
        self.parts = [get_surrogate("gp-plain", seed), get_surrogate("forest", seed)]

    def fit(self, X: np.ndarray, y: np.ndarray) -> GPForestMixture:
        for part in self.parts:
            part.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (m1, s1), (m2, s2) = (part.predict(X) for part in self.parts)
        mean = (m1 + m2) / 2
        return mean, np.sqrt((s1**2 + s2**2) / 2 + ((m1 - m2) / 2) ** 2)

    def condition(self, X: np.ndarray, y: np.ndarray) -> GPForestMixture:
        new = object.__new__(GPForestMixture)
        new.parts = [part.condition(X, y) for part in self.parts]
        return new
