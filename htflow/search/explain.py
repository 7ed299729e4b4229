"""Why the model predicts what it does: Shapley values per element, element pairs, length scales, and
partial dependence, for any surrogate and any featurizer.

The explained function is the round's model as a function of the element fractions,
``f(x) = model.predict(featurize(x))``, so the answer is always per element, whatever the features
(fractions, pairs, Magpie statistics) and whatever the model (GP, forest, a plug-in).

Shapley values are the interventional ones (Janzing et al. 2020; what ``shap`` computes with an
``Independent`` masker or ``TreeExplainer(data=...)``): the value of a set ``S`` of elements at a
composition ``x`` is the model's mean over a background sample ``b`` with the elements of ``S`` taken
from ``x`` and the rest from ``b``. They are computed exactly, by enumerating every set, vectorised over
the explained points and the background (a tree model's values equal ``shap.TreeExplainer``'s, tested).
Exact enumeration costs ``2^players`` model evaluations per pair of points, so at most :data:`MAX_PLAYERS`
players take part: with more elements that vary, the leading ones by a sampled estimate of their Shapley
values (random orders and their reverses) play alone and the rest play as one group (``other``).

From the same table of set values come the pairwise Shapley interaction indices (Grabisch and Roubens
1999), the importance of each element pair. Values are in the objective's own units and direction:
a positive ``direction`` means more of the element raises the objective.
"""

from __future__ import annotations

import time
from math import comb
from typing import Any

import numpy as np

#: at most this many players in the exact enumeration (2^10 = 1024 sets)
MAX_PLAYERS = 10
#: points explained and background points per round (bounded cost)
EXPLAIN_POINTS, BACKGROUND = 40, 16
#: results the partial dependence averages over
PD_POINTS = 200
#: model rows x results per explanation (about a second of a GP): beyond it, fewer points (at least
#: 12) against fewer background ones (at least 8)
BUDGET = 3e7


def _set_values(f: Any, X: np.ndarray, B: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """``v[s, i]``: the mean of ``f`` over the background with the players in set ``s`` (bit mask)
    taken from point ``i``."""
    p, n, m, d = len(groups), len(X), len(B), X.shape[1]
    masks = np.zeros((2**p, d), bool)
    for s in range(2**p):
        for j in range(p):
            if s >> j & 1:
                masks[s, groups[j]] = True
    out = np.empty((2**p, n))
    chunk = max(1, 8192 // max(1, n * m))  # sets per model call: small blocks stay in cache
    for s0 in range(0, 2**p, chunk):
        mk = masks[s0:s0 + chunk]  # (c, d)
        Z = np.where(mk[:, None, None, :], X[None, :, None, :], B[None, None, :, :])  # (c, n, m, d)
        out[s0:s0 + chunk] = np.asarray(f(Z.reshape(-1, d)), float).reshape(len(mk), n, m).mean(axis=2)
    return out


def shapley(v: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values ``(n, p)`` and pairwise interaction indices ``(n, p, p)`` from set values ``v``."""
    sizes = np.array([bin(s).count("1") for s in range(2**p)])
    phi = np.zeros((v.shape[1], p))
    inter = np.zeros((v.shape[1], p, p))
    w1 = [1.0 / (p * comb(p - 1, k)) for k in range(p)]
    w2 = [1.0 / ((p - 1) * comb(p - 2, k)) if p > 1 else 0.0 for k in range(max(p - 1, 1))]
    for s in range(2**p):
        for i in range(p):
            if s >> i & 1:
                continue
            phi[:, i] += w1[sizes[s]] * (v[s | 1 << i] - v[s])
            for j in range(i + 1, p):
                if s >> j & 1:
                    continue
                delta = v[s | 1 << i | 1 << j] - v[s | 1 << i] - v[s | 1 << j] + v[s]
                inter[:, i, j] += w2[sizes[s]] * delta
    inter += inter.transpose(0, 2, 1)
    return phi, inter


def _players(f: Any, X: np.ndarray, B: np.ndarray, elements: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """The players: each element that varies, or with too many, the leaders alone and the rest grouped."""
    varying = [j for j in range(X.shape[1]) if np.ptp(np.r_[X[:, j], B[:, j]]) > 0]
    if not varying:
        varying = [0]
    if len(varying) <= MAX_PLAYERS:
        return [np.array([j]) for j in varying], [elements[j] for j in varying]
    effect = _sampled_importance(f, X, B, varying, np.random.default_rng(len(X)))
    order = [varying[k] for k in np.argsort(effect, kind="stable")[::-1]]
    lead, rest = order[: MAX_PLAYERS - 1], order[MAX_PLAYERS - 1:]
    return ([np.array([j]) for j in lead] + [np.array(rest)],
            [elements[j] for j in lead] + [_group_name([elements[j] for j in rest])])


def _sampled_importance(f: Any, X: np.ndarray, B: np.ndarray, players: list[int], rng: np.random.Generator,
                        permutations: int = 2) -> np.ndarray:
    """Mean |Shapley value| of each player, estimated from a few random orders and their reverses
    (antithetic sampling): ``permutations`` x 2 x (players + 1) model calls on points x background."""
    n, m, d = len(X), len(B), X.shape[1]
    phi = np.zeros((n, len(players)))
    for _ in range(permutations):
        order = rng.permutation(len(players))
        for walk in (order, order[::-1]):
            Z = np.repeat(B[None], n, axis=0)  # (n, m, d): every player from the background
            prev = np.asarray(f(Z.reshape(-1, d)), float).reshape(n, m).mean(axis=1)
            for k in walk:
                Z[:, :, players[k]] = X[:, players[k]][:, None]
                cur = np.asarray(f(Z.reshape(-1, d)), float).reshape(n, m).mean(axis=1)
                phi[:, k] += cur - prev
                prev = cur
    return np.abs(phi / (2 * permutations)).mean(axis=0)


def _group_name(names: list[str]) -> str:
    shown = "+".join(names) if len(names) <= 4 else f"{len(names)} elements"
    return f"other ({shown})"


def partial_dependence(f: Any, X: np.ndarray, j: int, points: int = 11) -> dict:
    """The model's mean over ``X`` as element ``j``'s fraction sweeps its range, the other elements
    scaled in proportion (compositions stay compositions)."""
    lo, hi = float(X[:, j].min()), float(X[:, j].max())
    grid = np.linspace(lo, hi, points)
    rest = 1.0 - X[:, j]
    means = []
    for g in grid:
        Z = X * np.where(rest > 0, (1.0 - g) / np.where(rest > 0, rest, 1.0), 0.0)[:, None]
        Z[:, j] = g
        means.append(float(np.mean(f(Z))))
    return {"x": grid.tolist(), "mean": means}


def length_scales(model: Any, labels: list[str]) -> dict[str, float] | None:
    """Per-feature length scales of an anisotropic GP (shorter: the model varies faster along it)."""
    gp = getattr(model, "gp", None)
    kernel = getattr(gp, "kernel_", None)
    for part in (getattr(kernel, "k1", None), getattr(getattr(kernel, "k1", None), "k2", None)):
        ls = getattr(part, "length_scale", None)
        if ls is not None and np.ndim(ls) == 1:
            scaler = getattr(model, "scaler", None)
            names = labels if scaler is None else [n for n, k in zip(labels, scaler.keep, strict=True) if k]
            if len(names) == len(ls):
                pairs = ((n, float(v)) for n, v in zip(names, ls, strict=True))
                return dict(sorted(pairs, key=lambda t: t[1]))
    return None


def explain(model: Any, featurize: Any, train: np.ndarray, elements: list[str], seed: int, sign: float = 1.0,
            labels: list[str] | None = None, points: int = EXPLAIN_POINTS,
            background: int = BACKGROUND) -> dict:
    """Shapley values, pair interactions, partial dependence and length scales of ``model`` on ``train``.

    ``sign`` turns the minimised objective back into the user's direction (-1 for a maximised one).
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 17])
    mean = getattr(model, "mean", None)

    def f(Z: np.ndarray) -> np.ndarray:
        F = featurize(Z)
        return sign * (mean(F) if callable(mean) else model.predict(F)[0])

    def sample(k: int) -> np.ndarray:
        return train[np.sort(rng.choice(len(train), min(k, len(train)), replace=False))]

    X, B, P = sample(points), sample(background), sample(PD_POINTS)
    groups, names = _players(f, X, B, elements)
    # a model call costs O(points it conditions on) per row: the results, or a sparse GP's inducing
    # points (``prediction_size``); at most BUDGET rows x points in all (about a second)
    size = getattr(model, "prediction_size", len(train))
    shrink = np.sqrt(BUDGET / (2 ** len(groups) * len(X) * len(B) * max(size, 100)))
    if shrink < 1:
        X, B = X[: max(12, int(len(X) * shrink))], B[: max(8, int(len(B) * shrink))]
    v = _set_values(f, X, B, groups)
    phi, inter = shapley(v, len(groups))
    importance = np.abs(phi).mean(axis=0)
    order = np.argsort(-importance, kind="stable")
    rows = []
    for k in order:
        col = X[:, groups[k]].sum(axis=1)
        varies = np.ptp(col) > 0 and np.ptp(phi[:, k]) > 0
        direction = float(np.corrcoef(col, phi[:, k])[0, 1]) if varies else 0.0
        # the least-squares slope of the Shapley value on the fraction, per 10 at.% more of the element
        slope = float(np.cov(col, phi[:, k])[0, 1] / np.var(col, ddof=1)) if varies else 0.0
        rows.append({"element": names[k], "importance": float(importance[k]), "direction": direction,
                     "per_10_percent": 0.1 * slope, "mean_shap": float(phi[:, k].mean())})
    pair_imp = np.abs(inter).mean(axis=0)
    pairs = sorted(({"pair": [names[i], names[j]], "importance": float(pair_imp[i, j]),
                     "mean_interaction": float(inter[:, i, j].mean())}
                    for i in range(len(names)) for j in range(i + 1, len(names))),
                   key=lambda r: -r["importance"])[:10]
    top = [int(groups[k][0]) for k in order[:2] if len(groups[k]) == 1]
    out = {
        "method": "exact interventional Shapley" + (" (grouped)" if len(groups) < X.shape[1] else ""),
        "points": len(X), "background": len(B), "expected_value": float(v[0].mean()),
        "elements": rows, "pairs": pairs,
        "shap": {"players": names, "values": np.round(phi, 6).tolist(),
                 "fractions": np.round(np.stack([X[:, g].sum(axis=1) for g in groups], axis=1), 6).tolist()},
        "partial_dependence": {elements[j]: partial_dependence(f, P, j) for j in top},
    }
    ls = length_scales(model, labels or [])
    if ls is not None:
        out["length_scales"] = ls
    out["seconds"] = time.perf_counter() - t0
    return out

