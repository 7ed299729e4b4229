"""Convex hull and energy above hull: every stored value equals an independent pymatgen PhaseDiagram."""

from __future__ import annotations

import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from htflow.analysis.hull import e_above_hull
from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.report.stability import hull_plot


def independent_hull(results: list[dict], refs: dict[str, float]) -> dict[str, float]:
    """Built here from the stored numbers only: total energies and the campaign's reference energies."""
    es = [PDEntry(Composition({el: 1}), e) for el, e in refs.items()]
    mine = []
    for r in results:
        entry = PDEntry(Composition(r["counts"]), r["energy_per_atom"] * r["n_atoms"])
        es.append(entry)
        mine.append((r["key"], entry))
    pd = PhaseDiagram(es)
    return {k: pd.get_e_above_hull(e) for k, e in mine}


@pytest.mark.slow
def test_stored_e_above_hull_equals_phase_diagram(small_campaign):
    cfg = dict(small_campaign, search={"sampler": "sobol", "batch_size": 4, "budget": 12, "seed": 5})
    camp = Campaign(parse_config(cfg, "test"))
    doc = camp.run()
    refs = {el: r["energy_per_atom"] for el, r in doc["references"].items()}
    results = camp.results(status="done")
    assert len(results) == 12
    want = independent_hull(results, refs)
    for r in results:  # first-round results were stored before later ones existed: recomputed since
        assert r["e_above_hull"] == pytest.approx(want[r["key"]], abs=1e-9), r["key"]
    assert min(r["e_above_hull"] for r in results) >= 0
    # each round says how big the hull was then
    rounds = sorted(doc["rounds"], key=lambda r: r["round"])
    assert [r["hull"]["entries"] for r in rounds] == [4, 8, 12]
    assert rounds[-1]["hull"]["stable"] == sum(v < 1e-9 for v in want.values())
    # the formation energies the calculator stored sit on the same hull: a stable result is on it
    for r in results:
        if r["e_above_hull"] < 1e-9:
            assert r["formation_energy_per_atom"] <= 1e-9


def test_hull_by_hand():
    """A binary with a known answer: A, B at 0; AB at -0.2 (stable); A3B at -0.05 (above the line by 0.05)."""
    refs = {"Cu": -1.0, "Ni": -2.0}
    rows = [
        {"key": "CuNi", "counts": {"Cu": 1, "Ni": 1}, "energy_per_atom": -1.5 - 0.2},
        {"key": "Cu3Ni", "counts": {"Cu": 3, "Ni": 1}, "energy_per_atom": -1.25 - 0.05},
        {"key": "bad", "counts": {"Cu": 1}, "energy_per_atom": None},
        {"key": "failed", "status": "failed", "counts": {"Cu": 1, "Ni": 3}},
    ]
    got = e_above_hull(rows, refs)
    assert set(got) == {"CuNi", "Cu3Ni"}
    assert got["CuNi"] == pytest.approx(0.0, abs=1e-12)
    # the hull at x_Ni = 1/4 is halfway between Cu (0) and CuNi (-0.2): -0.1; A3B is at -0.05
    assert got["Cu3Ni"] == pytest.approx(0.05, abs=1e-12)
    assert e_above_hull([], refs) == {}


def test_hull_plot_binary_ternary_only(tmp_path):
    refs = {"Cu": -1.0, "Ni": -2.0, "Pd": -3.0, "Ag": -1.5}
    binary = [{"key": "CuNi", "counts": {"Cu": 1, "Ni": 1}, "energy_per_atom": -1.7, "formula": "CuNi"}]
    assert hull_plot(binary, {k: refs[k] for k in ("Cu", "Ni")}, tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    ternary = [*binary, {"key": "NiPd", "counts": {"Ni": 1, "Pd": 1}, "energy_per_atom": -2.6}]
    assert hull_plot(ternary, {k: refs[k] for k in ("Cu", "Ni", "Pd")}, tmp_path / "t.png").exists()
    quaternary = [*ternary, {"key": "AgCu", "counts": {"Ag": 1, "Cu": 1}, "energy_per_atom": -1.3}]
    assert hull_plot(quaternary, refs, tmp_path / "q.png") is None
    assert not (tmp_path / "q.png").exists()


def test_per_system_hulls_equal_one_hull_of_the_whole_space():
    """Seven elements, 150 random compositions of the bundled pool: per-system distances (and the
    incremental update's choice of systems) equal one PhaseDiagram over everything."""
    import csv
    from importlib.resources import files

    import numpy as np

    from htflow.analysis.hull import affected_systems, system_of

    rows = list(csv.DictReader((files("htflow") / "data" / "emt-fcc7.csv").read_text().splitlines()))
    els = ["Ag", "Al", "Au", "Cu", "Ni", "Pd", "Pt"]
    res = [{"key": r["key"], "counts": {e: int(r[e]) for e in els if int(r[e])}, "n_atoms": 32,
            "energy_per_atom": float(r["energy_per_atom"])} for r in rows]
    refs = {e: next(x["energy_per_atom"] for x in res if x["counts"] == {e: 32}) for e in els}
    pick = [res[i] for i in np.random.default_rng(3).permutation(len(res))[:150]]
    want = independent_hull(pick, refs)
    got = e_above_hull(pick, refs)
    assert set(got) == set(want)
    assert max(abs(got[k] - want[k]) for k in want) < 1e-9
    # a new result can only change the distances of results whose system contains its own
    new = pick[:3]
    systems = affected_systems(pick, new)
    assert all(any(system_of(n) <= s for n in new) for s in systems)
    part = e_above_hull(pick, refs, systems)
    assert set(part) == {r["key"] for r in pick if system_of(r) in systems}


def _pool_campaign(**search) -> dict:
    return {
        "name": "st",
        "space": {"elements": ["Al", "Cu", "Ni", "Pd", "Pt"], "step": 0.0625, "max_elements": 2},
        "structure": {"prototype": "fcc", "n_atoms": 32},
        "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
        "search": {"batch_size": 6, "budget": 36, "seed": 3, **search},
        "store": "memory://",
    }


def test_reference_phases_join_the_hull(tmp_path):
    """A user's reference phase (made up: CuPd, deeper than anything computed) joins the hull: every
    stored e_above_hull equals an independent PhaseDiagram that includes it."""
    phases = tmp_path / "phases.csv"
    cfg = _pool_campaign(sampler="sobol", budget=18)
    first = Campaign(parse_config(cfg, "test"))
    first.run()
    refs = {el: r["energy_per_atom"] for el, r in first.repo.doc()["references"].items()}
    e_cupd = (refs["Cu"] + refs["Pd"]) / 2 - 0.3
    phases.write_text(f"formula,energy_per_atom\nCuPd,{e_cupd}\nCuFe,-99\n")  # Fe: not in the space
    camp = Campaign(parse_config({**cfg, "name": "st-phases", "reference_phases": str(phases)}, "test"))
    doc = camp.run()
    results = camp.results(status="done")
    es = [PDEntry(Composition({el: 1}), e) for el, e in refs.items()]
    es.append(PDEntry(Composition("CuPd"), 2 * e_cupd))
    mine = {r["key"]: PDEntry(Composition(r["counts"]), r["energy_per_atom"] * r["n_atoms"]) for r in results}
    pd = PhaseDiagram(es + list(mine.values()))
    for r in results:
        assert r["e_above_hull"] == pytest.approx(pd.get_e_above_hull(mine[r["key"]]), abs=1e-9), r["key"]
    cu_pd = [r for r in results if set(r["counts"]) == {"Cu", "Pd"}]
    assert cu_pd and all(r["e_above_hull"] > 0 for r in cu_pd)  # under the made-up phase's hull
    assert sorted(doc["rounds"], key=lambda r: r["round"])[-1]["hull"]["phases"] == 1


def test_stable_within_finds_more_near_hull_compositions_than_ei_and_random():
    """With stable_within the search goes after compositions within X of the hull (the probability
    of lying below hull + X); on the same budget and seeds it finds more of the pool's truly
    near-hull compositions than the default search for the lowest energy (EI) and than random
    selection, and what it prunes it says is too far above the hull."""
    import csv
    from importlib.resources import files

    within = 0.002
    rows = list(csv.DictReader((files("htflow") / "data" / "emt-fcc7.csv").read_text().splitlines()))
    els = ["Al", "Cu", "Ni", "Pd", "Pt"]
    pool = [r for r in rows if not any(int(r[e]) for e in ("Ag", "Au")) and sum(int(r[e]) > 0 for e in els) <= 2]
    entry = {r["key"]: PDEntry(Composition({e: int(r[e]) for e in els if int(r[e])}),
                               float(r["energy_per_atom"]) * 32) for r in pool}
    pd = PhaseDiagram(list(entry.values()))
    truth = {k for k, e in entry.items() if pd.get_e_above_hull(e) <= within}
    assert 20 <= len(truth) < len(pool) / 2
    found = {"stable": 0, "ei": 0, "random": 0}
    for seed in (1, 2):
        for label, search in [("stable", {"surrogate": {"stable_within": within, "prune": {"enabled": True}}}),
                              ("ei", {}),
                              ("random", {"sampler": "random"})]:
            camp = Campaign(parse_config(_pool_campaign(seed=seed, **search), "test"))
            doc = camp.run()
            found[label] += len(truth & {r["key"] for r in camp.results(status="done")})
            if label == "stable":
                last = sorted(doc["rounds"], key=lambda r: r["round"])[-1]
                assert last["hull"]["stable_within"] == within and last["hull"]["within"] >= 1
                with camp.db:
                    pruned = list(camp.db.candidates.query({"campaign": "st", "status": "pruned"}))
                assert all("above the convex hull" in c["pruned"]["reason"] for c in pruned)
    assert found["stable"] > found["ei"] > found["random"], found


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name,energy\nCuPd,-4\n", ["needs a header with columns formula and energy_per_atom"]),
        ("formula,energy_per_atom\nCuPd,low\n", ["line 2", "'CuPd', 'low'"]),
        ("formula,energy_per_atom\nCuPd,nan\n", ["line 2", "no finite energy"]),
    ],
)
def test_bad_reference_phases_file(tmp_path, text, words):
    from htflow.errors import InputError

    (tmp_path / "phases.csv").write_text(text)
    with pytest.raises(InputError) as err:
        parse_config({**_pool_campaign(), "reference_phases": str(tmp_path / "phases.csv")}, "test")
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_stable_within_needs_the_formation_energy_objective():
    from htflow.errors import InputError

    cfg = _pool_campaign(surrogate={"stable_within": 0.01})
    cfg["objectives"] = [{"name": "density", "goal": "minimize"}]
    with pytest.raises(InputError, match="needs sampler surrogate and the one objective formation_energy_per_atom"):
        parse_config(cfg, "test")
    with pytest.raises(InputError, match="got sampler 'ga'"):
        parse_config(_pool_campaign(sampler="ga", surrogate={"stable_within": 0.01}), "test")
