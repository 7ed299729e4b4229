"""Surrogate-guided search (active learning).

Each round the :class:`SurrogateGenerator`

1. featurizes every finished result and fits the surrogate to the objective;
2. cross-validates it (k-fold on all results so far: MAE, RMSE, R² and the
   share of held-out points inside ±1σ and ±2σ) so every round says how good
   the model really is;
3. predicts every candidate not yet computed (the whole grid, or a fresh
   space-filling sample of a continuous space);
4. prunes candidates whose optimistic bound ``mean - kappa·std`` is worse
   than the best result by more than ``margin`` (only once the model's CV R²
   reaches ``min_r2``), recording the numbers; a later round whose model
   thinks better of them proposes them again;
5. picks the batch by the acquisition function, one at a time, telling the
   model after each pick that the point came out at its own prediction
   (kriging believer), so a batch spreads out instead of being eight
   neighbours of one optimum.

Until ``initial`` results exist it defers to a space-filling sampler.
Everything is seeded by the campaign seed and the round, and results are
ordered by key before fitting, so a resumed campaign proposes exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from htflow.acquisition import get_acquisition
from htflow.config import SurrogateConfig
from htflow.features import fraction_matrix, get_featurizer
from htflow.generators import ProposalContext, _Collector, get_generator, realise_within
from htflow.space import composition_key, fit_bounds
from htflow.surrogates import get_surrogate


def settings(cfg: SurrogateConfig | dict | None = None, **overrides: Any) -> SurrogateConfig:
    """Validated ``search.surrogate`` settings from a config, a mapping and/or keyword overrides."""
    data = cfg.model_dump() if isinstance(cfg, SurrogateConfig) else dict(cfg or {})
    data.update(overrides)
    return SurrogateConfig.model_validate(data)


def cross_validate(make_model, X: np.ndarray, y: np.ndarray, folds: int, seed: int) -> dict | None:
    """k-fold CV of a fresh model per fold: metrics and the out-of-fold predictions."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import KFold

    n = len(y)
    k = min(folds, n)
    if k < 2 or n < 4:
        return None
    mean, std = np.empty(n), np.empty(n)
    fold_mae = []
    for train, test in KFold(k, shuffle=True, random_state=seed).split(X):
        m, s = make_model().fit(X[train], y[train]).predict(X[test])
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
        "y_true": y.tolist(),
        "y_pred": mean.tolist(),
        "y_std": std.tolist(),
    }


FEASIBLE_P = 0.5


def weigh(acq: np.ndarray, p_ok: np.ndarray) -> np.ndarray:
    """The acquisition given each candidate's probability of a successful calculation.

    Candidates likelier to fail than not are left out (unless that leaves none); a non-negative
    acquisition is also multiplied by the probability (constrained EI, Gardner et al. 2014).
    Without leaving them out, an unexplored region where everything failed keeps its promise:
    failures give the model no values there.
    """
    weighted = acq * p_ok if np.all(acq >= 0) else acq
    ok = p_ok >= FEASIBLE_P
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


class Planner:
    """Fit, cross-validate, prune and pick, on fraction matrices (no store, no structures)."""

    def __init__(self, settings: SurrogateConfig, elements: list[str]):
        self.s = settings
        self.elements = list(elements)
        self.featurize = get_featurizer(settings.features, self.elements)
        self.acquire = get_acquisition(settings.acquisition)
        get_surrogate(settings.model)  # fail early on a bad name

    def select(self, train: np.ndarray, y: np.ndarray, cands: np.ndarray, n: int, seed: int,
               rnd: int, allow_prune: bool = True, refine: Any = None, feasible: Any = None,
               threshold: Any = None) -> Selection:
        """Choose ``n`` rows of ``cands`` given fractions ``train`` with objective ``y`` (minimised).

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

        def make_model():
            return get_surrogate(s.model, seed=seed)

        t0 = time.perf_counter()
        if s.cv_folds:
            cv_seed = int(np.random.SeedSequence([seed, rnd]).generate_state(1)[0])
            cv = cross_validate(make_model, X, y, s.cv_folds, seed=cv_seed)
            info["cv"] = cv
        info["cv_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = make_model().fit(X, y)
        info["fit_seconds"] = time.perf_counter() - t0
        if hasattr(model, "describe"):
            info["fitted"] = model.describe()
        best = float(np.min(y))

        def acquire(m: np.ndarray, sd: np.ndarray, rng: np.random.Generator,
                    limit: np.ndarray | None) -> np.ndarray:
            if limit is None:
                return np.asarray(self.acquire(m, sd, best, rng=rng, beta=s.beta, xi=s.xi), float)
            from scipy.stats import norm

            return norm.cdf((limit - m) / np.maximum(sd, 1e-12))

        if refine is not None:
            t0 = time.perf_counter()
            acq_rng = np.random.default_rng([seed, rnd, 4])

            def score(fractions: np.ndarray) -> np.ndarray:
                m, sd = model.predict(self.featurize(fractions))
                a = acquire(m, sd, acq_rng, threshold(fractions) if threshold is not None else None)
                return weigh(a, feasible(fractions)) if feasible is not None else a

            extra = refine(score)
            if extra is not None and len(extra):
                cands = np.vstack([cands, extra])
            info["evolved"] = 0 if extra is None else len(extra)
            info["evolve_seconds"] = time.perf_counter() - t0
        Xc = self.featurize(cands)
        p_ok = feasible(cands) if feasible is not None else None
        if p_ok is not None:
            info["feasibility"] = {"mean_p": float(np.mean(p_ok)), "below_half": int((p_ok < 0.5).sum())}
        mean, std = model.predict(Xc)
        limit = threshold(cands) if threshold is not None else None
        if limit is not None:
            info["limit"] = limit
        pruned = np.zeros(len(cands), bool)
        cv = info.get("cv") or {}
        r2 = cv.get("r2")
        p = s.prune
        if allow_prune and p.enabled and r2 is not None and r2 >= p.min_r2 and len(y) >= p.min_results:
            # the bound uses sigma widened until the CV's held-out errors are covered
            info["sigma_scale"] = cv["sigma_scale"]
            bound = best if limit is None else limit
            pruned = mean - p.kappa * cv["sigma_scale"] * std > bound + p.margin
        info["pruned"] = int(pruned.sum())
        rng = np.random.default_rng([seed, rnd, 3])
        free = ~pruned
        chosen: list[int] = []
        scores: list[float] = []
        m, sd = mean, std
        X_all, y_all = X, y
        for _ in range(min(n, int(free.sum()))):
            acq = acquire(m, sd, rng, limit)
            if p_ok is not None:
                acq = weigh(acq, p_ok)
            masked = np.where(free, acq, -np.inf)
            if s.batch == "top":
                order = np.argsort(-masked, kind="stable")
                picks = [int(i) for i in order[: min(n, int(free.sum()))] if np.isfinite(masked[i])]
                chosen, scores = picks, [float(acq[i]) for i in picks]
                break
            i = int(np.argmax(masked))
            if not np.isfinite(masked[i]):  # the rest are predicted to fail
                break
            chosen.append(i)
            scores.append(float(acq[i]))
            free[i] = False
            if len(chosen) < n and free.any():
                # kriging believer: the pick "came out" at the model's own mean
                if callable(getattr(model, "condition", None)):
                    model = model.condition(Xc[i : i + 1], np.array([m[i]]))
                else:  # a plug-in model without condition(): refit on the augmented data
                    X_all, y_all = np.vstack([X_all, Xc[i : i + 1]]), np.append(y_all, m[i])
                    model = make_model().fit(X_all, y_all)
                m, sd = model.predict(Xc)
        return Selection(chosen, mean, std, scores, pruned, info, cands)


def _above(hull: Any, within: float, fractions: np.ndarray) -> np.ndarray:
    return hull(fractions) + within


def _fmt(v: float) -> str:
    return f"{v:.4g}"


PAREGO_RHO = 0.05


def parego_scalarise(done: list[dict], objectives: list, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """ParEGO (Knowles 2006): objectives normalised to [0, 1] over ``done`` (0 best), weights drawn
    uniformly from the simplex, ``max_i(w_i f_i) + rho * sum_i(w_i f_i)`` (smaller is better)."""
    y = np.array([[float(r[o.name]) for o in objectives] for r in done])
    y = y * np.array([1.0 if o.goal == "minimize" else -1.0 for o in objectives])
    lo, hi = y.min(axis=0), y.max(axis=0)
    f = (y - lo) / np.where(hi > lo, hi - lo, 1.0)
    w = rng.dirichlet(np.ones(len(objectives)))
    return (f * w).max(axis=1) + PAREGO_RHO * (f * w).sum(axis=1), [float(v) for v in w]


class SurrogateGenerator:
    """The ``surrogate`` sampler: model-guided proposals (see the module docstring)."""

    def __init__(self, settings: SurrogateConfig | None = None):
        self.settings = settings or SurrogateConfig()
        self._planner: Planner | None = None
        self._pool_keys: tuple[Any, list[str]] | None = None

    def planner(self, elements: list[str]) -> Planner:
        if self._planner is None or self._planner.elements != list(elements):
            self._planner = Planner(self.settings, elements)
        return self._planner

    def _keys(self, ctx: ProposalContext) -> list[str]:
        if self._pool_keys is None or self._pool_keys[0] is not ctx.pool:
            self._pool_keys = (ctx.pool, [composition_key(ctx.builder.realise(p)) for p in ctx.pool])
        return self._pool_keys[1]

    def _candidates(self, ctx: ProposalContext) -> tuple[list[dict[str, float]], list[str]]:
        if ctx.space.is_grid:
            keys = self._keys(ctx)
            idx = [i for i, k in enumerate(keys) if k not in ctx.known]
            return [ctx.pool[i] for i in idx], [keys[i] for i in idx]
        # continuous: a fresh space-filling sample, realised on the supercell
        c = _Collector(ctx, self.settings.candidates)
        rng = ctx.rng(5)
        for _ in range(self.settings.candidates * 20):
            if c.full:
                break
            point = ctx.space.sample(rng)
            if point is not None:
                c.add(point)
        return c.out, [composition_key(ctx.builder.realise(p)) for p in c.out]

    def _feasibility(self, ctx: ProposalContext, done: list[dict], names: list[str]) -> Any:
        """A classifier of success against failure on the fractions, once something has failed;
        returns ``fractions -> P(success)`` or None."""
        failed = [r for r in ctx.results if r.get("status") == "failed" and r.get("composition")]
        if not failed:
            return None
        from sklearn.ensemble import RandomForestClassifier

        els = ctx.space.elements
        X = fraction_matrix([r["composition"] for r in done + failed], els)
        labels = np.r_[np.ones(len(done)), np.zeros(len(failed))]
        clf = RandomForestClassifier(n_estimators=100, random_state=ctx.seed, n_jobs=1)
        clf.fit(np.c_[X, X > 0], labels)
        ctx.report["failed_seen"] = len(failed)

        def p_success(fractions: np.ndarray) -> np.ndarray:
            return clf.predict_proba(np.c_[fractions, fractions > 0])[:, 1]

        return p_success

    def _evolve(self, ctx: ProposalContext, n: int, taken: set[str], score: Any) -> np.ndarray:
        """Differential evolution (scipy) of the acquisition over the simplex, within the bounds and
        constraints; returns up to ``4 n`` distinct new compositions (realised, not in ``taken``) from
        its final population, best first.

        A point of [0, 1]^d becomes a composition through its largest coordinates (at most
        ``max_elements``, no forbidden pair), normalised and moved into the bounds; what still
        breaks a constraint (cost, density) scores -inf, as do realised keys already known.
        """
        from scipy.optimize import differential_evolution

        space, els = ctx.space, ctx.space.elements
        d, kmax = len(els), space.max_elements

        limits = list(space.limits.values())
        lo_all = np.array([lim[0] for lim in limits])
        hi_all = np.array([lim[1] for lim in limits])

        def realise(z: np.ndarray) -> dict[str, float] | None:
            # the largest coordinates name the elements (required ones first, no forbidden pair,
            # at most max_elements); their values, moved into the bounds, are the fractions
            z = np.clip(z, 0, 1)
            order = [i for i in np.argsort(-z, kind="stable") if z[i] > 0]
            keep = space.pick_elements(order, kmax)
            if not keep or z[keep].sum() <= 0:
                return None
            x = np.zeros(d)
            part = fit_bounds(z[keep] / z[keep].sum(), lo_all[keep], hi_all[keep])
            if part is None:
                return None
            x[keep] = part
            fractions = {e: float(v) for e, v in zip(els, x, strict=True) if v > 0}
            counts = realise_within(space, ctx.builder, fractions)
            if counts is None or composition_key(counts) in ctx.known:
                return None
            total = sum(counts.values())
            return {e: c / total for e, c in counts.items()}

        def objective(Z: np.ndarray) -> np.ndarray:  # vectorised: Z is (d, S)
            fracs = [realise(z) for z in Z.T]
            ok = [i for i, f in enumerate(fracs) if f is not None]
            out = np.full(Z.shape[1], 1e30)
            if ok:
                rows = fraction_matrix([fracs[i] for i in ok], els)
                out[ok] = -score(rows)
            return out

        de_seed = int(np.random.SeedSequence([ctx.seed, ctx.round, 9]).generate_state(1)[0])
        res = differential_evolution(objective, [(0.0, 1.0)] * d, maxiter=self.settings.evolve, popsize=10,
                                     seed=de_seed, vectorized=True, updating="deferred", polish=False, tol=0)
        found: dict[str, dict[str, float]] = {}
        for i in np.argsort(res.population_energies, kind="stable"):
            if res.population_energies[i] >= 1e30 or len(found) >= 4 * n:
                break
            frac = realise(res.population[i])
            if frac is not None and composition_key(frac) not in taken:
                found.setdefault(composition_key(frac), frac)
        return fraction_matrix(list(found.values()), els) if found else np.empty((0, d))

    def mode(self) -> str:
        """How several objectives are handled: ``ehvi`` or ``parego``."""
        m = self.settings.multi_objective
        if m == "auto":
            from htflow import ehvi

            return "ehvi" if ehvi.available() else "parego"
        return m

    def _propose_ehvi(self, ctx: ProposalContext, n: int, done: list[dict], objectives: list,
                      cands: list[dict[str, float]], keys: list[str], train: np.ndarray, refine: Any,
                      feasible: Any) -> list[dict[str, float]]:
        """Several objectives by expected hypervolume improvement (:mod:`htflow.ehvi`)."""
        from htflow import ehvi
        from htflow.pareto import default_reference

        s, els = self.settings, ctx.space.elements
        names, goals = [o.name for o in objectives], [o.goal for o in objectives]
        up = np.array([-1.0 if g == "minimize" else 1.0 for g in goals])  # to "larger is better"
        values = np.array([[float(r[k]) for k in names] for r in done])
        ref = ctx.reference or [o.reference if o.reference is not None else a
                                for o, a in zip(objectives, default_reference(values, goals), strict=True)]
        out = ehvi.select(self.planner(els).featurize, train, values * up, fraction_matrix(cands, els), n,
                          list(np.asarray(ref, float) * up), ctx.seed, ctx.round, s.cv_folds, names,
                          refine=refine, feasible=feasible)
        info = out["info"]
        info["features"] = s.features
        info["reference"] = [float(v) for v in ref]
        for j, name in enumerate(names):  # CV records in each objective's own direction
            cv = (info.get("cv_objectives") or {}).get(name)
            if cv is not None and up[j] < 0:
                for k in ("y_true", "y_pred"):
                    cv[k] = [-v for v in cv[k]]
        if info.get("cv_objectives"):  # the first objective's CV is the round's headline metric
            info["cv"] = {**info["cv_objectives"].get(names[0], {}), "of": names[0]}
            if len(info["cv"]) == 1:
                del info["cv"]
        allc = out["candidates"]
        for row in allc[len(cands):]:
            frac = {e: float(v) for e, v in zip(els, row, strict=True) if v > 0}
            cands.append(frac)
            keys.append(composition_key(ctx.builder.realise(frac)))
        ctx.report.update(info)
        ctx.report["phase"] = "model"
        ctx.report["predictions"] = {
            keys[i]: {"of": "ehvi", "log_ehvi": a,
                      **{f"mean_{nm}": float(up[j] * out["mean"][k, j]) for j, nm in enumerate(names)},
                      **{f"std_{nm}": float(out["std"][k, j]) for j, nm in enumerate(names)}}
            for k, (i, a) in enumerate(zip(out["chosen"], out["acquisition"], strict=True))
        }
        return [cands[i] for i in out["chosen"]]

    def _pruned_record(self, sel: Selection, i: int, sign: float, y: np.ndarray, rnd: int) -> dict:
        """Why candidate ``i`` was pruned, in the objective's own units and direction."""
        p = self.settings.prune
        scale = sel.info.get("sigma_scale", 1.0)
        mean, std = sign * float(sel.mean[i]), float(sel.std[i])
        bound = mean - sign * p.kappa * scale * std
        best = sign * float(np.min(y))
        if sel.info.get("limit") is not None:
            limit = float(sel.info["limit"][i])
            within = self.settings.stable_within
            return {
                "round": rnd,
                "reason": f"optimistic bound (mean - {p.kappa:g} x {scale:.3g} std) {_fmt(bound)} is more "
                          f"than {within:g} eV/atom above the convex hull there ({_fmt(limit - within)}) "
                          f"(margin {p.margin:g})",
                "mean": mean, "std": std, "sigma_scale": scale, "bound": bound, "hull": limit - within,
                "stable_within": within, "kappa": p.kappa, "margin": p.margin,
            }
        return {
            "round": rnd,
            "reason": f"optimistic bound (mean {'-' if sign > 0 else '+'} {p.kappa:g} x {scale:.3g} std) "
                      f"{_fmt(bound)} is worse than the best {_fmt(best)} by more than the margin "
                      f"{p.margin:g}",
            "mean": mean, "std": std, "sigma_scale": scale, "bound": bound, "best": best,
            "kappa": p.kappa, "margin": p.margin,
        }

    def propose(self, ctx: ProposalContext, n: int) -> list[dict[str, float]]:
        s = self.settings
        objectives = ctx.objectives or ([ctx.objective] if ctx.objective is not None else [])
        multi = len(objectives) > 1
        name = objectives[0].name if objectives else "formation_energy_per_atom"
        sign = -1.0 if objectives and objectives[0].goal == "maximize" else 1.0
        names = [o.name for o in objectives] or [name]
        done = sorted(
            (r for r in ctx.results
             if r.get("status") == "done" and all(r.get(k) is not None for k in names)),
            key=lambda r: r["key"],
        )
        if len(done) < max(s.initial, 2):
            ctx.report["phase"] = f"initial ({s.initial_sampler})"
            return get_generator(s.initial_sampler).propose(ctx, n)
        cands, keys = self._candidates(ctx)
        if not cands:
            return []
        els = ctx.space.elements
        train = fraction_matrix([r["composition"] for r in done], els)
        refine = None
        if not ctx.space.is_grid and s.evolve:
            refine = functools.partial(self._evolve, ctx, n, set(keys))
        feasible = self._feasibility(ctx, done, names) if s.feasibility else None
        if multi and self.mode() == "ehvi":
            return self._propose_ehvi(ctx, n, done, objectives, cands, keys, train, refine, feasible)
        if multi:
            # ParEGO: this round's random weights scalarise the normalised objectives (augmented
            # Chebyshev); the model learns the scalar. No pruning: a candidate poor for these
            # weights may be on the front for others.
            y, weights = parego_scalarise(done, objectives, ctx.rng(7))
            ctx.report["parego_weights"] = dict(zip(names, weights, strict=True))
            sign, name = 1.0, "parego"
        else:
            y = sign * np.array([float(r[name]) for r in done])
        threshold = None
        if s.stable_within is not None and not multi:
            from htflow.thermo import formation_hull

            hull = formation_hull(done, ctx.references or {}, ctx.phases, els)
            threshold = functools.partial(_above, hull, s.stable_within)
            ctx.report["stable_within"] = s.stable_within
        sel = self.planner(els).select(train, y, fraction_matrix(cands, els), n, ctx.seed, ctx.round,
                                       allow_prune=not multi, refine=refine, feasible=feasible,
                                       threshold=threshold)
        if sel.candidates is not None and len(sel.candidates) > len(cands):
            for row in sel.candidates[len(cands):]:
                frac = {e: float(v) for e, v in zip(els, row, strict=True) if v > 0}
                cands.append(frac)
                keys.append(composition_key(ctx.builder.realise(frac)))
        ctx.report.update({k: v for k, v in sel.info.items() if k != "limit"})
        ctx.report["phase"] = "model"
        ctx.report["predictions"] = {
            keys[i]: {"mean": sign * float(sel.mean[i]), "std": float(sel.std[i]), "acquisition": a,
                      **({"of": "parego"} if multi else {})}
            for i, a in zip(sel.chosen, sel.acquisition, strict=True)
        }
        if ctx.space.is_grid:
            ctx.report["pruned_keys"] = {
                keys[i]: {"composition": cands[i], "pruned": self._pruned_record(sel, i, sign, y, ctx.round)}
                for i in np.flatnonzero(sel.pruned)
            }
        return [cands[i] for i in sel.chosen]
