"""Warm start: data from elsewhere (imported measurements, a public database) joins the
surrogate's training set.

Prior values may come from another fidelity (a database's DFT against the campaign's ML
potential, a computation against a measurement), so each source gets a constant offset: the
median of (campaign value - prior value) over the compositions both have, once there are at least
:data:`MIN_SHARED` of them (before that, 0: the same scale is assumed). Where the campaign has its
own value for a composition, the prior's is dropped. Only compositions inside the campaign's
elements are used. The prior trains the model but never prunes: candidates are ruled out only
once the campaign has ``search.surrogate.prune.min_results`` results of its own.
"""

from __future__ import annotations

import numpy as np

MIN_SHARED = 3


def prior_training(prior: list[dict], elements: list[str] | tuple[str, ...], own: dict[str, float]
                   ) -> tuple[list[dict[str, float]], list[float], dict[str, dict]]:
    """Compositions and (offset) values of the prior rows to train on, and per source what was
    used: ``{source: {"rows", "shared", "offset"}}``. ``own``: the campaign's values by key."""
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
        offset = float(np.median(shared)) if len(shared) >= MIN_SHARED else 0.0
        keep = [r for r in rows if r["key"] not in own]
        comps.extend(r["composition"] for r in keep)
        values.extend(r["value"] + offset for r in keep)
        info[source] = {"rows": len(keep), "shared": len(shared), "offset": offset}
    return comps, values, info
