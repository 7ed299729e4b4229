"""Surrogate models: predict an objective, with an uncertainty, from features.

Every surrogate has the same interface::

    model.fit(X, y)                   # learn (hyperparameters included)
    model.fit(X, y, noise=v)          # ... knowing each value's own noise variance (optional)
    mean, std = model.predict(X)      # one mean and one standard deviation per row
    model.condition(X, y)             # a copy refitted on more data, hyperparameters kept

``condition`` is what diverse batch selection (kriging believer) needs: the
model is told "pretend the point you just chose came out at your own
prediction", which shrinks its uncertainty there without moving its mean, so
the next choice of the same batch goes elsewhere.

- ``gp-plain`` (the default): scikit-learn's textbook GP, ``ConstantKernel() * Matern(0.5, nu=2.5)
  + WhiteKernel(1e-2)`` with scikit-learn's bounds, on the raw element fractions, targets
  normalised, no restarts. On the search suite it needed as many evaluations as, or fewer than,
  the same GP choosing the top 4 by EI on every pool, and fewer than ``gp``.
- ``gp``: scikit-learn Gaussian process, constant × anisotropic Matérn-5/2 +
  white noise, hyperparameters fitted by maximum likelihood with restarts,
  inputs standardised, targets normalised.
- ``gp-iso``: the same with one length scale (cheaper in many dimensions).
- ``forest``: extra-trees ensemble; the mean and standard deviation across
  trees (plus the leaves' own spread) are the prediction and its uncertainty.

``package.module:object`` names any class with ``fit``, ``predict`` (returning
mean and std) and, optionally, ``condition`` and a ``noise`` argument of ``fit``.

Per-value noise (``noise``: variances in the units of ``y`` squared) comes from
averaging several decorations of a composition (``structure.configurations``):
the variance of their mean. The GP adds it to its kernel's diagonal beside the
fitted white noise; the forest widens its uncertainty floor by its mean.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from typing import Protocol

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from htflow.errors import InputError
from htflow.search.sparse import MAX_EXACT, SparseBeliever, SparsePosterior, split_kernel
from htflow.utils.imports import plugin_names, resolve


class Surrogate(Protocol):
    """A regression model with an uncertainty."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Surrogate: ...

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class _Scaler:
    """Standardise columns; drop the constant ones."""

    def fit(self, X: np.ndarray) -> _Scaler:
        self.mu = X.mean(axis=0)
        sd = X.std(axis=0)
        self.keep = sd > 1e-12
        self.sd = np.where(self.keep, sd, 1.0)
        if not self.keep.any():  # every training point identical: keep one column
            self.keep[0] = True
        return self

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mu) / self.sd)[:, self.keep]


class GaussianProcess:
    """scikit-learn GP: constant × Matérn(ν=5/2, one length scale per feature) + noise."""

    def __init__(self, anisotropic: bool = True, restarts: int = 2, nu: float = 2.5, seed: int = 0,
                 max_opt: int = 300, standardize: bool = True, plain: bool = False):
        self.anisotropic, self.restarts, self.nu, self.seed = anisotropic, restarts, nu, seed
        #: ``plain``: scikit-learn's textbook kernel (ConstantKernel() * Matern(0.5) + WhiteKernel(1e-2),
        #: default bounds) on the raw fractions; else standardised inputs and htflow's bounds
        self.standardize, self.plain = standardize and not plain, plain
        #: hyperparameters are fitted on at most this many points (a seeded subset), the GP on all
        self.max_opt = max_opt
        #: beyond this many points the GP conditions through inducing points (:mod:`htflow.search.sparse`)
        self.max_exact = MAX_EXACT
        self.sparse: SparsePosterior | None = None

    def _kernel(self, d: int):
        if self.plain:
            return ConstantKernel() * Matern(length_scale=0.5, nu=self.nu) + WhiteKernel(1e-2)
        scale = np.ones(d) if self.anisotropic and d > 1 else 1.0
        return (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(scale, (1e-2, 1e3), nu=self.nu)
                + WhiteKernel(1e-4, (1e-9, 1e-1)))

    def fit(self, X: np.ndarray, y: np.ndarray, kernel=None,
            noise: np.ndarray | None = None) -> GaussianProcess:

        X, y = np.asarray(X, float), np.asarray(y, float)
        self.noise = np.zeros(len(y)) if noise is None else np.asarray(noise, float)
        if kernel is None and getattr(self, "_fixed_kernel", None) is not None:
            kernel = self._fixed_kernel  # a copy made by fixed(): its scaler is the original's
        if kernel is None:
            self.scaler = _Scaler().fit(X) if self.standardize else None
        Z = self.scaler(X) if self.scaler is not None else X
        # targets are normalised (normalize_y): so is their noise variance
        scale = float(np.var(y)) if len(y) > 1 and np.var(y) > 0 else 1.0
        self.gp = GaussianProcessRegressor(
            kernel=kernel if kernel is not None else self._kernel(Z.shape[1]),
            alpha=1e-10 + self.noise / scale,
            normalize_y=True,
            n_restarts_optimizer=0 if kernel is not None else self.restarts,
            optimizer=None if kernel is not None else "fmin_l_bfgs_b",
            random_state=self.seed,
        )
        with warnings.catch_warnings():  # bounds reached / convergence chatter
            warnings.simplefilter("ignore")
            if kernel is None and len(y) > self.max_opt:
                # maximum likelihood on a subset (O(m^3) per step), then the GP on every point once
                sub = np.sort(np.random.default_rng(self.seed).choice(len(y), self.max_opt, replace=False))
                self.gp.alpha = self.gp.alpha[sub] if np.ndim(self.gp.alpha) else self.gp.alpha
                self.gp.fit(Z[sub], y[sub])
                return self.fit(X, y, kernel=self.gp.kernel_, noise=noise)
            self.sparse = None
            if kernel is not None and len(y) > self.max_exact and split_kernel(kernel) is not None:
                # many results: the same hyperparameters, conditioned through inducing points
                self.sparse = SparsePosterior(kernel, Z, y, self.gp.alpha)
                self.gp.kernel_ = kernel
            else:
                self.gp.fit(Z, y)
        self.X, self.y = X, y
        return self

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, float)
        return self.scaler(X) if self.scaler is not None else X

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.sparse is not None:
            mean, std = self.sparse.predict(self._inputs(X))
        else:
            mean, std = self.gp.predict(self._inputs(X), return_std=True)
        return mean, np.maximum(std, 1e-12)

    def mean(self, X: np.ndarray) -> np.ndarray:
        """The predictive mean alone (no variance: one product per point)."""
        Z = self._inputs(X)
        return self.sparse.mean(Z) if self.sparse is not None else self.gp.predict(Z)

    @property
    def prediction_size(self) -> int:
        """The points a prediction conditions on (its cost per row): the results, or the inducing points."""
        return len(self.sparse.U) if self.sparse is not None else len(self.y)

    def fixed(self) -> GaussianProcess:
        """An unfitted copy that fits with this one's hyperparameters (and input scaling), no optimiser:
        cross-validation at scale costs one Cholesky per fold."""
        new = copy.copy(self)
        new._fixed_kernel = self.gp.kernel_
        return new

    def believer(self, Xc: np.ndarray) -> Believer | SparseBeliever | None:
        """The kriging believer over candidates ``Xc`` without refits (:class:`Believer`), or None where
        its cross-covariances would pass 50 million floats (the batch then refits)."""
        if self.sparse is not None:
            fits = len(self.sparse.U) * len(Xc) <= 50_000_000
            return SparseBeliever(self.sparse, self._inputs(Xc)) if fits else None
        return Believer(self.gp, self._inputs(Xc)) if len(self.y) * len(Xc) <= 50_000_000 else None

    def condition(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        new = copy.copy(self)
        return new.fit(np.vstack([self.X, X]), np.concatenate([self.y, y]), kernel=self.gp.kernel_,
                       noise=np.concatenate([self.noise, np.zeros(len(y))]))

    def describe(self) -> str:
        return str(self.gp.kernel_)


class Believer:
    """A fitted GP's batch by kriging believer, in O(candidates x results) per pick instead of a refit.

    Pretending candidate p came out at the GP's own mean leaves every mean where it was and lowers
    each candidate's variance by cov(x, p)^2 / var(p), the posterior covariance with p over p's
    predictive variance (hyperparameters and target normalisation kept, as a refit with a fixed kernel
    would keep them). The covariances come from the whitened cross-covariances the first prediction
    needs anyway, plus one row per pseudo-observation.
    """

    def __init__(self, gp: GaussianProcessRegressor, Z: np.ndarray):
        self.kernel, self.Z = gp.kernel_, Z
        self.V = solve_triangular(gp.L_, gp.kernel_(Z, gp.X_train_).T, lower=True)  # (n_train, n_cand)
        self.var = np.maximum(gp.kernel_.diag(Z) - np.einsum("ij,ij->j", self.V, self.V), 1e-30)
        self.scale = float(np.squeeze(gp._y_train_std)) ** 2
        self.rows: list[np.ndarray] = []

    def std(self) -> np.ndarray:
        return np.maximum(np.sqrt(self.var * self.scale), 1e-12)

    def observe(self, p: int) -> None:
        """Candidate ``p`` observed at its mean."""
        cov = self.kernel(self.Z, self.Z[p:p + 1])[:, 0] - self.V.T @ self.V[:, p]
        for u in self.rows:
            cov -= u * u[p]
        u = cov / np.sqrt(self.var[p])
        self.var = np.maximum(self.var - u * u, 1e-30)
        self.rows.append(u)


class Forest:
    """Extra-trees ensemble; uncertainty from the spread across trees and within leaves."""

    def __init__(self, n_estimators: int = 200, min_samples_leaf: int = 1, seed: int = 0):
        self.n_estimators, self.min_samples_leaf, self.seed = n_estimators, min_samples_leaf, seed

    def fit(self, X: np.ndarray, y: np.ndarray, noise: np.ndarray | None = None) -> Forest:

        self.X, self.y = np.asarray(X, float), np.asarray(y, float)
        self.noise = np.zeros(len(self.y)) if noise is None else np.asarray(noise, float)
        self.model = ExtraTreesRegressor(
            n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
            random_state=self.seed, n_jobs=1,
        ).fit(self.X, self.y)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, float)
        per_tree = np.stack([t.predict(X) for t in self.model.estimators_])
        mean = per_tree.mean(axis=0)
        # law of total variance: between trees, plus a floor from the data's own noise level
        floor = 1e-3 * (np.std(self.y) or 1.0)
        return mean, np.sqrt(per_tree.var(axis=0) + floor**2 + float(np.mean(self.noise)))

    def mean(self, X: np.ndarray) -> np.ndarray:
        """The predictive mean alone."""
        return self.model.predict(np.asarray(X, float))

    def condition(self, X: np.ndarray, y: np.ndarray) -> Forest:
        return copy.copy(self).fit(np.vstack([self.X, X]), np.concatenate([self.y, y]),
                                   np.concatenate([self.noise, np.zeros(len(y))]))

    def describe(self) -> str:
        return f"ExtraTrees({self.n_estimators} trees, min_samples_leaf={self.min_samples_leaf})"


def fit(model: Surrogate, X: np.ndarray, y: np.ndarray, noise: np.ndarray | None = None) -> Surrogate:
    """``model.fit(X, y)``, with each value's noise variance when there is some and the model takes it."""
    if noise is not None and np.any(noise > 0) and "noise" in inspect.signature(model.fit).parameters:
        return model.fit(X, y, noise=noise)
    return model.fit(X, y)


SURROGATES = {
    "gp-plain": lambda seed: GaussianProcess(anisotropic=False, restarts=0, seed=seed, plain=True),
    "gp": lambda seed: GaussianProcess(anisotropic=True, seed=seed),
    "gp-iso": lambda seed: GaussianProcess(anisotropic=False, seed=seed),
    "forest": lambda seed: Forest(seed=seed),
}


def get_surrogate(name: str, seed: int = 0) -> Surrogate:
    """A fresh (unfitted) surrogate by name or ``package.module:object``."""
    if name in SURROGATES:
        return SURROGATES[name](seed)
    obj = resolve("surrogates", name, "search.surrogate.model")
    if obj is not None:
        model = obj() if isinstance(obj, type) else copy.deepcopy(obj)
        if not (callable(getattr(model, "fit", None)) and callable(getattr(model, "predict", None))):
            raise InputError(
                f"search.surrogate.model: {name!r} needs fit(X, y) and predict(X) -> (mean, std)"
            )
        return model
    raise InputError(
        f"search.surrogate.model: unknown model {name!r}; allowed: "
        f"{', '.join([*SURROGATES, 'auto', *plugin_names('surrogates')])} or an import path "
        "package.module:object"
    )
