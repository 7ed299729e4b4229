"""Explanations: Shapley values per element and pair, length scales, partial dependence; stored with
each model round, printed by ``htflow explain``, drawn in the report and served by the API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cli_in_process, run_campaign, two_objective_config

from htflow.search.explain import _set_values, explain, shapley
from htflow.search.surrogates import get_surrogate

ELEMENTS = ["Al", "Cu", "Ni", "Pd", "Ag", "Pt"]


def two_element_function(X: np.ndarray) -> np.ndarray:
    """Depends on Cu and Pd only (and their product)."""
    return 2.0 * X[:, 1] - 1.5 * X[:, 3] + 3.0 * X[:, 1] * X[:, 3]


def pool(n=160, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(len(ELEMENTS)), n)


def test_shapley_values_of_a_tree_model_sum_to_the_prediction_minus_the_expected_value():
    """Efficiency, and the values equal the shap package's interventional TreeExplainer."""
    shap = pytest.importorskip("shap")
    X = pool()
    model = get_surrogate("forest").fit(X, two_element_function(X))
    Xe, B = X[:8], X[20:36]
    v = _set_values(model.mean, Xe, B, [np.array([j]) for j in range(len(ELEMENTS))])
    phi, inter = shapley(v, len(ELEMENTS))
    expected = model.mean(B).mean()
    assert phi.sum(axis=1) == pytest.approx(model.mean(Xe) - expected, abs=1e-9)
    ref = shap.TreeExplainer(model.model, data=B, feature_perturbation="interventional")
    assert ref.expected_value == pytest.approx(expected, abs=1e-9)
    assert np.abs(ref.shap_values(Xe) - phi).max() < 1e-6
    # interaction indices are symmetric, and a model without the pair (additive) has none
    assert np.allclose(inter, inter.transpose(0, 2, 1))
    additive = _set_values(lambda Z: Z @ np.arange(len(ELEMENTS)), Xe, B, [np.array([j]) for j in range(6)])
    assert np.abs(shapley(additive, 6)[1]).max() < 1e-9


@pytest.mark.parametrize("model", ["gp-plain", "gp", "forest"])
def test_only_the_two_elements_that_matter_rank_first(model):
    X = pool()
    fitted = get_surrogate(model).fit(X, two_element_function(X))
    ex = explain(fitted, lambda Z: Z, X, ELEMENTS, seed=0, labels=[f"x_{e}" for e in ELEMENTS])
    ranked = [r["element"] for r in ex["elements"]]
    assert set(ranked[:2]) == {"Cu", "Pd"}
    by = {r["element"]: r for r in ex["elements"]}
    assert by["Cu"]["direction"] > 0.5 and by["Pd"]["direction"] < -0.5  # more Cu raises, more Pd lowers
    # (an isotropic GP spreads some importance off the simplex, where interventional values look)
    assert min(by["Cu"]["importance"], by["Pd"]["importance"]) > 2 * max(
        by[e]["importance"] for e in ranked[2:])
    assert ex["pairs"][0]["pair"] in (["Cu", "Pd"], ["Pd", "Cu"])
    assert list(ex["partial_dependence"]) == ranked[:2]
    cu = ex["partial_dependence"]["Cu"]
    assert cu["mean"][-1] > cu["mean"][0]  # the model's mean rises with Cu
    if model == "gp":  # ARD: the two elements have the shortest length scales
        assert set(list(ex["length_scales"])[:2]) == {"x_Cu", "x_Pd"}


def test_a_maximised_objective_is_explained_in_its_own_direction():
    X = pool()
    y = two_element_function(X)
    fitted = get_surrogate("forest").fit(X, -y)  # the planner minimises: -y for a maximised objective
    ex = explain(fitted, lambda Z: Z, X, ELEMENTS, seed=0, sign=-1.0)
    by = {r["element"]: r for r in ex["elements"]}
    assert by["Cu"]["direction"] > 0.5  # more Cu raises the objective the user maximises


def test_many_elements_group_the_least_important():
    rng = np.random.default_rng(1)
    els = [f"E{i}" for i in range(14)]
    X = rng.dirichlet(np.ones(14), 200)
    y = 3 * X[:, 4] - 2 * X[:, 9]
    fitted = get_surrogate("forest").fit(X, y)
    ex = explain(fitted, lambda Z: Z, X, els, seed=0)
    names = [r["element"] for r in ex["elements"]]
    assert len(names) == 10 and any(n.startswith("other (5 elements") for n in names)
    assert set(names[:2]) == {"E4", "E9"}
    assert "grouped" in ex["method"]


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """A surrogate campaign on the bundled EMT table (Cu-Ni-Pd-Au, 24 evaluations): four model rounds."""
    root = tmp_path_factory.mktemp("explained")
    cfg = {
        "name": "why",
        "space": {"elements": ["Cu", "Ni", "Pd", "Au"], "step": 0.125, "max_elements": 3},
        "structure": {"prototype": "fcc", "n_atoms": 32},
        "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
        "search": {"batch_size": 4, "budget": 24, "seed": 1, "surrogate": {"initial": 8}},
        "store": str(root / "htflow-data"),
    }
    camp = run_campaign(cfg)
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "why"})
    return root, doc


def test_every_model_round_stores_its_explanation(explained):
    _, doc = explained
    rounds = sorted(doc["rounds"], key=lambda r: r["round"])
    model = [r for r in rounds if r.get("phase") == "model"]
    assert len(model) == 4 and all(r.get("explain") for r in model)
    assert not any(r.get("explain") for r in rounds if r.get("phase") != "model")
    for r in model:
        ex = r["explain"]
        imp = [e["importance"] for e in ex["elements"]]
        assert imp == sorted(imp, reverse=True) and {e["element"] for e in ex["elements"]} == {"Cu", "Ni", "Pd", "Au"}
        values = np.array(ex["shap"]["values"])
        assert values.shape == (ex["points"], 4)


def test_htflow_explain_prints_the_ranking_first(explained):
    root, doc = explained
    store = str(root / "htflow-data")
    code, out, err = cli_in_process(["explain", "why", "--store", store])
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.strip()]
    header = next(i for i, ln in enumerate(lines) if "rank" in ln)
    assert all(set(ln.strip()) <= set("┏━┳┓") for ln in lines[:header])  # nothing before the ranking
    latest = max((r for r in doc["rounds"] if r.get("explain")), key=lambda r: r["round"])
    printed = [ln.split("│")[2].strip() for ln in lines if ln.count("│") == 6 and ln.split("│")[1].strip().isdigit()]
    ranked = [e["element"] for e in latest["explain"]["elements"]]
    assert printed[:4] == ranked
    assert f"round {latest['round']}" in out and "Shapley" in out

    earlier = min(r["round"] for r in doc["rounds"] if r.get("explain"))
    code, out, _ = cli_in_process(["explain", "why", "--store", store, "--round", str(earlier), "--json"])
    got = json.loads(out)
    assert code == 0 and got["round"] == earlier
    assert got["elements"] == next(r for r in doc["rounds"] if r["round"] == earlier)["explain"]["elements"]

    first = min(r["round"] for r in doc["rounds"])
    have = sorted(r["round"] for r in doc["rounds"] if r.get("explain"))
    code, out, err = cli_in_process(["explain", "why", "--store", store, "--round", str(first)])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"round {first} has no explanation; rounds with one: {', '.join(map(str, have))}" in err


def test_the_report_and_the_api_show_the_explanation(explained, tmp_path):
    from fastapi.testclient import TestClient

    from htflow.schemas.config import StoreConfig
    from htflow.server.app import create_app

    root, doc = explained
    store = str(root / "htflow-data")
    code, _, err = cli_in_process(["report", "why", "--store", store, "-o", str(tmp_path / "r")])
    assert code == 0, err
    for name in ("explain-importance", "explain-beeswarm", "explain-dependence"):
        assert (tmp_path / "r" / f"{name}.png").stat().st_size > 5000
    page = (tmp_path / "r" / "index.html").read_text()
    latest = max((r for r in doc["rounds"] if r.get("explain")), key=lambda r: r["round"])
    assert f"Why the model predicts what it does (round {latest['round']})" in page
    with TestClient(create_app(StoreConfig(path=store), optimade=False)) as client:
        got = client.get("/api/campaigns/why/explain").json()["data"]
        assert got["round"] == latest["round"] and got["elements"] == latest["explain"]["elements"]
        earlier = min(r["round"] for r in doc["rounds"] if r.get("explain"))
        assert client.get(f"/api/campaigns/why/explain?round={earlier}").json()["data"]["round"] == earlier
        missing = client.get(f"/api/campaigns/why/explain?round={min(r['round'] for r in doc['rounds'])}")
        assert missing.status_code == 404 and "rounds with one" in missing.json()["error"]
        listed = client.get("/api/campaigns").json()["data"][0]["plots"]
        assert "explain-importance" in listed and "generative" not in listed
        png = client.get("/api/campaigns/why/plots/explain-importance.png")
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def two_objectives(tmp_path_factory):
    """A ParEGO campaign on formation energy and density (Al-Cu-Ni-Pd-Pt, bundled EMT table, on disk)."""
    root = tmp_path_factory.mktemp("two")
    cfg = two_objective_config(str(root / "htflow-data"), budget=24, surrogate={"multi_objective": "parego"})
    camp = run_campaign(cfg)
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "mo"})
    return root, doc


def test_several_objectives_are_each_explained_by_a_model_of_their_own(two_objectives):
    """A ParEGO round's model learned a random scalarisation; the explanation fits each objective alone.
    Density is nearly linear in the fractions (Al 2.7 to Pt 21.5 g/cm3): Pt and Al lead it, Pt raising
    it and Al lowering it; the formation energy's ranking is another one."""
    _, doc = two_objectives
    model = [r for r in doc["rounds"] if r.get("phase") == "model"]
    assert model and all(set(r["explain_objectives"]) == {"density"} for r in model)
    for r in model:
        energy, density = r["explain"], r["explain_objectives"]["density"]
        assert energy["objective"] == "formation_energy_per_atom" and density["objective"] == "density"
        assert "fitted to density alone" in density["model"]
        top = {e["element"]: e["direction"] for e in density["elements"][:2]}
        assert set(top) == {"Pt", "Al"} and top["Pt"] > 0.9 and top["Al"] < -0.9
        assert [e["element"] for e in energy["elements"]] != [e["element"] for e in density["elements"]]
        # in each objective's own units: grams per cm3 for density, tens of meV/atom for the energy
        assert density["elements"][0]["importance"] > 1.0 > 0.1 > energy["elements"][0]["importance"]


def test_htflow_explain_the_api_and_the_report_take_an_objective(two_objectives, tmp_path):
    from fastapi.testclient import TestClient

    from htflow.schemas.config import StoreConfig
    from htflow.server.app import create_app

    root, doc = two_objectives
    store = str(root / "htflow-data")
    latest = max((r for r in doc["rounds"] if r.get("explain")), key=lambda r: r["round"])
    code, out, err = cli_in_process(["explain", "mo", "--store", store, "--objective", "density"])
    assert code == 0, err
    printed = [ln.split("│")[2].strip() for ln in out.splitlines()
               if ln.count("│") == 6 and ln.split("│")[1].strip().isdigit()]
    assert printed == [e["element"] for e in latest["explain_objectives"]["density"]["elements"]]
    flat = " ".join(out.split())  # the note wraps at the console's width
    assert "of density in g/cm³" in flat and "the other objectives: --objective formation_energy_per_atom" in flat
    code, out, _ = cli_in_process(["explain", "mo", "--store", store, "--json"])
    assert code == 0 and json.loads(out)["objective"] == "formation_energy_per_atom"
    code, out, err = cli_in_process(["explain", "mo", "--store", store, "-o", "densty"])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "no explanation of 'densty' (did you mean 'density'?)" in err
    assert "objectives it explains: formation_energy_per_atom, density" in err

    with TestClient(create_app(StoreConfig(path=store), optimade=False)) as client:
        got = client.get("/api/campaigns/mo/explain?objective=density").json()["data"]
        assert got["round"] == latest["round"] and got["objective"] == "density"
        assert got["elements"] == latest["explain_objectives"]["density"]["elements"]
        bad = client.get("/api/campaigns/mo/explain?objective=cost")
        assert bad.status_code == 404 and "objectives it explains" in bad.json()["error"]
        assert "explain-objectives" in client.get("/api/campaigns").json()["data"][0]["plots"]
        png = client.get("/api/campaigns/mo/plots/explain-objectives.png")
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"

    code, _, err = cli_in_process(["report", "mo", "--store", store, "-o", str(tmp_path / "r")])
    assert code == 0, err
    assert (tmp_path / "r" / "explain-objectives.png").stat().st_size > 5000
    page = (tmp_path / "r" / "index.html").read_text()
    assert f"(round {latest['round']}, formation_energy_per_atom)" in page
    assert "density: the elements that matter" in page and "fitted to density alone" in page
