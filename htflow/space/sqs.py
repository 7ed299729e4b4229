"""Special quasirandom structures (Zunger et al., Phys. Rev. Lett. 65, 353 (1990)): the decoration of a
supercell whose pair correlations over the first neighbour shells are closest to the ideal random
alloy's, found by a small simulated annealing of site swaps (icet's ``generate_sqs`` does the same
with cluster vectors; it would add numba to the install, for pair terms this is enough).

For species fractions ``x``, the ideal random alloy has, in every shell, the probability
``x_a x_b`` that an (ordered) neighbour pair is ``(a, b)``. :func:`pair_deviation` measures the
largest difference of a decoration's pair probabilities from that over the first shells;
:func:`sqs_species` minimises the weighted squared differences (nearer shells weigh more).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

N_SHELLS = 3
#: annealing steps per site
STEPS_PER_SITE = 150


def neighbour_shells(base: Structure, n_shells: int = N_SHELLS) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ordered site pairs ``(i, j)`` of each of the first ``n_shells`` neighbour shells (every
    periodic image counted, as a correlation function counts it)."""
    volume_per_site = base.volume / len(base)
    cutoff = 2.2 * volume_per_site ** (1 / 3)  # past the third shell of fcc, bcc and hcp
    centres, neighbours, _, dists = base.get_neighbor_list(cutoff)
    keys = np.round(dists, 2)
    shells = []
    for d in np.unique(keys)[:n_shells]:
        on = keys == d
        shells.append((centres[on].astype(int), neighbours[on].astype(int)))
    return shells


def _probabilities(species: np.ndarray, shells: list, k: int) -> list[np.ndarray]:
    return [np.bincount(species[i] * k + species[j], minlength=k * k).reshape(k, k) / len(i)
            for i, j in shells]


def pair_deviation(species: np.ndarray, shells: list, k: int) -> float:
    """The largest |P(a, b) - x_a x_b| over the shells and ordered species pairs."""
    x = np.bincount(species, minlength=k) / len(species)
    ideal = np.outer(x, x)
    return float(max(np.abs(p - ideal).max() for p in _probabilities(species, shells, k)))


def _objective(species: np.ndarray, shells: list, k: int, ideal: np.ndarray, weights: np.ndarray) -> float:
    return float(sum(w * ((p - ideal) ** 2).sum()
                     for w, p in zip(weights, _probabilities(species, shells, k), strict=True)))


def sqs_species(base: Structure, counts: dict[str, int], seed: int, shells: list | None = None) -> list[str]:
    """The species of each site of ``base`` (as many of each as ``counts`` says) whose pair
    correlations are closest to the random alloy's; deterministic for a ``seed``."""
    names = sorted(counts)
    k = len(names)
    start = np.repeat(np.arange(k), [counts[n] for n in names])
    rng = np.random.default_rng(seed)
    species = rng.permutation(start)
    if k == 1:
        return [names[0]] * len(species)
    shells = shells if shells is not None else neighbour_shells(base)
    x = np.bincount(species, minlength=k) / len(species)
    ideal, weights = np.outer(x, x), 1.0 / np.arange(1, len(shells) + 1)
    current = _objective(species, shells, k, ideal, weights)
    best, best_species = current, species.copy()
    steps = STEPS_PER_SITE * len(species)
    t0 = max(current, 1e-6) * 0.1
    for step in range(steps):
        a, b = rng.integers(len(species), size=2)
        if species[a] == species[b]:
            continue
        species[a], species[b] = species[b], species[a]
        new = _objective(species, shells, k, ideal, weights)
        temperature = t0 * (1 - step / steps) + 1e-12
        if new <= current or rng.random() < np.exp((current - new) / temperature):
            current = new
            if new < best:
                best, best_species = new, species.copy()
        else:
            species[a], species[b] = species[b], species[a]
    return [names[s] for s in best_species]
