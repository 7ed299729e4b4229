"""``model: auto``: each round the model whose k-fold CV predicts held-out results best, shown with
the scores of every candidate in htflow status and the report."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cli_in_process, run_campaign
from test_active import pool_campaign

from htflow.search.planner import AUTO_MODELS, Planner, surrogate_settings


def _select(y_of) -> dict:
    return _select_with("auto", y_of)


@pytest.mark.parametrize(("y_of", "expected"), [
    (lambda X: np.sin(4 * X[:, 0]) + X[:, 1] ** 2, "gp-plain"),          # smooth: the GP
    (lambda X: np.where(X[:, 0] > 0.3, 1.0, 0.0) + 0.3 * (X[:, 1] > 0.5), "forest"),  # steps: the trees
])
def test_auto_chooses_the_model_that_predicts_held_out_results_best(y_of, expected):
    info = _select(y_of)
    choice = info["model_choice"]
    assert set(choice["scores"]) == set(AUTO_MODELS)
    assert choice["chosen"] == expected == info["model"]
    assert choice["chosen"] == min(choice["scores"], key=lambda k: choice["scores"][k]["nlpd"])
    assert info["cv"]["n"] == 80  # the round's CV is the chosen model's


def test_the_chosen_models_cv_is_not_run_twice(monkeypatch):
    """The round's CV is the chosen model's CV from the choice: the same numbers as a CV run afresh."""
    import htflow.search.planner as planner

    calls = []
    real = planner.cross_validate
    monkeypatch.setattr(planner, "cross_validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    info = _select(lambda X: np.sin(4 * X[:, 0]) + X[:, 1] ** 2)
    assert len(calls) == len(AUTO_MODELS)
    monkeypatch.setattr(planner, "cross_validate", real)
    fresh = _select_with(info["model"], lambda X: np.sin(4 * X[:, 0]) + X[:, 1] ** 2)
    assert info["cv"]["y_pred"] == pytest.approx(fresh["cv"]["y_pred"], rel=1e-9)
    assert info["cv"]["mae"] == pytest.approx(fresh["cv"]["mae"], rel=1e-9)


def _select_with(model: str, y_of) -> dict:
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), 80)
    cands = rng.dirichlet(np.ones(4), 200)
    planner = Planner(surrogate_settings(model=model), ["Cu", "Ni", "Pd", "Au"])
    return planner.select(X, y_of(X), cands, 4, seed=0, rnd=3).info


@pytest.mark.slow
def test_status_and_the_report_show_which_model_each_round_chose_and_why(tmp_path):
    cfg = pool_campaign(name="auto", budget=16, surrogate={"model": "auto"})
    cfg["store"] = str(tmp_path / "htflow-data")
    camp = run_campaign(cfg)
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "auto"})
    chosen = [r for r in doc["rounds"] if r.get("model_choice")]
    assert len(chosen) == 2
    code, out, err = cli_in_process(["status", "auto", "--store", cfg["store"]])
    assert code == 0, err
    for r in chosen:
        c = r["model_choice"]
        assert f"{c['chosen']} (gp-plain {c['scores']['gp-plain']['nlpd']:.3g}" in out
    assert "negative log predictive density" in out
    code, _, err = cli_in_process(["report", "auto", "--store", cfg["store"], "-o", str(tmp_path / "r")])
    assert code == 0, err
    assert f"{chosen[-1]['model_choice']['chosen']} (auto; CV NLPD gp-plain" in (tmp_path / "r" / "index.html").read_text()
