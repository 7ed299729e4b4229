"""htflow serve: read-only API, pagination, and 400s (never a 500 or a leak) for bad queries."""

from __future__ import annotations

import copy
import json

import orjson
import pytest
from fastapi.testclient import TestClient

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.schemas.config import StoreConfig
from htflow.server.app import create_app

pytestmark = pytest.mark.slow

DEEP: dict = {"f": 1}
for _ in range(6):
    DEEP = {"a": {"$elemMatch": DEEP}}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One small campaign, served (module-wide: the bad-query cases only read)."""
    from helpers import small_campaign_config as make

    store = str(tmp_path_factory.mktemp("served") / "htflow-data")
    cfg = make()
    cfg["search"] = {"sampler": "sobol", "batch_size": 3, "budget": 6, "seed": 3}
    cfg["store"] = store
    camp = Campaign(parse_config(cfg, "test"))
    camp.run()
    with TestClient(create_app(StoreConfig(path=store))) as c:
        c.campaign = camp
        c.store = store
        yield c


def test_campaigns_results_and_pagination(client):
    camp = client.campaign
    r = client.get("/api/campaigns")
    assert r.status_code == 200
    [c] = r.json()["data"]
    assert c["name"] == "small" and c["counts"]["done"] == 6 and c["budget"] == 6
    with camp.db:
        doc = camp.db.campaigns.query_one({"name": "small"})
        stored = sorted(camp.db.results.query({"campaign": "small"}, ["key", "formation_energy_per_atom"]),
                        key=lambda d: d["formation_energy_per_atom"])
    assert c["best"] == doc["best"]
    assert client.get("/api/campaigns/small").json()["data"]["rounds"] == json.loads(
        orjson.dumps(doc["rounds"]))  # datetimes as ISO strings
    assert client.get("/api/campaigns/nope").status_code == 404

    page1 = client.get("/api/results", params={"sort": "formation_energy_per_atom", "limit": 4,
                                                "fields": "key,formation_energy_per_atom"}).json()
    page2 = client.get("/api/results", params={"sort": "formation_energy_per_atom", "limit": 4, "skip": 4,
                                                "fields": "key,formation_energy_per_atom"}).json()
    assert page1["meta"] == {"count": 6, "skip": 0, "limit": 4, "more": True}
    assert page2["meta"]["more"] is False
    assert [d["key"] for d in page1["data"] + page2["data"]] == [d["key"] for d in stored]
    filt = {"elements": "Pd", "formation_energy_per_atom": {"$lt": 0.05}}
    got = client.get("/api/results", params={"filter": json.dumps(filt)}).json()
    with camp.db:
        assert got["meta"]["count"] == camp.db.results.count(filt)
    assert all("structure" not in d for d in got["data"])  # heavy fields only when asked for


@pytest.mark.parametrize(("params", "words"), [
    ({"filter": '{"$where": "sleep(100)"}'}, "'$where' is not allowed"),
    ({"filter": '{"x": {"$function": {"body": "1"}}}'}, "'$function' is not allowed"),
    ({"filter": '{"$expr": {"$gt": [1, 0]}}'}, "'$expr' is not allowed"),
    ({"filter": '{"x": {"$accumulator": {}}}'}, "'$accumulator' is not allowed"),
    ({"filter": "{not json"}, "not valid JSON"),
    ({"filter": "[1, 2]"}, "must be a JSON object"),
    ({"filter": '{"x": {"$in": 5}}'}, "must be a list"),
    ({"filter": '{"x": {"$regex": "("}}'}, "not a valid regular expression"),
    ({"filter": json.dumps({"x": {"$regex": "a" * 500}})}, "at most 200 characters"),
    ({"filter": "{" * 50 + "}" * 50}, "not valid JSON"),
    ({"filter": json.dumps(DEEP)}, "nested deeper"),
    ({"filter": json.dumps({"k": "x" * 20000})}, "longer than"),
    ({"fields": "a;drop table"}, "invalid field name"),
    ({"sort": "x'--"}, "invalid field name"),
    ({"limit": 100000}, "limit must be between"),
    ({"limit": -1}, "limit must be between"),
    ({"skip": -5}, "skip must be between"),
])
def test_bad_queries_are_400s_without_leaks(client, params, words):
    r = client.get("/api/results", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert words in body["error"]
    assert "Traceback" not in r.text and "sqlite" not in r.text.lower() and "htflow-data" not in r.text


def test_only_reads_and_known_collections(client):
    assert client.get("/api/jobs").status_code == 404
    assert client.get("/api/secrets").status_code == 404
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/results").status_code == 405
    r = client.get("/api/results", params={"limit": "lots"})  # FastAPI's own check, as one line
    assert r.status_code == 400
    assert r.json() == {"error": "limit: Input should be a valid integer, unable to parse string as an integer"}


def test_connection_strings_never_shown(small_campaign, tmp_path, capsys):
    cfg = copy.deepcopy(small_campaign)
    cfg["search"] = {"sampler": "sobol", "batch_size": 3, "budget": 3, "seed": 3}
    camp = Campaign(parse_config(cfg, "test"))
    camp.run()
    with camp.db:  # a campaign whose stored config names a MongoDB with a password
        doc = camp.db.campaigns.query_one({"name": "small"})
        doc["config"]["store"] = {"backend": "mongodb", "uri": "mongodb://admin:hunter2@db.example:27017"}
        camp.db.campaigns.update(doc, key="name")
    with TestClient(create_app(StoreConfig(path="htflow-data"))) as c:
        text = c.get("/api/campaigns/small").text + c.get("/api/campaigns").text
    assert "hunter2" not in text and "admin" not in text
    from htflow.cli import main  # nor by the command line, in any format

    for fmt in ("json", "table", "csv"):
        main(["query", "--collection", "campaigns", "--format", fmt, "--fields", "name,config.store"])
        out = capsys.readouterr().out
        assert "db.example" in out and "hunter2" not in out and "admin" not in out


@pytest.fixture
def own_client(client):
    """A client of its own: the shared one's connection is closed between tests (conftest's close_all)."""
    with TestClient(create_app(StoreConfig(path=client.store))) as c:
        yield c


def test_plots_and_dashboard_page(own_client):
    client = own_client
    r = client.get("/api/campaigns/small/plots/learning-curve.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    assert client.get("/api/campaigns/small/plots/learning-curve.png").content == r.content  # cached
    [c] = client.get("/api/campaigns").json()["data"]
    assert c["plots"] == ["learning-curve", "composition-map", "hull"]  # sobol: no model, no parity plot
    r = client.get("/api/campaigns/small/plots/parity.png")
    assert r.status_code == 404 and "not enough results" in r.json()["error"]
    r = client.get("/api/campaigns/small/plots/secrets.png")
    assert r.status_code == 404 and "plots: learning-curve, composition-map, parity, hull" in r.json()["error"]
    assert client.get("/api/campaigns/nope/plots/parity.png").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "<title>htflow dashboard</title>" in page.text


def test_api_docs_work_offline(client):
    """/api/docs loads Swagger UI from this server (bundled assets), not from a CDN."""
    import re

    page = client.get("/api/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: *'([^']+)'", page.text)
    assets = [u for u in urls if u.endswith((".js", ".css"))]
    assert assets and all(u.startswith("/api/docs-assets/") for u in assets), urls
    for url in assets:
        got = client.get(url)
        assert got.status_code == 200 and len(got.content) > 1000, url
    assert client.get("/api/openapi.json").json()["info"]["title"] == "htflow"
