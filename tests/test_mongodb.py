"""MongoDB stores: the real client path (maggma's MongoStore over pymongo) against mongomock, and an
unreachable server (a closed port) answered by one line, without credentials."""

from __future__ import annotations

import socket
import subprocess
import sys

import mongomock_ng as mongomock  # what maggma itself uses (mongomock proper lags pymongo)
import numpy as np
import pytest
from helpers import cli_in_process, htflow_env, run_cli, small_campaign_config, write_yaml

SECRET = "s3cret-pw"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("argv", "process"), [(["run", "{file}", "--quiet"], False), (["status", "small"], True),
                                             (["query"], True), (["serve", "--port", "{port}"], False)])
def test_an_unreachable_mongodb_is_one_line_without_the_password(tmp_path, argv, process):
    """As a real process for the quick commands (the timeout from the environment); in this process for
    those whose start is seconds of imports (a campaign's, the server's)."""
    port = _closed_port()
    uri = f"mongodb://alice:{SECRET}@127.0.0.1:{port}/?authSource=admin"
    file = write_yaml(tmp_path / "c.yaml", small_campaign_config())
    argv = [a.replace("{file}", str(file)).replace("{port}", str(_closed_port())) for a in argv]
    if process:
        done = subprocess.run([sys.executable, "-m", "htflow.cli", *argv, "--store", uri], cwd=tmp_path,
                              env=htflow_env(HTFLOW_MONGO_TIMEOUT_SECONDS="1"), capture_output=True, text=True,
                              timeout=120)
        code, out, err = done.returncode, done.stdout, done.stderr
    else:
        from htflow.settings import override

        with override(mongo_timeout_seconds=1):
            code, out, err = cli_in_process([*argv, "--store", uri], cwd=tmp_path)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines == [f"error: cannot reach MongoDB at 127.0.0.1:{port} within 1 s; check that the server runs, the "
                     "URI and the network (HTFLOW_MONGO_TIMEOUT_SECONDS to wait longer)"], err
    assert SECRET not in out + err
    assert not (tmp_path / "htflow-data").exists()


@pytest.fixture
def mongo(monkeypatch):
    """pymongo's client swapped for mongomock's (one server's data), under maggma's MongoStore."""
    import maggma.stores.mongolike as mongolike
    from mongomock_ng.store import ServerStore

    class Client(mongomock.MongoClient):
        def close(self) -> None:  # a real server keeps its data when a client goes (mongomock clears it)
            self._closed = True

    import maggma.stores.gridfs as maggma_gridfs
    from mongomock_ng.gridfs import enable_gridfs_integration

    enable_gridfs_integration()  # GridFS buckets on mongomock's databases
    server = ServerStore()  # one server's data; each store opens (and closes) a client of its own
    monkeypatch.setattr(mongolike, "MongoClient", lambda *a, **k: Client(_store=server))
    monkeypatch.setattr(maggma_gridfs, "MongoClient", lambda *a, **k: Client(_store=server))
    return Client(_store=server)


def test_a_campaign_on_mongodb_keeps_the_password_out_of_everything(mongo, tmp_path, monkeypatch, capsys):
    from fastapi.testclient import TestClient

    from htflow.schemas.config import StoreConfig
    from htflow.server.app import create_app

    monkeypatch.chdir(tmp_path)
    uri = f"mongodb://alice:{SECRET}@db.example:27017/?authSource=admin"
    cfg = {**small_campaign_config(), "store": uri}
    code, out, err = run_cli(["run", str(write_yaml(tmp_path / "c.yaml", cfg)), "--quiet"], capsys)
    assert code == 0, err
    assert "6 computed now" in out and "db.example" in out
    assert mongo["htflow"]["results"].count_documents({"campaign": "small"}) == 6
    for argv in (["status", "small"], ["query", "--collection", "campaigns", "--format", "json"],
                 ["export", "small", "--format", "csv"], ["report", "small"]):
        code, out, err = run_cli([*argv, "--store", uri], capsys)
        assert code == 0, err
        assert SECRET not in out + "".join(err)
    stored = mongo["htflow"]["campaigns"].find_one({"name": "small"})
    assert SECRET not in str(stored)
    api = TestClient(create_app(StoreConfig(backend="mongodb", uri=uri), optimade=False))
    for path in ("/api/campaigns", "/api/campaigns/small", "/", "/api/results?limit=3"):
        page = api.get(path)
        assert page.status_code == 200 and SECRET not in page.text, path


def test_a_document_over_the_mongodb_limit_keeps_its_large_fields_in_gridfs(mongo, monkeypatch):
    """A result over the limit (a trajectory of a big cell, say) is stored under it: its large field
    in GridFS, a reference in its place; every read gets the whole document back, and rewriting it
    replaces the blob instead of adding one. (The limit is lowered to 1 MiB here, so the document
    is 2 MB rather than the 18 MB that needs it against MongoDB's 16 MiB: the same path, seconds
    less.)"""
    import bson

    import htflow.store.large as large
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    monkeypatch.setattr(large, "LIMIT_BYTES", 1024 * 1024)
    rng = np.random.default_rng(0)
    frames = rng.random((80, 1000, 3)).round(6).tolist()  # 80 frames of 1000 positions: ~2 MB of JSON
    doc = {"campaign": "big", "key": "Cu1", "status": "done", "energy_per_atom": -3.5, "trajectory": frames,
           "structure": {"sites": [[0.0, 0.0, 0.0]] * 10}}
    with CampaignDB(StoreConfig(backend="mongodb", uri="mongodb://db.example:27017")).connect() as db:
        db.results.update([doc], key=["campaign", "key"])
        raw = mongo["htflow"]["results"].find_one({"key": "Cu1"})
        assert len(bson.encode(raw)) < 64 * 1024  # what the server holds: far under the limit
        assert set(raw["trajectory"]) == {"@gridfs"} and raw["structure"] == doc["structure"]
        back = db.results.query_one({"key": "Cu1"})
        assert back["trajectory"] == frames and back["energy_per_atom"] == -3.5
        assert db.results.query_one({"energy_per_atom": {"$lt": 0}}, ["key", "trajectory"])["trajectory"] == frames
        db.results.update([{**doc, "energy_per_atom": -3.6}], key=["campaign", "key"])
        assert mongo["htflow"]["results_blobs.files"].count_documents({}) == 1
        assert db.results.query_one({"key": "Cu1"})["energy_per_atom"] == -3.6


def test_small_documents_are_stored_as_they_are(mongo):
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    doc = {"campaign": "c", "key": "Cu1", "structure": {"sites": list(range(1000))}}
    with CampaignDB(StoreConfig(backend="mongodb", uri="mongodb://db.example:27017")).connect() as db:
        db.results.update([doc], key=["campaign", "key"])
    assert mongo["htflow"]["results"].find_one({"key": "Cu1"})["structure"] == doc["structure"]
    assert "results_blobs.files" not in mongo["htflow"].list_collection_names()
