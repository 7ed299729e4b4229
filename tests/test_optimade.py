"""The OPTIMADE endpoint of ``htflow serve``: the package's own validator against a live server,
and entries that equal the store's materials."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from htflow.schemas.config import StoreConfig
from htflow.store.db import CampaignDB

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def materials(store: str) -> list[dict]:
    with CampaignDB(StoreConfig(path=store)).connect() as db:
        return list(db.materials.query({}))


def test_optimade_validator_passes(live_server):
    from optimade.validator import ImplementationValidator

    url, _ = live_server
    for base in (url + "/optimade", url + "/optimade/v1"):
        validator = ImplementationValidator(base_url=base, verbosity=-1, respond_json=True)
        validator.validate_implementation()
        results = validator.results
        assert validator.valid, results.failure_messages
        assert results.failure_count == 0 and results.internal_failure_count == 0
        assert results.success_count >= 40  # every mandatory check ran, structures included


def test_entries_equal_the_store(live_server):
    url, store = live_server
    mats = materials(store)
    assert len(mats) == 6
    status, body = get(url + "/optimade/v1/structures?page_limit=100")
    assert status == 200 and body["meta"]["data_available"] == 6
    assert sorted(e["id"] for e in body["data"]) == sorted(m["material_id"] for m in mats)
    for m in mats:
        status, one = get(url + "/optimade/v1/structures/" + urllib.parse.quote(m["material_id"]))
        a = one["data"]["attributes"]
        assert status == 200
        assert a["nsites"] == m["n_atoms"] == len(m["structure"]["sites"])
        assert a["elements"] == sorted(m["elements"]) and a["nelements"] == m["nelements"]
        assert a["_htflow_energy_per_atom"] == pytest.approx(m["energy_per_atom"], abs=1e-12)
        assert a["_htflow_formation_energy_per_atom"] == pytest.approx(m["formation_energy_per_atom"], abs=1e-12)
        assert a["_htflow_campaign"] == "small" and a["_htflow_calculator"] == "emt"
        assert a["_htflow_e_above_hull"] == pytest.approx(m["e_above_hull"], abs=1e-12)
        site0 = m["structure"]["sites"][0]
        assert a["species_at_sites"][0] == site0["species"][0]["element"]
        assert a["cartesian_site_positions"][0] == pytest.approx(site0["xyz"])


def test_filters_match_a_store_query(live_server):
    url, store = live_server
    mats = materials(store)
    cut = sorted(m["formation_energy_per_atom"] for m in mats)[3]
    flt = f'_htflow_formation_energy_per_atom < {cut} AND elements HAS "Pd"'
    status, body = get(url + "/optimade/v1/structures?" + urllib.parse.urlencode(
        {"filter": flt, "response_fields": "_htflow_formation_energy_per_atom",
         "sort": "_htflow_formation_energy_per_atom"}))
    want = sorted((m for m in mats if m["formation_energy_per_atom"] < cut and "Pd" in m["elements"]),
                  key=lambda m: m["formation_energy_per_atom"])
    assert status == 200
    assert [e["id"] for e in body["data"]] == [m["material_id"] for m in want]
    status, info = get(url + "/optimade/v1/info/structures")
    assert info["data"]["properties"]["_htflow_formation_energy_per_atom"]["unit"] == "eV"


@pytest.mark.parametrize("flt", ['elements HAZ "Cu"', 'nelements < < 2', "nsites >", '" OR 1=1',
                                 "_htflow_energy_per_atom = {$where: 1}"])
def test_bad_optimade_filters_are_400(live_server, flt):
    url, _ = live_server
    status, body = get(url + "/optimade/v1/structures?" + urllib.parse.urlencode({"filter": flt}))
    assert status == 400, body
    assert body["errors"][0]["status"] == "400" and "Traceback" not in json.dumps(body)


def test_new_materials_appear_without_restart(tmp_path):
    """The in-memory copy follows the store: a new ``htflow build`` shows up on the next check."""
    from fastapi.testclient import TestClient

    from htflow.server.app import create_app

    cfg = StoreConfig(path=str(tmp_path / "db"))
    with CampaignDB(cfg).connect() as db:
        db.materials.update([{"material_id": "x", "built_from": "1"}], key="material_id")  # no structure
    app = create_app(cfg, public_url="http://testserver")
    with TestClient(app) as c:
        mirror = app.state.optimade if hasattr(app.state, "optimade") else None
        assert c.get("/optimade/v1/structures").json()["meta"]["data_available"] == 0
        from pymatgen.core import Lattice, Structure

        s = Structure(Lattice.cubic(3.6), ["Cu"] * 4, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
        with CampaignDB(cfg).connect() as db:
            db.materials.update([{"material_id": "Cu1:fcc:4", "built_from": "2", "structure": s.as_dict(),
                                  "energy_per_atom": -0.01, "elements": ["Cu"], "nelements": 1}],
                                key="material_id")
        assert mirror is not None
        mirror.refresh(force=True)
        body = c.get("/optimade/v1/structures").json()
        assert [e["id"] for e in body["data"]] == ["Cu1:fcc:4"]
        assert body["data"][0]["attributes"]["chemical_formula_reduced"] == "Cu"


def test_the_mirror_pages_like_mongomock_without_copying_every_entry():
    import mongomock

    from htflow.server.optimade import _PagedCollection

    coll = mongomock.MongoClient().db.entries
    coll.insert_many([{"id": f"e{i}", "n": i % 5, "big": list(range(50))} for i in range(40)])
    paged = _PagedCollection(coll)
    for kwargs in ({"filter": {"n": {"$gt": 1}}, "projection": {"id": 1, "_id": False}, "skip": 3, "limit": 7,
                    "sort": [("n", -1), ("id", 1)]},
                   {"filter": {}, "projection": {"id": 1, "n": 1}, "limit": 5, "sort": [("id", -1)]},
                   {"filter": {"n": 9}, "projection": None}):
        assert paged.find(**kwargs) == list(coll.find(**kwargs))
    copied = []
    real = mongomock.collection.Collection._copy_only_fields
    mongomock.collection.Collection._copy_only_fields = lambda self, doc, *a: copied.append(
        doc["id"]) or real(self, doc, *a)
    try:
        paged.find({}, {"big": 1}, limit=2)
    finally:
        mongomock.collection.Collection._copy_only_fields = real
    # every entry's _id is projected to choose the page; only the page is copied whole
    assert len(copied) == 40 + 2
