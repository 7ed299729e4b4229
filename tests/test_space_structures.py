"""Composition spaces, canonical keys, and decorated structures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pymatgen.core import Composition

from htflow.space.build import build_space
from htflow.space.compositions import CompositionSpace, SpaceError, composition_key
from htflow.space.structures import StructureBuilder, round_to_atoms, supercell_shape


@pytest.mark.parametrize("spelling", ["Cu0.5Ni0.5", "NiCu", "Ni2Cu2", {"Ni": 1, "Cu": 1}, Composition("CuNi")])
def test_canonical_key_is_spelling_independent(spelling):
    assert composition_key(spelling) == "Cu0.5Ni0.5"


def _brute(space: CompositionSpace) -> set[str]:
    u = space.units
    out = set()
    for counts in itertools.product(range(u + 1), repeat=len(space.elements)):
        if sum(counts) != u:
            continue
        fr = {e: c / u for e, c in zip(space.elements, counts, strict=True) if c}
        if space.contains(fr):
            out.add(composition_key(fr))
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"elements": ("Cu", "Ni", "Pd"), "step": 0.25},
        {"elements": ("Cu", "Ni", "Pd", "Ag"), "step": 0.125, "max_elements": 2},
        {"elements": ("Cu", "Ni", "Pd", "Au"), "step": 0.1, "bounds": {"Cu": (0.2, 0.6), "Au": (0, 0.3)}},
    ],
)
def test_grid_count_and_enumeration_match_brute_force(kwargs):
    space = CompositionSpace(**kwargs)
    pool = space.pool()
    keys = {composition_key(p) for p in pool}
    assert len(keys) == len(pool) == space.grid_size()
    assert keys == _brute(space)


def test_large_grid_refused_with_its_size():
    space = CompositionSpace(tuple(["Cu", "Ni", "Pd", "Ag", "Au", "Pt", "Al"]), step=0.01)
    with pytest.raises(SpaceError, match=r"grid has 1,705,904,746 compositions.*continuous"):
        space.pool()


def test_continuous_samples_respect_bounds_and_element_count():
    space = CompositionSpace(("Cu", "Ni", "Pd", "Ag", "Au"), step=None, max_elements=3,
                             bounds={"Cu": (0.1, 0.5)})  # fmt: skip
    rng = np.random.default_rng(0)
    samples = [s for s in (space.sample(rng) for _ in range(500)) if s]
    assert len(samples) > 100
    for s in samples:
        assert abs(sum(s.values()) - 1) < 1e-9
        assert len(s) <= 3 and 0.1 <= s["Cu"] <= 0.5


def test_rounding_is_whole_atoms_and_honest():
    counts = round_to_atoms({"Cu": 1 / 3, "Ni": 1 / 3, "Pd": 1 / 3}, 32)
    assert sum(counts.values()) == 32 and sorted(counts.values()) == [10, 11, 11]
    assert round_to_atoms({"Cu": 0.99, "Ni": 0.01}, 16) == {"Cu": 16}  # Ni vanishes, and says so


@pytest.mark.parametrize(("proto", "n"), [("fcc", 32), ("fcc", 108), ("bcc", 16), ("hcp", 16)])
def test_prototypes_build_deterministic_decorated_cells(proto, n):
    b = StructureBuilder(proto, n)
    s1 = b.build({"Cu": 0.5, "Ni": 0.25, "Pd": 0.25})
    s2 = StructureBuilder(proto, n).build({"Pd": 0.25, "Cu": 0.5, "Ni": 0.25})
    assert len(s1) == n
    assert s1 == s2 and [str(x.specie) for x in s1] == [str(x.specie) for x in s2]
    assert s1.composition.get_el_amt_dict() == {"Cu": n / 2, "Ni": n / 4, "Pd": n / 4}
    dists = s1.distance_matrix[np.triu_indices(n, 1)]
    assert dists.min() > 2.0  # no overlapping atoms


def test_supercell_shape_is_nearly_cubic():
    assert supercell_shape(8) == (2, 2, 2)
    assert supercell_shape(27) == (3, 3, 3)
    assert sorted(supercell_shape(12)) == [2, 2, 3]


def test_template_structure_file(tmp_path):
    from pymatgen.core import Lattice, Structure

    Structure(Lattice.cubic(3.0), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(tmp_path / "t.cif"))
    s = StructureBuilder(str(tmp_path / "t.cif"), 16).build({"Cu": 0.5, "Ni": 0.5})
    assert len(s) == 16 and s.composition.get_el_amt_dict() == {"Cu": 8, "Ni": 8}


def test_public_api_names_resolve():
    import htflow

    for name in htflow.__all__:
        assert getattr(htflow, name) is not None
    with pytest.raises(AttributeError):
        htflow.no_such_name  # noqa: B018


def test_max_pool_from_the_campaign_file_governs_enumeration():
    from htflow.schemas.config import SpaceConfig

    small = build_space(SpaceConfig(elements=["Cu", "Ni", "Pd"], step=0.25, max_pool=10))
    with pytest.raises(SpaceError, match=r"15 compositions, more than space.max_pool \(10\)"):
        small.pool()
    big = CompositionSpace(("Cu", "Ni", "Pd", "Ag", "Au", "Pt", "Al"), step=0.0625, max_pool=100_000)
    assert len(big.pool()) == big.grid_size() == 74_613  # within this space's own limit


@pytest.mark.parametrize(("n_atoms", "counts"), [(32, {"Cu": 8, "Ni": 8, "Pd": 16}), (32, {"Cu": 16, "Ni": 16}),
                                                 (108, {"Cu": 36, "Ni": 36, "Pd": 36})])
def test_sqs_pair_correlations_match_the_random_alloy(n_atoms, counts):
    """Over the first three neighbour shells every ordered pair probability of the SQS is within
    0.01 of the ideal random alloy's x_a x_b; a random decoration of the same cell is not."""
    import numpy as np

    from htflow.space.sqs import neighbour_shells, pair_deviation
    from htflow.space.structures import StructureBuilder

    fractions = {el: c / n_atoms for el, c in counts.items()}
    names = sorted(counts)
    deviation = {}
    for decoration in ("sqs", "random"):
        s = StructureBuilder("fcc", n_atoms, decoration=decoration).build(fractions)
        assert {el: sum(site.specie.symbol == el for site in s) for el in names} == counts
        species = np.array([names.index(site.specie.symbol) for site in s])
        shells = neighbour_shells(s)
        assert [len(i) // n_atoms for i, _ in shells] == [12, 6, 24]  # fcc: 12, 6 and 24 neighbours
        deviation[decoration] = pair_deviation(species, shells, len(names))
    assert deviation["sqs"] <= 0.01 < deviation["random"], deviation
    again = StructureBuilder("fcc", n_atoms, decoration="sqs").build(fractions)
    assert again == StructureBuilder("fcc", n_atoms, decoration="sqs").build(fractions)  # reproducible


def test_an_sqs_campaign_runs(small_campaign, tmp_path, monkeypatch):
    from helpers import run_campaign

    monkeypatch.chdir(tmp_path)
    cfg = {**small_campaign, "structure": {"prototype": "fcc", "n_atoms": 16, "decoration": "sqs"},
           "search": {"sampler": "sobol", "batch_size": 3, "budget": 3, "seed": 2}}
    camp = run_campaign(cfg)
    done = camp.results("done")
    assert len(done) == 3 and all(r["formation_energy_per_atom"] is not None for r in done)
    assert camp.repo.doc()["config"]["structure"]["decoration"] == "sqs"
