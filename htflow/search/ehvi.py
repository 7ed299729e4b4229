"""Expected hypervolume improvement with BoTorch (optional: ``pip install 'htflow[bo]'``).

With several objectives and BoTorch importable, the surrogate sampler models every objective with
its own BoTorch ``SingleTaskGP`` (Matern 5/2, one length scale per feature, inputs normalised,
outputs standardised, hyperparameters by marginal likelihood) and picks the batch from the
candidates by ``qLogExpectedHypervolumeImprovement`` (Ament et al. 2023) over the current Pareto
front, one pick at a time: after each pick the models' means there join the front and the models
condition on them (believer), so every pick is a q = 1 evaluation. (BoTorch's own sequential
greedy with pending points is exact but costs 2^q: 23 s per 1,200 candidates at the sixth pick.)
Without BoTorch, ParEGO (:mod:`htflow.search.guided`) does the job.

BoTorch maximises; htflow hands it every objective turned to "larger is better" and the reference
point likewise. Everything is seeded (torch's generator, the quasi-Monte-Carlo sampler), so a
resumed campaign proposes what an uninterrupted one would.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from htflow.search.planner import cross_validate
from htflow.settings import get_settings
from htflow.utils.threads import pin_torch

logger = logging.getLogger(__name__)

INSTALL = "pip install 'htflow[bo]'  (torch==2.13.0 CPU, botorch==0.18.1)"
#: state-dict entries that are hyperparameters (not the data's own input/output scaling)
HYPER = ("likelihood.", "mean_module.", "covar_module.")


def available() -> bool:
    """Whether BoTorch (and so torch) can be imported here."""
    return importlib.util.find_spec("botorch") is not None and importlib.util.find_spec("torch") is not None


@contextmanager
def _quiet():
    # BoTorch warns about input scaling and numerical details on every small fit; the CV metrics
    # stored each round say how good the models are.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _announce_kernel_build() -> None:
    """BoTorch compiles a fused C++ kernel for qLogEHVI on first use (once per environment, ~1 min,
    3.5x faster acquisition here); say so rather than sit silent, or (``HTFLOW_EHVI_FUSED_KERNEL=false``)
    keep BoTorch from compiling it."""
    from botorch.acquisition.multi_objective import logei  # heavy: optional (htflow[bo])

    if not get_settings().ehvi_fused_kernel:
        logei._load_attempted = True  # BoTorch then keeps to its pure-Python path: no compiling
    if logei._load_attempted or importlib.util.find_spec("logei_fused_ext") is not None:
        return

    cache = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")
    if not any(cache.glob("*/logei_fused_ext/*.so")) and not any(cache.glob("logei_fused_ext/*.so")):
        logger.warning("compiling BoTorch's fused EHVI kernel into %s (once per machine, about a minute)",
                       cache)


class BotorchGP:
    """One objective's BoTorch GP with htflow's surrogate interface (``fit`` / ``predict``)."""

    def __init__(self, seed: int = 0, hyper: BotorchGP | None = None):
        self.seed = seed
        #: a fitted model whose kernel, mean and noise to reuse instead of fitting them (CV folds)
        self.hyper = hyper
        self.model = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> BotorchGP:
        import torch  # heavy: optional (htflow[mlip], htflow[bo])
        from botorch.fit import fit_gpytorch_mll  # heavy: optional (htflow[bo])
        from botorch.models import SingleTaskGP  # heavy: optional (htflow[bo])
        from botorch.models.transforms import Normalize, Standardize  # heavy: optional (htflow[bo])
        from gpytorch.mlls import ExactMarginalLogLikelihood  # heavy: optional (htflow[bo])

        pin_torch()
        torch.manual_seed(self.seed)
        tX = torch.as_tensor(np.asarray(X, float), dtype=torch.double)
        ty = torch.as_tensor(np.asarray(y, float), dtype=torch.double).reshape(-1, 1)
        with _quiet():
            model = SingleTaskGP(tX, ty, input_transform=Normalize(tX.shape[-1]),
                                 outcome_transform=Standardize(1))
            if self.hyper is None:
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            else:  # the data's own scaling, the given model's hyperparameters
                own = self.hyper.model.state_dict()
                model.load_state_dict({k: v for k, v in own.items() if k.startswith(HYPER)}, strict=False)
        self.model = model.eval()
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Marginal posterior mean and standard deviation of each row. Each row is its own t-batch: a
        joint posterior of all rows would build their full covariance (3.7 s for 20,000 rows, against
        0.1 s this way, the same numbers)."""
        import torch  # heavy: optional (htflow[mlip], htflow[bo])

        tX = torch.as_tensor(np.asarray(X, float), dtype=torch.double).unsqueeze(-2)
        with torch.no_grad(), _quiet():
            post = self.model.posterior(tX)
            mean = post.mean.reshape(-1).numpy()
            std = post.variance.clamp_min(0).sqrt().reshape(-1).numpy()
        return mean.copy(), std.copy()

    def mean(self, X: np.ndarray) -> np.ndarray:
        """The posterior mean alone (what an explanation evaluates, on many rows), per-row t-batches."""
        import torch  # heavy: optional (htflow[mlip], htflow[bo])

        tX = torch.as_tensor(np.asarray(X, float), dtype=torch.double).unsqueeze(-2)
        with torch.no_grad(), _quiet():
            return self.model.posterior(tX).mean.reshape(-1).numpy().copy()

    def condition(self, X: np.ndarray, y: np.ndarray) -> BotorchGP:
        """This model told that ``y`` came out at ``X`` (hyperparameters unchanged)."""
        import torch  # heavy: optional (htflow[mlip], htflow[bo])

        out = BotorchGP(self.seed, self.hyper)
        with torch.no_grad(), _quiet():
            out.model = self.model.condition_on_observations(
                torch.as_tensor(np.asarray(X, float), dtype=torch.double),  # it applies the input transform
                torch.as_tensor(np.asarray(y, float), dtype=torch.double).reshape(-1, 1))
        return out

    def describe(self) -> str:
        k = self.model.covar_module
        ls = getattr(getattr(k, "base_kernel", k), "lengthscale", None)
        return f"botorch SingleTaskGP (lengthscales {np.round(ls.detach().numpy().ravel(), 3).tolist()})" \
            if ls is not None else "botorch SingleTaskGP"


class HypervolumeAcquisition:
    """qLogEHVI over the front of ``Y`` (rows of objectives, larger is better) from models fitted on
    ``X``; scores rows of features given the picks already pending."""

    def __init__(self, models: list[BotorchGP], Y: np.ndarray, ref: np.ndarray, seed: int):
        import torch  # heavy: optional (htflow[mlip], htflow[bo])
        from botorch.acquisition.multi_objective.logei import (
            qLogExpectedHypervolumeImprovement,  # heavy: optional (htflow[bo])
        )
        from botorch.models import ModelListGP  # heavy: optional (htflow[bo])
        from botorch.sampling import SobolQMCNormalSampler  # heavy: optional (htflow[bo])
        from botorch.utils.multi_objective.box_decompositions import (
            FastNondominatedPartitioning,  # heavy: optional (htflow[bo])
        )

        self.torch = torch
        _announce_kernel_build()
        ref_t = torch.as_tensor(ref, dtype=torch.double)
        with _quiet():
            front = torch.as_tensor(Y, dtype=torch.double)
            partitioning = FastNondominatedPartitioning(ref_point=ref_t, Y=front)
            self.acq = qLogExpectedHypervolumeImprovement(
                ModelListGP(*[m.model for m in models]), ref_point=ref_t.tolist(), partitioning=partitioning,
                sampler=SobolQMCNormalSampler(sample_shape=torch.Size([get_settings().ehvi_mc_samples]),
                                              seed=seed))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        torch = self.torch
        tX = torch.as_tensor(np.asarray(X, float), dtype=torch.double)
        out = np.empty(len(tX))
        with torch.no_grad(), _quiet():
            chunk = get_settings().ehvi_chunk
            for a in range(0, len(tX), chunk):
                out[a:a + chunk] = self.acq(tX[a:a + chunk].unsqueeze(1)).numpy()
        return out


def _fit(X: np.ndarray, Y: np.ndarray, names: list[str], seed: int, rnd: int, cv_folds: int,
         info: dict) -> list[BotorchGP]:
    """One GP per objective, and each objective's k-fold CV (recorded in ``info``)."""
    t0 = time.perf_counter()
    models = [BotorchGP(seed).fit(X, Y[:, j]) for j in range(Y.shape[1])]
    info["fit_seconds"] = time.perf_counter() - t0
    info["fitted"] = "; ".join(f"{nm}: {m.describe()}" for nm, m in zip(names, models, strict=True))
    t0 = time.perf_counter()
    if cv_folds:
        # each fold conditions on its own data with the full fit's hyperparameters (refitting them
        # per fold costs ~0.5 s a model, ten times a round; the metrics are slightly optimistic)
        cv_seed = int(np.random.SeedSequence([seed, rnd]).generate_state(1)[0])
        per = {}
        for j, name in enumerate(names):
            fold_model = functools.partial(BotorchGP, seed, models[j])
            cv = cross_validate(fold_model, X, Y[:, j], cv_folds, seed=cv_seed)
            if cv is not None:
                per[name] = cv
        if per:
            info["cv_objectives"] = per
    info["cv_seconds"] = time.perf_counter() - t0
    return models


def _log_feasible(feasible: Any, fractions: np.ndarray) -> np.ndarray | None:
    """log P(success): constrained EHVI is log(EHVI * p); likelier to fail than not: left out (unless
    that is all)."""
    if feasible is None:
        return None
    p = feasible(fractions)
    ok = p >= 0.5
    return np.where(ok | ~ok.any(), np.log(np.maximum(p, 1e-12)), -np.inf)


def _believer_batch(acq: HypervolumeAcquisition, models: list[BotorchGP], Y: np.ndarray,
                    ref_up: np.ndarray, Xc: np.ndarray, lp: np.ndarray | None, n: int,
                    mc_seed: int) -> tuple[list[int], list[float]]:
    """Pick ``n`` rows one at a time; after each pick the models' means there join the front."""
    free = np.ones(len(Xc), bool)
    chosen: list[int] = []
    scores: list[float] = []
    Y_now, fitted = Y, models
    for _ in range(min(n, len(Xc))):
        a = acq(Xc)
        if lp is not None:
            a = a + lp
        a = np.where(free, a, -np.inf)
        i = int(np.argmax(a))
        if not np.isfinite(a[i]):
            break
        chosen.append(i)
        scores.append(float(a[i]))
        free[i] = False
        if len(chosen) < n and free.any():
            # believer: the pick "came out" at the models' means; they join the front, and the
            # models condition on them (less uncertainty there), so the batch spreads out
            mean = np.array([m.predict(Xc[i:i + 1])[0][0] for m in fitted])
            Y_now = np.vstack([Y_now, mean])
            fitted = [m.condition(Xc[i:i + 1], mean[j:j + 1]) for j, m in enumerate(fitted)]
            acq = HypervolumeAcquisition(fitted, Y_now, ref_up, seed=mc_seed)
    return chosen, scores


def select(featurize: Any, train: np.ndarray, Y: np.ndarray, cands: np.ndarray, n: int, ref: list[float],
           seed: int, rnd: int, cv_folds: int, names: list[str], refine: Any = None,
           feasible: Any = None) -> dict:
    """Choose ``n`` rows of ``cands`` (fractions) by greedy sequential qLogEHVI.

    ``Y`` holds the objectives of ``train`` turned to "larger is better" and ``ref`` the reference
    point likewise. Returns ``chosen`` (rows of the candidates, including any ``refine`` added),
    ``candidates``, per-objective ``mean`` / ``std`` (larger is better), ``acquisition`` (log
    EHVI of each pick given the earlier ones), the fitted ``models`` (one per objective, larger is
    better) and ``info`` for the round's record.
    """
    info: dict = {"model": "botorch-gp", "acquisition": "qLogEHVI", "multi_objective": "ehvi",
                  "n_train": len(Y), "reference": [float(v) for v in ref]}
    X = featurize(train)
    models = _fit(X, Y, names, seed, rnd, cv_folds, info)
    ref_up = np.asarray(ref, float)
    mc_seed = int(np.random.SeedSequence([seed, rnd, 11]).generate_state(1)[0])
    acq = HypervolumeAcquisition(models, Y, ref_up, seed=mc_seed)
    if refine is not None:
        t0 = time.perf_counter()

        def score(fractions: np.ndarray) -> np.ndarray:
            a = acq(featurize(fractions))
            lp = _log_feasible(feasible, fractions)
            return a if lp is None else a + lp

        extra = refine(score)
        if extra is not None and len(extra):
            cands = np.vstack([cands, extra])
        info["evolved"] = 0 if extra is None else len(extra)
        info["evolve_seconds"] = time.perf_counter() - t0
    info["n_candidates"] = len(cands)
    Xc = featurize(cands)
    lp = _log_feasible(feasible, cands)
    if lp is not None:
        p = feasible(cands)
        info["feasibility"] = {"mean_p": float(np.mean(p)), "below_half": int((p < 0.5).sum())}
    t0 = time.perf_counter()
    chosen, scores = _believer_batch(acq, models, Y, ref_up, Xc, lp, n, mc_seed)
    info["select_seconds"] = time.perf_counter() - t0
    preds = [m.predict(Xc[chosen]) if chosen else (np.empty(0), np.empty(0)) for m in models]
    return {"chosen": chosen, "candidates": cands, "acquisition": scores, "info": info, "models": models,
            "mean": np.array([p[0] for p in preds]).T, "std": np.array([p[1] for p in preds]).T}
