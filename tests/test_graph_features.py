"""Graph features (``features: chgnet``): CHGNet's crystal features of each composition's own cell
feed the surrogate like any featurizer; where they cannot work, the campaign file is refused."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cli_in_process, run_campaign, write_yaml
from test_active import pool_campaign

pytest.importorskip("chgnet")


def test_the_features_are_chgnets_crystal_features_of_the_campaigns_cells():
    from htflow.calculators.mlip import load_model
    from htflow.search.features import get_featurizer
    from htflow.space.structures import StructureBuilder

    elements = ["Cu", "Ni", "Au"]
    featurize = get_featurizer("fractions+chgnet", elements)
    builder = StructureBuilder("bcc", 16)
    featurize.bind(builder)
    rows = np.array([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5], [0.5, 0.5, 0.0]])
    X = featurize(rows)
    assert X.shape == (3, 3 + 64) and featurize.slow
    assert np.array_equal(X[0], X[2]) and np.array_equal(X[:, :3], rows)  # cached, and after the fractions
    model = load_model("chgnet", None, "cpu")
    want = model.predict_structure(builder.build({"Cu": 0.25, "Ni": 0.25, "Au": 0.5}), task="e",
                                   return_crystal_feas=True)["crystal_fea"]
    assert np.allclose(X[1, 3:], want, atol=1e-5)
    featurize.bind(StructureBuilder("fcc", 16))  # another cell: other features
    assert not np.allclose(featurize(rows[1:2])[0, 3:], want, atol=1e-3)


def test_a_campaign_searches_with_graph_features(tmp_path):
    cfg = pool_campaign(name="graph", budget=16, surrogate={"features": "chgnet"})
    cfg["space"]["elements"] = ["Cu", "Ni", "Au"]  # 45 compositions: a model pass each
    cfg["structure"]["n_atoms"] = 16
    cfg["store"] = str(tmp_path / "htflow-data")
    camp = run_campaign(cfg)
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "graph"})
    model_rounds = [r for r in doc["rounds"] if r.get("phase") == "model"]
    assert len(model_rounds) == 2 and len(camp.results(status="done")) == 16
    for r in model_rounds:
        assert r["features"] == "chgnet" and r["cv"]["n"] >= 8
        assert "explain" not in r and "model pass per composition" in r["explain_skipped"]
    code, _, err = cli_in_process(["explain", "graph", "--store", cfg["store"]])
    assert code == 2 and "no round" in err.lower(), err


@pytest.mark.parametrize(("change", "message"), [
    ({"space": {"elements": ["Cu", "Ni", "Au"], "mode": "continuous"}}, "use it with space.step (a grid) or space.points"),
    ({"calculator": {"name": "experiment"}, "structure": None,
      "objectives": [{"name": "hardness", "goal": "maximize"}]}, "an experiment campaign has none"),
])
def test_graph_features_where_they_cannot_work_are_one_line(tmp_path, change, message):
    cfg = pool_campaign(name="bad", surrogate={"features": "chgnet"})
    cfg.update(change)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    cfg["store"] = str(tmp_path / "d")
    write_yaml(tmp_path / "c.yaml", cfg)
    code, _, err = cli_in_process(["run", "c.yaml"], cwd=tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "d").exists()
