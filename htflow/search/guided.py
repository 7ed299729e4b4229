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
from typing import Any

import numpy as np
from scipy.optimize import differential_evolution
from sklearn.ensemble import RandomForestClassifier

from htflow.analysis.hull import formation_hull
from htflow.analysis.pareto import default_reference
from htflow.schemas.config import SurrogateConfig
from htflow.schemas.documents import Status
from htflow.search import ehvi, trust
from htflow.search.context import Collector, ProposalContext, realise_within
from htflow.search.explain import explain
from htflow.search.features import bind_builder, fraction_matrix
from htflow.search.multiobjective import parego_scalarise
from htflow.search.planner import Planner, Selection
from htflow.search.prior import prior_training
from htflow.search.samplers import SPACE_FILLING
from htflow.space.compositions import composition_key, fit_bounds


def _above(hull: Any, within: float, fractions: np.ndarray) -> np.ndarray:
    return hull(fractions) + within


def _extend(ctx: ProposalContext, rows: np.ndarray, cands: list[dict[str, float]], keys: list[str]) -> None:
    """Append fraction rows (candidates an optimiser added) to ``cands`` and their keys to ``keys``."""
    els = ctx.space.elements
    for row in rows:
        frac = {e: float(v) for e, v in zip(els, row, strict=True) if v > 0}
        cands.append(frac)
        keys.append(composition_key(ctx.builder.realise(frac)))


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def configuration_noise(done: list[dict], name: str, n_more: int = 0) -> np.ndarray | None:
    """Each result's noise variance of ``name``: the variance of the mean over its decorations
    (``structure.configurations``), 0 for single ones and for ``n_more`` values after them; None if
    all are 0."""
    var = []
    for r in done:
        conf = r.get("configurations") or {}
        sd, k = (conf.get("std") or {}).get(name), conf.get("n") or 1
        var.append(sd * sd / k if sd is not None and k > 1 else 0.0)
    noise = np.array(var + [0.0] * n_more)
    return noise if noise.any() else None


class SurrogateGenerator:
    """The ``surrogate`` sampler: model-guided proposals (see the module docstring)."""

    def __init__(self, settings: SurrogateConfig | None = None):
        self.settings = settings or SurrogateConfig()
        self._planner: Planner | None = None
        self._pool_keys: tuple[Any, list[str]] | None = None

    def planner(self, elements: list[str], builder: Any = None) -> Planner:
        if self._planner is None or self._planner.elements != list(elements):
            self._planner = Planner(self.settings, elements)
        if builder is not None:  # graph features build the campaign's own cells
            bind_builder([self._planner.featurize], builder)
        return self._planner

    def _keys(self, ctx: ProposalContext) -> list[str]:
        if self._pool_keys is None or self._pool_keys[0] is not ctx.pool:
            self._pool_keys = (ctx.pool, [composition_key(ctx.builder.realise(p)) for p in ctx.pool])
        return self._pool_keys[1]

    def _candidates(self, ctx: ProposalContext, train: np.ndarray | None = None, y: np.ndarray | None = None,
                    sign: float = 1.0) -> tuple[list[dict[str, float]], list[str]]:
        """The compositions to choose from: every unknown one of a grid, or a fresh sample of a
        continuous space. (``train``, ``y``: the fractions and minimised values of the first
        objective so far, for generators that learn from them; ``sign``: -1 if it is maximised.)"""
        if ctx.space.is_grid:
            keys = self._keys(ctx)
            idx = [i for i, k in enumerate(keys) if k not in ctx.known]
            return [ctx.pool[i] for i in idx], [keys[i] for i in idx]
        # continuous: a fresh space-filling sample, realised on the supercell
        c = Collector(ctx, self.settings.candidates)
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
        failed = [r for r in ctx.results if r.get("status") == Status.FAILED and r.get("composition")]
        if not failed:
            return None
        els = ctx.space.elements
        X = fraction_matrix([r["composition"] for r in done + failed], els)
        labels = np.r_[np.ones(len(done)), np.zeros(len(failed))]
        clf = RandomForestClassifier(n_estimators=100, random_state=ctx.seed, n_jobs=1)
        clf.fit(np.c_[X, X > 0], labels)
        ctx.report["failed_seen"] = len(failed)

        def p_success(fractions: np.ndarray) -> np.ndarray:
            return clf.predict_proba(np.c_[fractions, fractions > 0])[:, 1]

        return p_success

    @staticmethod
    def _realiser(ctx: ProposalContext) -> Any:
        """``z -> composition or None``: a point of [0, 1]^d as a real composition of the space.

        Its largest coordinates name the elements (required ones first, no forbidden pair, at most
        ``max_elements``); their values, moved into the bounds and realised on the cell, are the
        fractions. None when that breaks a constraint or the composition is already known.
        """
        space, els = ctx.space, ctx.space.elements
        d, kmax = len(els), space.max_elements
        limits = list(space.limits.values())
        lo_all = np.array([lim[0] for lim in limits])
        hi_all = np.array([lim[1] for lim in limits])

        def realise(z: np.ndarray) -> dict[str, float] | None:
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

        return realise

    def _evolve(self, ctx: ProposalContext, n: int, taken: set[str], score: Any) -> np.ndarray:
        """Differential evolution (scipy) of the acquisition over the simplex, within the bounds and
        constraints; returns up to ``4 n`` distinct new compositions (realised, not in ``taken``) from
        its final population, best first.

        A point of [0, 1]^d becomes a composition through its largest coordinates (at most
        ``max_elements``, no forbidden pair), normalised and moved into the bounds; what still
        breaks a constraint (cost, density) scores -inf, as do realised keys already known.
        """
        els = ctx.space.elements
        realise = self._realiser(ctx)

        def objective(Z: np.ndarray) -> np.ndarray:  # vectorised: Z is (d, S)
            fracs = [realise(z) for z in Z.T]
            ok = [i for i, f in enumerate(fracs) if f is not None]
            out = np.full(Z.shape[1], 1e30)
            if ok:
                rows = fraction_matrix([fracs[i] for i in ok], els)
                out[ok] = -score(rows)
            return out

        de_seed = int(np.random.SeedSequence([ctx.seed, ctx.round, 9]).generate_state(1)[0])
        res = differential_evolution(objective, [(0.0, 1.0)] * len(els), maxiter=self.settings.evolve,
                                     popsize=10, seed=de_seed, vectorized=True, updating="deferred",
                                     polish=False, tol=0)
        found: dict[str, dict[str, float]] = {}
        for i in np.argsort(res.population_energies, kind="stable"):
            if res.population_energies[i] >= 1e30 or len(found) >= 4 * n:
                break
            frac = realise(res.population[i])
            if frac is not None and composition_key(frac) not in taken:
                found.setdefault(composition_key(frac), frac)
        return fraction_matrix(list(found.values()), els) if found else np.empty((0, len(els)))

    def mode(self) -> str:
        """How several objectives are handled: ``ehvi`` or ``parego``."""
        m = self.settings.multi_objective
        if m == "auto":
            return "ehvi" if ehvi.available() else "parego"
        return m

    def _propose_ehvi(self, ctx: ProposalContext, n: int, done: list[dict], objectives: list,
                      cands: list[dict[str, float]], keys: list[str], train: np.ndarray, refine: Any,
                      feasible: Any) -> list[dict[str, float]]:
        """Several objectives by expected hypervolume improvement (:mod:`htflow.search.ehvi`)."""
        s, els = self.settings, ctx.space.elements
        names, goals = [o.name for o in objectives], [o.goal for o in objectives]
        up = np.array([-1.0 if g == "minimize" else 1.0 for g in goals])  # to "larger is better"
        values = np.array([[float(r[k]) for k in names] for r in done])
        ref = ctx.reference or [o.reference if o.reference is not None else a
                                for o, a in zip(objectives, default_reference(values, goals), strict=True)]
        featurize = self.planner(els, ctx.builder).featurize
        out = ehvi.select(featurize, train, values * up, fraction_matrix(cands, els), n,
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
        _extend(ctx, out["candidates"][len(cands):], cands, keys)
        ctx.report.update(info)
        if s.explain:  # each objective's own model, the round's own
            models = list(zip(names, out["models"], up, strict=True))
            self._explain(ctx, train, lambda: {nm: (m, float(u), f"the round's botorch-gp of {nm}")
                                               for nm, m, u in models})
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
        done = sorted((r for r in ctx.results if r.get("status") == Status.DONE
                       and all(r.get(k) is not None for k in names)), key=lambda r: r["key"])
        els = ctx.space.elements
        prior_comps, prior_values, prior_info = [], [], {}
        if ctx.prior and not multi:
            prior_comps, prior_values, prior_info = prior_training(
                ctx.prior, els, {r["key"]: float(r[name]) for r in done},
                {r["key"]: r["composition"] for r in done})
            ctx.report["prior"] = prior_info
        if len(done) + len(prior_comps) < max(s.initial, 2):
            ctx.report["phase"] = f"initial ({s.initial_sampler})"
            return SPACE_FILLING[s.initial_sampler]().propose(ctx, n)
        train = fraction_matrix([r["composition"] for r in done] + prior_comps, els)
        first = sign * np.array([float(r[name]) for r in done] + prior_values)  # minimised
        cands, keys = self._candidates(ctx, train, first, sign)
        if not cands:
            return []
        region = s.trust_region is True or (s.trust_region == "auto" and ctx.space.is_grid and not multi)
        if region and done:  # centred on the campaign's own best: none before its first result (warm start)
            cands, keys, ctx.report["trust_region"] = trust.narrow(done, first[:len(done)], els, cands, keys,
                                                                   4 * n, s.initial, s.trust_start)
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
            y = first
        threshold = None
        if s.stable_within is not None and not multi:
            hull = formation_hull(done, ctx.references or {}, ctx.phases, els)
            threshold = functools.partial(_above, hull, s.stable_within)
            ctx.report["stable_within"] = s.stable_within
        noise = None if multi else configuration_noise(done, name, len(prior_values))
        planner = self.planner(els, ctx.builder)
        sel = planner.select(train, y, fraction_matrix(cands, els), n, ctx.seed, ctx.round,
                             allow_prune=not multi and not prior_comps and len(done) >= s.prune.min_results,
                             refine=refine, feasible=feasible, threshold=threshold, noise=noise)
        if sel.candidates is not None:
            _extend(ctx, sel.candidates[len(cands):], cands, keys)
        self._report(ctx, sel, cands, keys, sign, y, multi)
        if s.explain:
            self._explain(ctx, train, functools.partial(self._own_models, ctx, sel, done, objectives, train)
                          if multi else lambda: {name: (sel.model, sign, None)})
        return [cands[i] for i in sel.chosen]

    def _own_models(self, ctx: ProposalContext, sel: Selection, done: list[dict], objectives: list,
                    train: np.ndarray) -> dict[str, tuple[Any, float, str]]:
        """A ParEGO round's model learned this round's scalarisation: to explain the round, each objective
        gets a model of the same kind fitted to it alone."""
        kind, out = sel.info["model"], {}
        for o in objectives:
            sign = -1.0 if o.goal == "maximize" else 1.0
            y = sign * np.array([float(r[o.name]) for r in done])
            out[o.name] = (self.planner(ctx.space.elements).model_of(kind, train, y, ctx.seed), sign,
                           f"{kind} fitted to {o.name} alone (the round's model learned the ParEGO scalar)")
        return out

    def _explain(self, ctx: ProposalContext, train: np.ndarray, models: Any) -> None:
        """Explain the round: ``models()`` maps each objective to its model, the sign that turns the model
        back into the objective's own direction, and what the model is (None: the round's own). The first
        objective's explanation is the round's ``explain``, the others' are in ``explain_objectives``."""
        fz = self.planner(ctx.space.elements).featurize
        if getattr(fz, "slow", False):
            ctx.report["explain_skipped"] = (f"features {self.settings.features!r} cost a model pass per "
                                             "composition; an explanation would take thousands")
            return
        got = {}
        for nm, (model, sign, what) in models().items():
            got[nm] = {**explain(model, fz, train, ctx.space.elements, ctx.seed, sign=sign,
                                 labels=getattr(fz, "labels", list)()), "objective": nm}
            if what:
                got[nm]["model"] = what
        first, *rest = got
        ctx.report["explain"] = got[first]
        if rest:
            ctx.report["explain_objectives"] = {nm: got[nm] for nm in rest}

    def _report(self, ctx: ProposalContext, sel: Selection, cands: list[dict[str, float]], keys: list[str],
                sign: float, y: np.ndarray, multi: bool) -> None:
        """What the round records: the model's numbers, its predictions of the picks and the pruned."""
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
