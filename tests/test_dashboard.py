"""The web dashboard of ``htflow serve``, driven in headless Chromium (Playwright).

Chromium comes from the system (Debian's ``chromium`` package; ``make test``
installs it where it can). Without it these tests are skipped with that reason.
"""

from __future__ import annotations

import shutil

import pytest

from htflow.schemas.config import StoreConfig
from htflow.store.db import CampaignDB

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and shutil.os.path.exists(p)), None)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium, or `make test` as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("console", lambda msg: pg.errors.append(msg.text) if msg.type == "error" else None)
    yield pg
    ctx.close()


def test_dashboard_shows_the_campaign_and_its_best_candidate(live_server, page):
    url, store = live_server
    with CampaignDB(StoreConfig(path=store)).connect() as db:
        camp = db.campaigns.query_one({"name": "small"})
        best = sorted(db.results.query({"campaign": "small", "status": "done"}),
                      key=lambda r: r["formation_energy_per_atom"])
    page.goto(url + "/")
    page.wait_for_selector("#best tr.candidate")
    row = page.locator("#campaigns tr.campaign")
    assert row.count() == 1
    assert row.locator("td").nth(0).inner_text() == "small"
    assert "6 / 6" in row.locator("td").nth(2).inner_text()
    assert camp["best"]["formula"] in row.locator("td").nth(3).inner_text()

    cands = page.locator("#best tr.candidate")
    assert cands.count() == 6
    first = cands.nth(0)
    assert first.locator(".formula").inner_text() == best[0]["formula"] == camp["best"]["formula"]
    assert float(first.locator(".value").inner_text()) == pytest.approx(best[0]["formation_energy_per_atom"],
                                                                        abs=5e-5)
    assert float(first.locator(".hull").inner_text()) == pytest.approx(best[0]["e_above_hull"], abs=5e-5)
    shown = [float(cands.nth(i).locator(".value").inner_text()) for i in range(6)]
    assert shown == sorted(shown)  # best first for a minimised objective

    # the report's plots are drawn from the store and load as images
    page.wait_for_function("""() => [...document.querySelectorAll('#plots img')]
                              .every(i => i.complete && i.naturalWidth > 0)""", timeout=60_000)
    assert page.locator("#plots img").count() == 3  # no parity plot: a sobol campaign fits no model
    assert page.locator("#plots figure.missing").count() == 1  # one objective: no Pareto slot at all
    assert "not enough results" in page.locator("#plots figure.missing").inner_text()
    assert page.locator("#error").is_hidden()
    assert page.errors == []


def test_dashboard_reports_an_unreachable_server(live_server, page):
    """A failing API is said on the page, not a blank screen."""
    url, _ = live_server
    page.route("**/api/campaigns", lambda route: route.fulfill(status=500, body='{"error": "internal error"}',
                                                                 content_type="application/json"))
    page.goto(url + "/")
    page.wait_for_selector("#error", state="visible")
    assert "internal error" in page.locator("#error").inner_text()


def test_dashboard_shows_every_objective_and_the_pareto_front(tmp_path, page):
    """A campaign of two objectives: both named, the front listed with a column each (the store's
    values), its hypervolume per round, and a learning curve of the second objective."""
    from helpers import serving

    from htflow.campaign.loop import Campaign
    from htflow.campaign.validation import parse_config

    store = str(tmp_path / "htflow-data")
    cfg = {"name": "two", "space": {"elements": ["Cu", "Ni", "Pd", "Ag"], "step": 0.25, "max_elements": 2},
           "structure": {"prototype": "fcc", "n_atoms": 32},
           "calculator": {"name": "lookup", "options": {"table": "emt-fcc7"}},
           "objectives": [{"name": "formation_energy_per_atom", "goal": "minimize"},
                          {"name": "density", "goal": "minimize"}],
           "search": {"sampler": "random", "batch_size": 5, "budget": 15, "seed": 4}, "store": store}
    Campaign(parse_config(cfg, "test")).run()
    with CampaignDB(StoreConfig(path=store)).connect() as db:
        doc = db.campaigns.query_one({"name": "two"})
        front = {r["formula"]: r for r in db.results.query({"campaign": "two", "key": {"$in": doc["pareto_front"]}})}
    assert len(front) >= 2
    with serving(store, tmp_path) as url:
        page.goto(url + "/#campaign=two")
        page.wait_for_selector("#front tr.front-member")
        cell = page.locator("#campaigns tr.campaign td.objectives").inner_text()
        assert cell == "formation_energy_per_atom (min), density (min)"
        heads = page.locator("#front thead th").all_inner_texts()
        assert heads == ["formula", "formation_energy_per_atom (min)", "density (min)", "round"]
        rows = page.locator("#front tr.front-member")
        assert rows.count() == len(front)
        for i in range(rows.count()):
            cells = rows.nth(i).locator("td").all_inner_texts()
            r = front[cells[0]]
            assert float(cells[1]) == pytest.approx(r["formation_energy_per_atom"], abs=5e-5)
            assert float(cells[2]) == pytest.approx(r["density"], abs=5e-5)
        summary = page.locator("#front-summary").inner_text()
        assert f"{len(front)} results on the front" in summary
        for rnd in doc["rounds"]:
            assert f"{rnd['round']}: " in summary
        page.wait_for_selector("img[data-plot='learning-curve-density']")
        page.wait_for_function("""() => [...document.querySelectorAll('#plots img')]
                                  .every(i => i.complete && i.naturalWidth > 0)""", timeout=60_000)
        shown = page.locator("#plots img").evaluate_all("imgs => imgs.map(i => i.dataset.plot)")
        assert "pareto" in shown and "learning-curve-density" in shown
        assert page.errors == []
