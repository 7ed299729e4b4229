"""Fit, cross-validate, prune and pick on fraction matrices: the decision step of the surrogate sampler.

:class:`Planner` works on numbers only (no store, no structures), so the same
step serves campaigns, replays and benchmarks.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import KFold

from htflow.schemas.config import SurrogateConfig
from htflow.search.acquisition import get_acquisition
from htflow.search.features import get_featurizer
from htflow.search.surrogates import fit, get_surrogate
from htflow.settings import get_settings

#: results from which a GP's kriging believer updates in place (below it, a refit per pick is cheap)
FAST_BELIEVER = 300
#: ``model: auto`` chooses among these each round by the held-out log predictive density of k-fold CV
AUTO_MODELS = ("gp-plain", "forest")


def surrogate_settings(cfg: SurrogateConfig | dict | None = None, **overrides: Any) -> SurrogateConfig:
    """Validated ``search.surrogate`` settings from a config, a mapping and/or keyword overrides."""
    data = cfg.model_dump() if isinstance(cfg, SurrogateConfig) else dict(cfg or {})
    data.update(overrides)
    return SurrogateConfig.model_validate(data)


def cross_validate(make_model, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                   noise: np.ndarray | None = None) -> dict | None:
    """k-fold CV of a fresh model per fold: metrics and the out-of-fold predictions."""
    n = len(y)
    k = min(folds, n)
    if k < 2 or n < 4:
        return None
    mean, std = np.empty(n), np.empty(n)
    fold_mae = []
    for train, test in KFold(k, shuffle=True, random_state=seed).split(X):
        part = None if noise is None else noise[train]
        m, s = fit(make_model(), X[train], y[train], part).predict(X[test])
        mean[test], std[test] = m, s
        fold_mae.append(float(np.mean(np.abs(m - y[test]))))
    err = np.abs(y - mean)
    z = err / np.maximum(std, 1e-300)
    return {
        "folds": k,
        "n": n,
        "mae": float(mean_absolute_error(y, mean)),
        "rmse": float(np.sqrt(mean_squared_error(y, mean))),
        "r2": float(r2_score(y, mean)) if np.ptp(y) > 0 else None,
        "mae_fold_std": float(np.std(fold_mae)),
        "within_1sigma": float(np.mean(err <= std)),
        "within_2sigma": float(np.mean(err <= 2 * std)),
        # how much wider the model's sigma must be for 95% of held-out errors to fall inside 2 sigma
        "sigma_scale": float(max(1.0, np.quantile(z, 0.95) / 1.96)),
        # the factor that makes +-1 sigma cover 68% of the held-out errors (a normal's median |z| is
        # 0.674), bounded to [0.2, 20]: search.surrogate.calibrate acquires with sigma x this
        "sigma_calibration": float(np.clip(np.median(z) / 0.6745, 0.2, 20.0)),
        "y_true": y.tolist(),
        "y_pred": mean.tolist(),
        "y_std": std.tolist(),
    }


def weigh(acq: np.ndarray, p_ok: np.ndarray) -> np.ndarray:
    """The acquisition given each candidate's probability of a successful calculation.

    Candidates likelier to fail than not are left out (unless that leaves none); a non-negative
    acquisition is also multiplied by the probability (constrained EI, Gardner et al. 2014).
    Without leaving them out, an unexplored region where everything failed keeps its promise:
    failures give the model no values there.
    """
    weighted = acq * p_ok if np.all(acq >= 0) else acq
    ok = p_ok >= get_settings().feasibility_cutoff
    return np.where(ok, weighted, -np.inf) if ok.any() else weighted


@dataclass
class Selection:
    """What :meth:`Planner.select` chose and why."""

    chosen: list[int]
    mean: np.ndarray
    std: np.ndarray
    acquisition: list[float]
    pruned: np.ndarray
    info: dict = field(default_factory=dict)
    #: the candidates chosen from: the ones given, plus any the ``refine`` hook added
    candidates: np.ndarray | None = None
    #: the model fitted on every result (for explanations)
    model: Any = None


class Planner:
    """Fit, cross-validate, prune and pick, on fraction matrices (no store, no structures)."""

    def __init__(self, settings: SurrogateConfig, elements: list[str]):
        self.s = settings
        self.elements = list(elements)
        self.featurize = get_featurizer(settings.features, self.elements)
        self.acquire = get_acquisition(settings.acquisition)
        if settings.model != "auto":
            get_surrogate(settings.model)  # fail early on a bad name

    def select(self, train: np.ndarray, y: np.ndarray, cands: np.ndarray, n: int, seed: int,
               rnd: int, allow_prune: bool = True, refine: Any = None, feasible: Any = None,
               threshold: Any = None, noise: np.ndarray | None = None) -> Selection:
        """Choose ``n`` rows of ``cands`` given fractions ``train`` with objective ``y`` (minimised).

        ``noise``, if given, is each value's own noise variance (an average over decorations).
        ``refine(score) -> rows``, if given, may add candidates once the model is fitted;
        ``score(fractions) -> acquisition`` (larger is better). ``feasible(fractions) ->
        probability of success``, if given, weights the acquisition (see :func:`weigh`).
        ``threshold(fractions) -> limit``, if given, makes this a level-set search: the
        acquisition is the probability that the objective is at most the limit there (e.g. the
        convex hull plus ``stable_within``), and pruning rules out candidates whose optimistic
        bound is above it.
        """
        s = self.s
        X = self.featurize(train)
        info: dict = {"model": s.model, "features": s.features, "acquisition": s.acquisition,
                      "n_train": len(y), "n_candidates": len(cands)}
        name, cv = self._choose(X, y, seed, rnd, info, noise) if s.model == "auto" else (s.model, None)
        make_model = functools.partial(get_surrogate, name, seed=seed)
        model = self._fit(make_model, X, y, seed, rnd, info, noise, cv)
        scale = self._calibration(info)  # 1 unless search.surrogate.calibrate
        best = float(np.min(y))
        if refine is not None:
            cands = self._refine(model, cands, best, refine, feasible, threshold, seed, rnd, info, scale)
        Xc = self.featurize(cands)
        p_ok = feasible(cands) if feasible is not None else None
        if p_ok is not None:
            info["feasibility"] = {"mean_p": float(np.mean(p_ok)), "below_half": int((p_ok < 0.5).sum())}
        mean, std = model.predict(Xc)
        limit = threshold(cands) if threshold is not None else None
        if limit is not None:
            info["limit"] = limit
        pruned = self._prune(mean, std, best, limit, len(y), allow_prune, info)
        rng = np.random.default_rng([seed, rnd, 3])
        batch = _Batch(self, make_model, X, y, Xc, best, limit, p_ok, rng, scale)
        chosen, scores = batch.pick(model, mean, std * scale, n, ~pruned)
        return Selection(chosen, mean, std, scores, pruned, info, cands, model)

    def model_of(self, name: str, train: np.ndarray, y: np.ndarray, seed: int) -> Any:
        """Model ``name`` (``auto``: the first candidate model) fitted to fractions ``train`` and values
        ``y``, without CV: each objective's own model, to explain a round that modelled a scalarisation."""
        model = get_surrogate(AUTO_MODELS[0] if name == "auto" else name, seed=seed)
        return fit(model, self.featurize(train), y)

    def acquisition(self, m: np.ndarray, sd: np.ndarray, best: float, rng: np.random.Generator,
                    limit: np.ndarray | None) -> np.ndarray:
        """The acquisition (larger is better); with a ``limit``, the probability of being at most it."""
        if limit is None:
            return np.asarray(self.acquire(m, sd, best, rng=rng, beta=self.s.beta, xi=self.s.xi), float)
        return norm.cdf((limit - m) / np.maximum(sd, 1e-12))

    def _calibration(self, info: dict) -> float:
        """``search.surrogate.calibrate``: the round's CV scale for sigma (1 without it or without CV)."""
        cv = info.get("cv") or {}
        if not self.s.calibrate or "sigma_calibration" not in cv:
            return 1.0
        info["sigma_calibration"] = cv["sigma_calibration"]
        return float(cv["sigma_calibration"])

    def _cv_part(self, n: int, seed: int, rnd: int) -> tuple[int, np.ndarray]:
        """The CV's seed and the results it uses (a seeded subset of at most ``cv_max``)."""
        cv_seed = int(np.random.SeedSequence([seed, rnd]).generate_state(1)[0])
        part = np.arange(n)
        if n > self.s.cv_max:  # bounded cost: CV on a seeded subset
            part = np.sort(np.random.default_rng(cv_seed).choice(n, self.s.cv_max, replace=False))
        return cv_seed, part

    def _choose(self, X: np.ndarray, y: np.ndarray, seed: int, rnd: int, info: dict,
                noise: np.ndarray | None) -> tuple[str, dict | None]:
        """``model: auto``: the candidate model whose k-fold CV predicts held-out results best, by the mean
        negative log predictive density (it weighs the mean's error by the model's own sigma, as the
        acquisition does); the scores of each are recorded in ``info["model_choice"]``. Returns the
        chosen name and its CV (which :meth:`_fit` then need not repeat)."""
        t0 = time.perf_counter()
        cv_seed, part = self._cv_part(len(y), seed, rnd)
        scores, cvs = {}, {}
        for name in AUTO_MODELS:
            cv = cross_validate(functools.partial(get_surrogate, name, seed=seed), X[part], y[part],
                                max(self.s.cv_folds, 2), seed=cv_seed,
                                noise=None if noise is None else noise[part])
            if cv is None:
                continue
            cvs[name] = cv
            t, m, s = (np.asarray(cv[k]) for k in ("y_true", "y_pred", "y_std"))
            var = np.maximum(s, 1e-12 * (np.std(t) or 1.0)) ** 2
            nlpd = float(np.mean(0.5 * np.log(2 * np.pi * var) + (t - m) ** 2 / (2 * var)))
            scores[name] = {"nlpd": nlpd, "mae": cv["mae"], "r2": cv["r2"],
                            "within_1sigma": cv["within_1sigma"]}
        chosen = min(scores, key=lambda k: scores[k]["nlpd"]) if scores else AUTO_MODELS[0]
        info["model"] = chosen
        info["model_choice"] = {"chosen": chosen, "by": "k-fold CV: mean negative log predictive density",
                                "scores": scores, "seconds": time.perf_counter() - t0}
        return chosen, cvs.get(chosen)

    def _fit(self, make_model: Any, X: np.ndarray, y: np.ndarray, seed: int, rnd: int, info: dict,
             noise: np.ndarray | None = None, done_cv: dict | None = None) -> Any:
        """Cross-validate (k-fold, recorded in ``info``), then fit the model on everything. ``done_cv``: the
        same model's CV on the same folds, already run (``model: auto``), used where it is the same."""
        t0 = time.perf_counter()
        model = fit(make_model(), X, y, noise)
        if noise is not None and np.any(noise > 0):
            info["noise_std_mean"] = float(np.sqrt(np.mean(noise)))
        info["fit_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if self.s.cv_folds:
            cv_seed, part = self._cv_part(len(y), seed, rnd)
            folds_model = make_model
            if len(y) >= FAST_BELIEVER and callable(getattr(model, "fixed", None)):
                folds_model = model.fixed  # at scale: the folds keep the full fit's hyperparameters
            same = done_cv is not None and folds_model is make_model and self.s.cv_folds >= 2
            info["cv"] = done_cv if same else cross_validate(
                folds_model, X[part], y[part], self.s.cv_folds, seed=cv_seed,
                noise=None if noise is None else noise[part])
            if info["cv"] is not None:
                if len(part) < len(y):
                    info["cv"]["subset_of"] = len(y)
                if folds_model is not make_model:
                    info["cv"]["hyperparameters"] = "fixed to the full fit's"
        info["cv_seconds"] = time.perf_counter() - t0
        if hasattr(model, "describe"):
            info["fitted"] = model.describe()
        return model

    def _refine(self, model: Any, cands: np.ndarray, best: float, refine: Any, feasible: Any, threshold: Any,
                seed: int, rnd: int, info: dict, scale: float = 1.0) -> np.ndarray:
        """The candidates plus those ``refine`` finds by optimising the acquisition."""
        t0 = time.perf_counter()
        acq_rng = np.random.default_rng([seed, rnd, 4])

        def score(fractions: np.ndarray) -> np.ndarray:
            m, sd = model.predict(self.featurize(fractions))
            limit = threshold(fractions) if threshold is not None else None
            a = self.acquisition(m, sd * scale, best, acq_rng, limit)
            return weigh(a, feasible(fractions)) if feasible is not None else a

        extra = refine(score)
        if extra is not None and len(extra):
            cands = np.vstack([cands, extra])
        info["evolved"] = 0 if extra is None else len(extra)
        info["evolve_seconds"] = time.perf_counter() - t0
        return cands

    def _prune(self, mean: np.ndarray, std: np.ndarray, best: float, limit: np.ndarray | None, n_train: int,
               allow: bool, info: dict) -> np.ndarray:
        """Candidates whose optimistic bound is worse than the best (or the limit), once the model's
        CV R² allows it."""
        pruned = np.zeros(len(mean), bool)
        cv = info.get("cv") or {}
        r2, p = cv.get("r2"), self.s.prune
        if allow and p.enabled and r2 is not None and r2 >= p.min_r2 and n_train >= p.min_results:
            # the bound uses sigma widened until the CV's held-out errors are covered
            info["sigma_scale"] = cv["sigma_scale"]
            bound = best if limit is None else limit
            pruned = mean - p.kappa * cv["sigma_scale"] * std > bound + p.margin
        info["pruned"] = int(pruned.sum())
        return pruned


@dataclass
class _Batch:
    """Picks a batch one candidate at a time (kriging believer) or the top ``n`` at once."""

    planner: Planner
    make_model: Any
    X: np.ndarray
    y: np.ndarray
    Xc: np.ndarray
    best: float
    limit: np.ndarray | None
    p_ok: np.ndarray | None
    rng: np.random.Generator
    #: the calibration of sigma (``search.surrogate.calibrate``), applied to every sigma picked on
    scale: float = 1.0

    def score(self, m: np.ndarray, sd: np.ndarray) -> np.ndarray:
        acq = self.planner.acquisition(m, sd, self.best, self.rng, self.limit)
        return weigh(acq, self.p_ok) if self.p_ok is not None else acq

    def pick(self, model: Any, mean: np.ndarray, std: np.ndarray, n: int,
             free: np.ndarray) -> tuple[list[int], list[float]]:
        chosen: list[int] = []
        scores: list[float] = []
        m, sd = mean, std
        X_all, y_all = self.X, self.y
        # From FAST_BELIEVER results on, a GP's believer lowers variances in place instead of refitting
        # (a refit also renormalises the targets: the suite's numbers are the refit's). The model says
        # None where its cross-covariances would be too large: the batch refits then.
        fast = (self.planner.s.batch == "believer" and callable(getattr(model, "believer", None)) and n > 1
                and len(self.X) >= FAST_BELIEVER)
        state = model.believer(self.Xc) if fast else None
        for _ in range(min(n, int(free.sum()))):
            acq = self.score(m, sd)
            masked = np.where(free, acq, -np.inf)
            if self.planner.s.batch == "top":
                order = np.argsort(-masked, kind="stable")
                picks = [int(i) for i in order[: min(n, int(free.sum()))] if np.isfinite(masked[i])]
                return picks, [float(acq[i]) for i in picks]
            i = int(np.argmax(masked))
            if not np.isfinite(masked[i]):  # the rest are predicted to fail
                break
            chosen.append(i)
            scores.append(float(acq[i]))
            free[i] = False
            if len(chosen) < n and free.any():
                # kriging believer: the pick "came out" at the model's own mean
                if state is not None:  # a GP: means unchanged, variances lowered, no refit
                    state.observe(i)
                    sd = state.std() * self.scale
                    continue
                if callable(getattr(model, "condition", None)):
                    model = model.condition(self.Xc[i : i + 1], np.array([m[i]]))
                else:  # a plug-in model without condition(): refit on the augmented data
                    X_all, y_all = np.vstack([X_all, self.Xc[i : i + 1]]), np.append(y_all, m[i])
                    model = self.make_model().fit(X_all, y_all)
                m, sd = model.predict(self.Xc)
                sd = sd * self.scale
        return chosen, scores
