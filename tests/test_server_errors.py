"""htflow serve under failure and load: unexpected errors are short JSON bodies with a request id
(logged as one line), OPTIMADE's bad parameters are 400s without paths, and a plot being drawn
does not hold the JSON endpoints."""

from __future__ import annotations

import logging
import socket
import threading

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.schemas.config import StoreConfig
from htflow.server.app import create_app
from htflow.server.plots import PlotWorker
from htflow.store.repository import CampaignRepository

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from helpers import small_campaign_config

    path = str(tmp_path_factory.mktemp("served") / "htflow-data")
    cfg = small_campaign_config()
    cfg["search"] = {"sampler": "sobol", "batch_size": 3, "budget": 3, "seed": 3}
    cfg["store"] = path
    Campaign(parse_config(cfg, "test")).run()
    return path


def test_an_unexpected_error_is_a_500_with_a_request_id_and_one_log_line(store, monkeypatch, caplog):
    def broken(self):
        raise RuntimeError("/srv/secret/site-packages/thing.py exploded")

    monkeypatch.setattr(CampaignRepository, "counts", broken)
    with caplog.at_level(logging.ERROR), TestClient(create_app(StoreConfig(path=store), optimade=False),
                                                    raise_server_exceptions=False) as client:
        r = client.get("/api/campaigns")
        ok = client.get("/api/results", params={"limit": 1})
    rid = r.headers["x-request-id"]
    assert r.status_code == 500 and r.json() == {"error": "internal error", "request_id": rid}
    assert ok.status_code == 200 and ok.headers["x-request-id"] != rid  # one id per request
    [record] = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    line = record.getMessage()
    assert rid in line and "RuntimeError" in line and "/api/campaigns" in line
    assert "secret" not in line and record.exc_info is None  # the type, never the message or traceback


@pytest.mark.parametrize(("query", "words"), [
    ("page_offset=-5", "page_offset: Input should be greater than or equal to 0"),
    ("page_limit=abc", "page_limit: Input should be a valid integer"),
    ("filter=" + "(" * 500 + "nelements=1" + ")" * 500, "parentheses nested deeper than 32 levels"),
    ("filter=nelements%3D", "filter"),
])
def test_optimade_bad_parameters_are_400s_without_paths(store, query, words):
    with TestClient(create_app(StoreConfig(path=store)), raise_server_exceptions=False) as client:
        r = client.get(f"/optimade/v1/structures?{query}")
    assert r.status_code == 400, r.text
    [error] = r.json()["errors"]
    assert words in error["detail"]
    assert "site-packages" not in r.text and "Traceback" not in r.text and 'File "' not in r.text


def test_a_plot_being_drawn_does_not_hold_the_json_endpoints(store, monkeypatch):
    started, release = threading.Event(), threading.Event()
    draw = PlotWorker._draw
    threads = []

    def slow_draw(self, name, plot):
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(60)
        return draw(self, name, plot)

    monkeypatch.setattr(PlotWorker, "_draw", slow_draw)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(StoreConfig(path=store), optimade=False),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.started:
                break
            threading.Event().wait(0.1)
        plots: list = []
        asker = threading.Thread(target=lambda: plots.append(
            httpx.get(f"{url}/api/campaigns/small/plots/learning-curve.png", timeout=120)))
        asker.start()
        assert started.wait(60), "the plot was never drawn"
        # while the plot is still being drawn, the JSON endpoints answer (a drawing on the event
        # loop would hold them until the timeout)
        r = httpx.get(f"{url}/api/campaigns", timeout=30)
        q = httpx.get(f"{url}/api/results", params={"limit": 2}, timeout=30)
        assert r.status_code == 200 and q.status_code == 200 and not plots
        release.set()
        asker.join(60)
        assert plots[0].status_code == 200 and plots[0].content.startswith(b"\x89PNG")
        assert threads == ["htflow-plots_0"]
    finally:
        release.set()
        server.should_exit = True
        thread.join(30)
