"""htflow report: the page and its plots, with numbers equal to the store's."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from helpers import ROOT

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.cli import main
from htflow.report.plots import random_baseline
from htflow.report.style import fmt as _fmt
from htflow.report.view import CampaignView, pool_values

pytestmark = pytest.mark.slow


def _campaign(small_campaign, **calc) -> Campaign:
    cfg = copy.deepcopy(small_campaign)
    cfg["search"] = {"sampler": "surrogate", "batch_size": 4, "budget": 12, "seed": 3, "surrogate": {"initial": 4}}
    if calc:
        cfg["calculator"] = calc
    camp = Campaign(parse_config(cfg, "test"))
    camp.run()
    return camp


def test_report_renders_every_plot_with_the_stores_numbers(small_campaign, tmp_path, capsys):
    camp = _campaign(small_campaign)
    main(["report", "small"])
    assert "report: htflow-data/reports/small/index.html" in capsys.readouterr().out
    folder = tmp_path / "htflow-data" / "reports" / "small"
    page = (folder / "index.html").read_text()
    pngs = ("learning-curve.png", "parity.png", "composition-map.png", "hull.png",
            "explain-importance.png", "explain-beeswarm.png", "explain-dependence.png")
    for png in pngs:
        data = (folder / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert page.count("data:image/png;base64,") == len(pngs)  # self-contained: the plots are in the page

    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "small"})
        n_done = camp.db.results.count({"campaign": "small", "status": "done"})
    best = doc["best"]
    assert f"{best['formula']} {_fmt(best['value'])}" in page
    cvs = [r for r in doc["rounds"] if r.get("cv")]
    assert cvs, "a model round with cross-validation"
    for r in cvs:  # every round's CV metrics are in the table
        assert f"<td>{_fmt(r['cv']['mae'])}</td><td>{_fmt(r['cv']['rmse'])}</td><td>{_fmt(r['cv']['r2'], 3)}</td>" in page
    cells = re.search(r"<td>fcc 16 atoms</td><td>emt</td><td>[^<]+</td><td>surrogate</td><td>12</td><td>(\d+)</td>", page)
    assert cells and int(cells.group(1)) == n_done
    top = camp.best(10)
    best_table = page[page.index("<h2>Best"):page.index("<h2>Failures")]
    assert re.findall(r"<tr><td>\d+</td><td>([A-Za-z0-9.]+)</td>", best_table) == [r["key"] for r in top]
    for r in top:  # each with its distance to the hull, as stored
        assert f"<td>{_fmt(r[camp.objective.name])}</td><td>{_fmt(r['e_above_hull'])}</td>" in best_table
    assert "<h2>Failures (0)</h2>" in page


def test_failures_are_listed(small_campaign, tmp_path):
    camp = _campaign(small_campaign, name="htflow.testing:FailingEMT", options={"element": "Pd", "fraction": 0.5})
    from htflow.report.html import write_report

    with camp.db:
        failed = camp.results(status="failed")
        index = write_report(camp.view(), tmp_path / "r")
    page = index.read_text()
    assert failed and f"<h2>Failures ({len(failed)})</h2>" in page
    for r in failed:
        assert f"<td>{r['key']}</td>" in page and "injected failure" in page


def test_random_baseline_is_random_selection():
    med, lo, hi = random_baseline([3.0, 1.0, 2.0], "minimize", 3, n=4000, seed=1)
    assert med[0] == 2.0 and med[2] == 1.0 and lo[2] == hi[2] == 1.0  # after all three: always the best
    # P(best of 2 picks = 1) = 2/3: the median after two picks is 1
    assert med[1] == 1.0
    med, _, _ = random_baseline([3.0, None, 2.0], "maximize", 2, n=4000, seed=1)
    assert med[1] == 3.0  # a failed composition never improves the best


def test_pool_values_keep_computed_values_and_estimate_the_rest(small_campaign):
    camp = _campaign(small_campaign)
    results = camp.summaries()
    values, source = pool_values(camp.view(), results, "formation_energy_per_atom")
    assert source == "estimated by the model"  # 16-atom cells: no bundled table holds them
    pool = camp.space.pool()
    assert len(values) == len(pool) and all(v is not None for v in values)
    from htflow.space.compositions import composition_key

    by_key = {r["key"]: r["formation_energy_per_atom"] for r in results}
    keys = [composition_key(camp.builder.realise(p)) for p in pool]
    for k, v in zip(keys, values, strict=True):
        if k in by_key:
            assert v == by_key[k]
    assert np.isfinite(values).all()


def test_report_of_unknown_campaign_is_bad_input(small_campaign, tmp_path, capsys):
    _campaign(small_campaign)
    with pytest.raises(SystemExit) as exc:
        main(["report", "smal"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no campaign named 'smal'" in err and "Traceback" not in err


def test_the_random_baseline_is_exact_where_a_bundled_table_covers_the_space():
    """The demo's space, cell and calculator settings are those the bundled EMT table was computed
    with: random selection is drawn from the true values, not the model's."""
    from htflow.calculators.lookup import table_column
    from htflow.campaign.validation import load_config
    from htflow.schemas.config import StoreConfig
    from htflow.space.compositions import composition_key
    from htflow.store.db import CampaignDB

    cfg = load_config(ROOT / "workflows" / "demo.yaml")
    view = CampaignView(cfg, CampaignDB(StoreConfig(backend="memory")))
    values, source = pool_values(view, [], "formation_energy_per_atom")
    assert source == "the table emt-fcc7.csv"
    truth = table_column("emt-fcc7", "formation_energy_per_atom")
    keys = [composition_key(view.builder.realise(p)) for p in view.space.pool()]
    assert values == [truth[k] for k in keys] and len(values) == view.space.grid_size()
    other = cfg.model_copy(update={"calculator": cfg.calculator.model_copy(update={"fmax": 0.01})})
    assert pool_values(CampaignView(other, view.db), [], "formation_energy_per_atom")[1] == "estimated by the model"


@pytest.mark.slow
def test_the_demo_beats_the_exact_random_median_after_its_first_model_round():
    """The demo, replayed on the bundled EMT table: from the first model round's results on, its best
    so far is never behind the median of random selection drawn from the true values."""
    from htflow.campaign.replay import pool_values as table_values
    from htflow.campaign.replay import replay
    from htflow.campaign.validation import load_config
    from htflow.report.plots import random_baseline
    from htflow.search.registry import get_generator

    cfg = load_config(ROOT / "workflows" / "demo.yaml")
    values = table_values(cfg, "emt-fcc7")
    median, _, _ = random_baseline(list(values.values()), "minimize", cfg.search.budget)
    trace = replay(cfg, get_generator(cfg.search.sampler, cfg.search.surrogate), values, cfg.search.budget)
    best = trace.best_so_far()
    first_model = cfg.search.surrogate.initial + cfg.search.batch_size  # the initial points, then one model round
    behind = [i + 1 for i in range(first_model, len(best)) if best[i] > median[i] + 1e-12]
    assert not behind, f"behind the random median at evaluations {behind}"
    assert best[-1] == min(values.values())  # and it finds the space's minimum within its budget
