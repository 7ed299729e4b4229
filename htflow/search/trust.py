"""A trust region for the surrogate sampler (``search.surrogate.trust_region``: ``auto``, the default,
on grid and list spaces with one objective; ``true``; ``false``).

After TuRBO (Eriksson et al. 2019), on a finite set of compositions: each model round chooses only
among the candidates inside a box around the best result so far, every element's fraction within
``radius`` of the best's. The radius follows the campaign's own history, round by round after the
initial design:

- it starts at ``trust_start``: by default 1, the whole space, so the search is global until rounds
  stop improving; :data:`START`, half the fraction range, is TuRBO's own start;
- two improving rounds in a row double it (at most 1: the whole space);
- three rounds in a row without improvement halve it;
- below :data:`SMALLEST` it starts again at ``trust_start``, the restart TuRBO makes when its region
  collapses.

The radius is replayed from the results each round, so a resumed campaign proposes what an
uninterrupted one does. When fewer than four batches of candidates are inside the box, the nearest
ones are taken (by the largest fraction difference), so the model always has a choice.

On the search suite TuRBO's start (0.5) needed 0.67x the plain GP's evaluations on the 27-element
HEA hardness and 0.71x on emt-bcc5, but 1.17x on expt-gap, whose good compositions are scattered.
Starting from the whole space keeps the gains where the search stalls and loses nothing where the
first model rounds already succeed, so it is the default (docs/search-suite.md, "The trust region
from the whole space").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from htflow.search.features import fraction_matrix

#: the radius a campaign starts with, and restarts at
START = 0.5
#: below this radius the region restarts
SMALLEST = 1 / 16
#: improving rounds in a row that double the radius; rounds without improvement that halve it
GROW, SHRINK = 2, 3


def radius(rounds: list[tuple[int, float]], initial: int, start: float = START) -> float:
    """The radius after the results ``(round, minimised value)`` so far, starting (and restarting) at
    ``start``; rounds that end inside the first ``initial`` results are the initial design and leave
    it alone."""
    by_round: dict[int, list[float]] = {}
    for rnd, v in rounds:
        by_round.setdefault(rnd, []).append(v)
    r, good, bad, best, seen = start, 0, 0, np.inf, 0
    for rnd in sorted(by_round):
        low = min(by_round[rnd])
        if seen >= initial:
            good, bad = (good + 1, 0) if low < best - 1e-12 else (0, bad + 1)
            if good >= GROW:
                r, good = min(2 * r, 1.0), 0
            if bad >= SHRINK:
                r, bad = r / 2, 0
                if r < SMALLEST:
                    r = start
        best = min(best, low)
        seen += len(by_round[rnd])
    return r


def inside(centre: np.ndarray, fractions: np.ndarray, r: float, at_least: int) -> np.ndarray:
    """Rows of ``fractions`` within ``r`` of ``centre`` in every element, or the ``at_least`` nearest."""
    d = np.abs(fractions - centre).max(axis=1)
    rows = np.flatnonzero(d <= r + 1e-9)
    if len(rows) < at_least:
        rows = np.sort(np.argsort(d, kind="stable")[:at_least])
    return rows


Candidates = list[dict[str, float]]


def narrow(done: list[dict], y: np.ndarray, elements: list[str], cands: Candidates, keys: list[str],
           at_least: int, initial: int, start: float = START) -> tuple[Candidates, list[str], dict[str, Any]]:
    """The candidates (and their keys) inside the trust region around the best of the ``done`` results
    (``y``: their minimised values), and the round's record of it."""
    r = radius([(int(d["round"]), float(v)) for d, v in zip(done, y, strict=True)], initial, start)
    best = int(np.argmin(y))
    rows = inside(fraction_matrix([done[best]["composition"]], elements)[0], fraction_matrix(cands, elements),
                  r, at_least)
    record = {"radius": r, "centre": done[best]["key"], "inside": len(rows), "of": len(cands)}
    return [cands[i] for i in rows], [keys[i] for i in rows], record
