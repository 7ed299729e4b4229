"""The materials builder: one document per material across campaigns, highest fidelity, incremental."""

from __future__ import annotations

import copy

import pytest
from maggma.stores import MemoryStore

from htflow.analysis.builder import MaterialsBuilder, fidelity
from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.cli import main


def _result(campaign, key, calc, created, value, status="done", n_atoms=16, **extra):
    return {"campaign": campaign, "key": key, "status": status, "prototype": "fcc", "n_atoms": n_atoms,
            "created_at": created, "calculator": {"name": calc}, "formation_energy_per_atom": value,
            "elements": sorted(k for k in ("Cu", "Ni") if k in key), "round": 1, **extra}


@pytest.fixture
def stores():
    results, materials = MemoryStore("results", key="key"), MemoryStore("materials", key="material_id")
    results.connect()
    materials.connect()
    return results, materials


def test_one_material_per_composition_and_cell_highest_fidelity_kept(stores):
    results, materials = stores
    results.update([
        _result("dft", "Cu0.5Ni0.5", "vasp", "2026-01-01T00:00:00", -0.05),
        _result("screen", "Cu0.5Ni0.5", "emt", "2026-02-01T00:00:00", -0.01),
        _result("screen", "Cu0.25Ni0.75", "emt", "2026-02-01T00:00:01", 0.02),
        _result("screen", "Cu0.25Ni0.75", "emt", "2026-02-01T00:00:02", 0.02, n_atoms=32),
        _result("screen", "Cu1", "emt", "2026-02-01T00:00:03", None, status="failed"),
    ], key=["campaign", "key", "n_atoms"])
    builder = MaterialsBuilder(results, materials)
    assert builder.build() == 3
    docs = {d["material_id"]: d for d in materials.query({})}
    assert set(docs) == {"Cu0.5Ni0.5:fcc:16", "Cu0.25Ni0.75:fcc:16", "Cu0.25Ni0.75:fcc:32"}
    cuni = docs["Cu0.5Ni0.5:fcc:16"]
    assert cuni["fidelity"] == 3 and cuni["formation_energy_per_atom"] == -0.05  # DFT beats newer EMT
    assert cuni["source"] == {"campaign": "dft", "key": "Cu0.5Ni0.5"}
    assert cuni["seen_in"] == ["dft", "screen"] and cuni["n_results"] == 2
    assert "campaign" not in cuni and "round" not in cuni

    assert MaterialsBuilder(results, materials).build() == 0  # nothing new: nothing rebuilt
    results.update([_result("again", "Cu0.5Ni0.5", "emt", "2026-03-01T00:00:00", -0.02)], key=["campaign", "key"])
    builder = MaterialsBuilder(results, materials)
    assert builder.build() == 1  # only the material with a newer result
    cuni = materials.query_one({"material_id": "Cu0.5Ni0.5:fcc:16"})
    assert cuni["fidelity"] == 3 and cuni["seen_in"] == ["again", "dft", "screen"]
    assert materials.count() == 3


def test_fidelity_ranks():
    assert fidelity({"calculator": {"name": "vasp"}}) > fidelity({"calculator": {"name": "chgnet"}}) \
        > fidelity({"calculator": {"name": "emt"}}) > fidelity({"calculator": {"name": "lookup"}})
    assert fidelity({"calculator": {"name": "emt", "fidelity": 5}}) == 5
    assert fidelity({"calculator": {"name": "my.module:Thing"}}) == 1


@pytest.mark.slow
def test_build_command_on_real_campaigns(small_campaign, tmp_path, capsys):
    for name, seed in (("a", 1), ("b", 2)):
        cfg = copy.deepcopy(small_campaign)
        cfg.update(name=name, search={"sampler": "sobol", "batch_size": 3, "budget": 6, "seed": seed})
        Campaign(parse_config(cfg, "test")).run()
    main(["build"])
    assert "built or updated" in capsys.readouterr().out
    camp = Campaign(parse_config(small_campaign, "test"))
    with camp.db:
        keys = {(r["key"]) for r in camp.db.results.query({"status": "done"}, ["key"])}
        mats = list(camp.db.materials.query({}))
    assert len(mats) == len(keys)  # both campaigns' compositions, each once
    assert all(m["seen_in"] for m in mats)
    main(["build"])
    assert "0 built or updated" in capsys.readouterr().out
