"""Acquisition functions: how good it would be to compute a candidate next.

All functions work in *minimisation* form (``mean`` of the objective to be
minimised, ``best`` the lowest value found so far; a maximised objective is
negated before it gets here) and return a score where larger is better.

- ``greedy``: ``-mean`` (exploit the model).
- ``ucb``: ``-(mean - beta * std)``, the lower confidence bound (Srinivas et
  al., 2010), written as an upper bound of the negated objective.
- ``ei``: expected improvement ``(best - mean - xi) Φ(z) + std φ(z)``,
  ``z = (best - mean - xi) / std`` (Jones et al., 1998).
- ``pi``: probability of improvement ``Φ(z)`` (Kushner, 1964).
- ``thompson``: one draw from each candidate's predictive distribution,
  negated (independent per candidate).
- ``explore``: ``std`` (pure exploration / uncertainty sampling).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import norm

from htflow.errors import InputError
from htflow.utils.imports import plugin_names, resolve


def greedy(mean, std, best, rng=None, **_):
    return -np.asarray(mean, float)


def ucb(mean, std, best, rng=None, beta: float = 2.0, **_):
    return -(np.asarray(mean, float) - beta * np.asarray(std, float))


def expected_improvement(mean, std, best, rng=None, xi: float = 0.0, **_):
    mean, std = np.asarray(mean, float), np.maximum(np.asarray(std, float), 1e-12)
    imp = best - mean - xi
    z = imp / std
    return imp * norm.cdf(z) + std * norm.pdf(z)


def probability_of_improvement(mean, std, best, rng=None, xi: float = 0.0, **_):
    mean, std = np.asarray(mean, float), np.maximum(np.asarray(std, float), 1e-12)
    return norm.cdf((best - mean - xi) / std)


def thompson(mean, std, best, rng=None, **_):
    rng = rng if rng is not None else np.random.default_rng()
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    return -(mean + std * rng.standard_normal(mean.shape))


def explore(mean, std, best, rng=None, **_):
    return np.asarray(std, float).copy()


ACQUISITIONS: dict[str, Callable[..., np.ndarray]] = {
    "greedy": greedy,
    "ucb": ucb,
    "ei": expected_improvement,
    "pi": probability_of_improvement,
    "thompson": thompson,
    "explore": explore,
}


def get_acquisition(name: str) -> Callable[..., np.ndarray]:
    """An acquisition function by name or ``package.module:object``."""
    if name in ACQUISITIONS:
        return ACQUISITIONS[name]
    fn = resolve("acquisitions", name, "search.surrogate.acquisition")
    if fn is not None:
        if not callable(fn):
            raise InputError(f"search.surrogate.acquisition: {name!r} is not callable")
        return fn
    raise InputError(
        f"search.surrogate.acquisition: unknown acquisition {name!r}; allowed: "
        f"{', '.join([*ACQUISITIONS, *plugin_names('acquisitions')])} or an import path package.module:object"
    )
