"""``htflow import --mp``: Materials Project entries through MP's API, against a server on loopback
answering with a response in MP's shape (tests/data/mp-summary-Fe-Ni.json): no network."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from helpers import ROOT, run_cli

RECORDED = json.loads((ROOT / "tests" / "data" / "mp-summary-Fe-Ni.json").read_text())
KEY = "k" * 32


class MP(BaseHTTPRequestHandler):
    """The summary endpoint: checks the key, pages by _skip/_limit (at most 2 per page, as a server
    may cap pages below what was asked)."""

    requests: ClassVar[list[dict]] = []

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        MP.requests.append({"path": url.path, "key": self.headers.get("X-API-KEY"), **params})
        if self.headers.get("X-API-KEY") != KEY:
            return self._answer(401, {"detail": "invalid api key"})
        if url.path != "/materials/summary/":
            return self._answer(404, {"detail": "not found"})
        skip, limit = int(params.get("_skip", 0)), min(2, int(params.get("_limit", 1000)))
        data = RECORDED["data"] if params.get("chemsys") == "Fe-Ni" else []
        return self._answer(200, {"data": data[skip:skip + limit], "meta": {**RECORDED["meta"],
                                                                           "total_doc": len(data)}})

    def _answer(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def mp_server(monkeypatch, tmp_path):
    from htflow import settings

    server = ThreadingHTTPServer(("127.0.0.1", 0), MP)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HTFLOW_MP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setattr(settings, "_current", None)
    monkeypatch.chdir(tmp_path)
    MP.requests = []
    yield server
    server.shutdown()
    settings._current = None


def _imported() -> dict[str, dict]:
    from htflow.schemas.config import StoreConfig
    from htflow.schemas.documents import IMPORTED
    from htflow.store.db import CampaignDB

    with CampaignDB(StoreConfig()) as db:
        return {d["provider_id"]: d for d in db.collection(IMPORTED).query({"campaign": "mp-feni"})}


def test_materials_project_entries_are_imported_page_by_page(mp_server, capsys):
    code, out, err = run_cli(["import", "--mp", "Ni-Fe", "-c", "mp-feni"], capsys)
    assert code == 0, err
    assert "5 entries fetched, 4 imported into 'mp-feni', 0 already there, 1 without a composition" in out
    pages = [r for r in MP.requests if r["path"] == "/materials/summary/"]
    assert [int(r["_skip"]) for r in pages] == [0, 2, 4]
    assert all(r["key"] == KEY and r["chemsys"] == "Fe-Ni" for r in pages)
    assert set(pages[0]["_fields"].split(",")) >= {"material_id", "composition_reduced",
                                                   "formation_energy_per_atom", "energy_above_hull"}
    docs = _imported()
    assert sorted(docs) == ["mp-13", "mp-1418", "mp-2213", "mp-23"]
    feni3 = docs["mp-2213"]
    assert feni3["key"] == "Fe0.25Ni0.75" and feni3["formula"] == "FeNi3"
    assert feni3["properties"] == {"formation_energy_per_atom": -0.1, "e_above_hull": 0.0, "band_gap": 0.0,
                                   "energy_per_atom": -6.55, "density": 8.7,
                                   "volume_per_atom": pytest.approx(43.9 / 4)}
    assert feni3["source"] == "Materials Project API" and feni3["fidelity"] == "database"
    code, out, _ = run_cli(["import", "--mp", "Fe-Ni", "-c", "mp-feni"], capsys)
    assert code == 0 and "0 imported into 'mp-feni', 4 already there" in out


def test_materials_project_errors_are_one_line(mp_server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MP_API_KEY", "wrong")
    code, out, err = run_cli(["import", "--mp", "Fe-Ni", "-c", "mp-feni"], capsys)
    assert code == 2 and not out
    assert err == ["error: --mp: the Materials Project refused the API key (HTTP 401); set MP_API_KEY to your "
                   "Materials Project API key (https://next-gen.materialsproject.org/api)"]
    monkeypatch.delenv("MP_API_KEY")
    code, _, err = run_cli(["import", "--mp", "Fe-Ni", "-c", "mp-feni"], capsys)
    assert code == 2 and err[0].startswith("error: --mp: no API key; set MP_API_KEY")
    code, _, err = run_cli(["import", "--mp", "Fe-Xx", "-c", "mp-feni"], capsys)
    assert code == 2 and err == ["error: --mp: 'Fe-Xx' is not a chemical system; give elements joined by '-' "
                                 "(exactly these, e.g. Fe-Ni) or ',' (at least these, e.g. Fe,Ni)"]
    code, _, err = run_cli(["import", "x.csv", "--mp", "Fe-Ni", "-c", "mp-feni"], capsys)
    assert code == 2 and "give one source" in err[0]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    from htflow import settings

    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("HTFLOW_MP_ENDPOINT", f"http://127.0.0.1:{closed}")
    monkeypatch.setattr(settings, "_current", None)
    code, _, err = run_cli(["import", "--mp", "Fe-Ni", "-c", "mp-feni"], capsys)
    assert code == 2 and err == [f"error: --mp: cannot reach http://127.0.0.1:{closed}/materials/summary/; check "
                                 "the network (or HTFLOW_MP_ENDPOINT)"]
    assert not (tmp_path / "htflow-data").exists()  # nothing written, not even an empty store
