"""Warm start: data from elsewhere (imported measurements, a public database) joins the
surrogate's training set.

Prior values may come from another fidelity (a database's DFT against the campaign's ML
potential, a computation against a measurement), so each source gets a constant offset: the
median of (campaign value - prior value) over the compositions both have, once there are at least
:data:`MIN_SHARED` of them; until then, over the campaign's own results against the prior
interpolated at their compositions (distance-weighted nearest neighbours in fraction space), once
the campaign has :data:`MIN_SHARED` results; before that, 0 (the same scale is assumed). A
campaign tends to compute compositions the prior does not have, so waiting for shared ones alone
would leave the offset unlearned, and the model fitting two scales at once. Where the campaign has its
own value for a composition, the prior's is dropped. Only compositions inside the campaign's
elements are used. While a prior is used, nothing is pruned: a model partly trained on another
fidelity's noisy values ruled out the true optimum of a 130-composition pool in one benchmark
seed in ten.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

MIN_SHARED = 3


def _interpolated_offset(rows: list[dict], own_fractions: dict[str, dict], own: dict[str, float],
                         elements: list[str]) -> float:
    """Median of (campaign value - prior interpolated at its composition), 0 with too little data."""
    if len(own_fractions) < MIN_SHARED or len(rows) < MIN_SHARED:
        return 0.0
    knn = KNeighborsRegressor(n_neighbors=min(3, len(rows)), weights="distance")
    knn.fit([[r["composition"].get(e, 0.0) for e in elements] for r in rows], [r["value"] for r in rows])
    keys = sorted(own_fractions)
    guess = knn.predict([[own_fractions[k].get(e, 0.0) for e in elements] for k in keys])
    return float(np.median([own[k] - g for k, g in zip(keys, guess, strict=True)]))


def prior_training(prior: list[dict], elements: list[str] | tuple[str, ...], own: dict[str, float],
                   own_fractions: dict[str, dict] | None = None
                   ) -> tuple[list[dict[str, float]], list[float], dict[str, dict]]:
    """Compositions and (offset) values of the prior rows to train on, and per source what was
    used: ``{source: {"rows", "shared", "offset"}}``. ``own``: the campaign's values by key;
    ``own_fractions``: their compositions (for the offset before compositions are shared)."""
    allowed = set(elements)
    groups: dict[str, list[dict]] = {}
    for row in prior:
        if set(row["composition"]) <= allowed:
            groups.setdefault(row["source"], []).append(row)
    comps: list[dict[str, float]] = []
    values: list[float] = []
    info: dict[str, dict] = {}
    for source, rows in sorted(groups.items()):
        shared = [own[r["key"]] - r["value"] for r in rows if r["key"] in own]
        offset = float(np.median(shared)) if len(shared) >= MIN_SHARED else \
            _interpolated_offset(rows, own_fractions or {}, own, list(elements))
        keep = [r for r in rows if r["key"] not in own]
        comps.extend(r["composition"] for r in keep)
        values.extend(r["value"] + offset for r in keep)
        info[source] = {"rows": len(keep), "shared": len(shared), "offset": offset}
    return comps, values, info
