"""space: {mode: list, file: ...}: the pool is exactly the listed compositions, for every sampler;
bad lists are refused in one line naming the row."""

from __future__ import annotations

import csv

import pytest
from helpers import ROOT, write_yaml

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.cli import main
from htflow.errors import InputError
from htflow.space import build_space

pytestmark = pytest.mark.slow


def table_keys() -> list[str]:
    with open(ROOT / "htflow/data/emt-fcc7.csv") as f:
        return [r["key"] for r in csv.DictReader(f)]


def listed(n: int = 24) -> list[str]:
    """Cu-Ni-Pd-Au compositions of the bundled table (realisable on its 32-atom cells)."""
    keys = [k for k in table_keys() if all(el in ("Cu", "Ni", "Pd", "Au") for el in
                                             "".join(c if c.isalpha() else " " for c in k).split())]
    return keys[::max(1, len(keys) // n)][:n]


def campaign(sampler: str, budget: int, **space) -> dict:
    return {"name": f"list-{sampler}", "space": {"mode": "list", "file": "cands.csv", **space},
            "structure": {"prototype": "fcc", "n_atoms": 32},
            "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
            "search": {"sampler": sampler, "batch_size": 4, "budget": budget, "seed": 2,
                       **({"surrogate": {"initial": 4}} if sampler == "surrogate" else {})},
            "store": "htflow-data"}


@pytest.mark.parametrize("sampler", ["grid", "random", "sobol", "ga", "surrogate"])
def test_every_sampler_proposes_only_listed_compositions(tmp_path, sampler):
    keys = listed()
    (tmp_path / "cands.csv").write_text("formula\n" + "\n".join(keys) + "\n")
    budget = len(keys) if sampler == "grid" else 12
    camp = Campaign(parse_config(campaign(sampler, budget)))
    camp.run()
    with camp.db:
        done = [r["key"] for r in camp.db.results.query({"campaign": camp.name})]
    assert len(done) == len(set(done)) == budget
    assert set(done) <= set(keys)
    if sampler == "grid":
        assert set(done) == set(keys)


def test_element_columns_and_repeats(tmp_path, capsys):
    (tmp_path / "cands.csv").write_text("Cu,Ni,note\n50,50,a\n0.5,0.5,same composition\n25,75,b\n")
    cfg = campaign("grid", 2)
    pool = build_space(parse_config(cfg).space).pool()
    assert [sorted(p.items()) for p in pool] == [[("Cu", 0.5), ("Ni", 0.5)], [("Cu", 0.25), ("Ni", 0.75)]]
    main(["validate", str(write_yaml(tmp_path / "c.yaml", cfg))])
    assert "2 listed compositions" in capsys.readouterr().out


BAD = [
    ("formula\nCuNi\nCu2(\n", {}, "cands.csv row 2 (line 3)"),
    ("formula\nCuNi\nXx2\n", {}, "'Xx' in 'Xx2' is not a chemical element"),
    ("Cu,Ni\n50,lots\n", {}, "row 1 (line 2): column 'Ni': 'lots' is not a number"),
    ("Cu,Ni\n50,-5\n", {}, "not an amount of at least 0"),
    ("name,value\nA,1\n", {}, "no formula column and no element columns"),
    ("formula\n", {}, "lists no composition"),
    ("formula\nCuNiPd\n", {"elements": ["Cu", "Ni"]}, "the list has Pd, not in space.elements"),
    ("formula\nCuNiPd\n", {"max_elements": 2}, "none of the 1 listed compositions fits"),
    ("formula\nCuNi\n", {"step": 0.25}, "space.step: a list space has no step"),
]


@pytest.mark.parametrize(("text", "space", "words"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_lists_are_one_message(tmp_path, text, space, words):
    (tmp_path / "cands.csv").write_text(text)
    with pytest.raises(InputError) as exc:
        parse_config(campaign("grid", 1, **space))
    assert words in str(exc.value)


def test_mode_and_file_go_together(tmp_path):
    cfg = campaign("grid", 1)
    del cfg["space"]["file"]
    with pytest.raises(InputError, match="mode list needs file"):
        parse_config(cfg)
    with pytest.raises(InputError, match="file is only used with mode list"):
        parse_config({**cfg, "space": {"elements": ["Cu"], "file": "x.csv"}})
    with pytest.raises(InputError, match="does not exist"):
        parse_config(campaign("grid", 1))


def test_the_list_space_workflow_runs_end_to_end(tmp_path, capsys):
    import shutil

    shutil.copytree(ROOT / "workflows", tmp_path / "workflows")
    main(["run", "-q", "workflows/list-space.yaml"])
    assert "12 computed now; 12 done and 0 failed" in capsys.readouterr().out
    with open(tmp_path / "workflows/data/candidates.csv") as f:
        from htflow.space import as_fractions, composition_key

        keys = {composition_key(as_fractions(r["formula"])) for r in csv.DictReader(f)}
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    with CampaignDB(StoreConfig()) as db:
        done = {r["key"] for r in db.results.query({"campaign": "list-space"})}
    assert len(done) == 12 and done <= keys
