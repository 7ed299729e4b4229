"""The embedded SQLite store: MongoDB semantics (checked against mongomock), persistence, atomicity."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime

import pytest
from maggma.stores import MemoryStore

from htflow.store.filters import check_filter
from htflow.store.query import QueryError
from htflow.store.sqlite import SQLiteStore, close_all

ELS = ["Ag", "Au", "Cu", "Ni", "Pd"]


def _docs(n: int = 400, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "key": f"k{i}",
            "x": rng.random(),
            "n": rng.randint(0, 9),
            "flag": rng.random() < 0.3,
            "status": rng.choice(["done", "failed", None]),
            "elements": sorted(rng.sample(ELS, rng.randint(1, 3))),
            "sub": {"a": rng.randint(0, 3), "tags": rng.sample(["p", "q", "r"], 2)},
            "when": datetime(2026, 1, 1 + i % 28),
            **({"maybe": i} if i % 5 == 0 else {}),
        }
        for i in range(n)
    ]


@pytest.fixture
def pair(tmp_path):
    """The same documents in a SQLiteStore and in maggma's MemoryStore (mongomock)."""
    sql = SQLiteStore(tmp_path / "db.sqlite", "things", key="key")
    mem = MemoryStore(collection_name="things", key="key")
    docs = _docs()
    for store in (sql, mem):
        store.connect()
        for f in ("x", "n", "flag", "status", "elements", "sub.a", "sub.tags", "when"):
            store.ensure_index(f)
        store.update(docs[:200])
        store.update(docs[150:])  # overlapping upserts replace, never duplicate
    return sql, mem


FILTERS = [
    {},
    {"x": {"$gt": 0.5}},
    {"x": {"$gte": 0.2, "$lt": 0.3}},
    {"n": 3},
    {"n": {"$in": [1, 2, 7]}},
    {"n": {"$nin": [1, 2, 7]}},
    {"flag": True},
    {"status": None},
    {"status": {"$ne": "done"}},
    {"status": {"$exists": False}},
    {"maybe": {"$exists": True}},
    {"elements": "Cu"},
    {"elements": {"$all": ["Cu", "Ni"]}},
    {"elements": {"$size": 2}},
    {"elements": ["Au", "Cu"]},
    {"sub.a": 2},
    {"sub.tags": "q", "n": {"$lte": 4}},
    {"$or": [{"elements": "Ag"}, {"n": 0}]},
    {"$or": [{"elements": "Ag"}, {"status": None}]},
    {"$and": [{"x": {"$lt": 0.9}}, {"x": {"$gt": 0.1}}, {"elements": {"$in": ["Pd"]}}]},
    {"when": {"$gt": datetime(2026, 1, 20)}},
    {"key": {"$regex": "^k1[0-9]$"}},
    {"x": {"$not": {"$gt": 0.5}}},
]


@pytest.mark.parametrize("flt", FILTERS, ids=[str(f)[:60] for f in FILTERS])
def test_filters_match_mongomock(pair, flt):
    sql, mem = pair
    assert sorted(d["key"] for d in sql.query(flt)) == sorted(d["key"] for d in mem.query(flt))
    assert sql.count(flt) == mem.count(flt)


@pytest.mark.parametrize(
    ("flt", "sort", "skip", "limit"),
    [
        ({}, {"x": 1}, 0, 10),
        ({}, {"x": -1}, 5, 7),
        ({"elements": "Cu"}, {"n": -1, "x": 1}, 0, 12),
        ({"status": {"$ne": "done"}}, {"x": 1}, 2, 4),
        ({}, {"status": 1, "x": -1}, 0, 30),
    ],
)
def test_sort_skip_limit_projection_match_mongomock(pair, flt, sort, skip, limit):
    sql, mem = pair
    got = list(sql.query(flt, properties=["key", "sub.a"], sort=sort, skip=skip, limit=limit))
    want = [
        {k: v for k, v in d.items() if k != "_id"}
        for d in mem.query(flt, properties=["key", "sub.a"], sort=sort, skip=skip, limit=limit)
    ]
    assert got == want


def test_upsert_keeps_one_document_per_key_and_compound_keys(tmp_path):
    s = SQLiteStore(tmp_path / "db.sqlite", "jobs", key="uuid")
    s.connect()
    s.update([{"uuid": "a", "index": 1, "v": 1}, {"uuid": "a", "index": 2, "v": 2}], key=["uuid", "index"])
    s.update({"uuid": "a", "index": 1, "v": 10}, key=["uuid", "index"])
    assert s.count() == 2
    assert s.query_one({"uuid": "a", "index": 1})["v"] == 10
    assert sorted(s.distinct("index")) == [1, 2]


def test_persists_across_processes_and_reopen(tmp_path):
    path = tmp_path / "db.sqlite"
    code = (
        "from htflow.store.sqlite import SQLiteStore\n"
        f"s = SQLiteStore({str(path)!r}, 'c', key='k'); s.connect()\n"
        "s.ensure_index('v')\n"
        "s.update([{'k': i, 'v': i * i} for i in range(50)])\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    close_all()
    s = SQLiteStore(path, "c", key="k")
    s.connect()
    assert s.count() == 50
    assert s.count({"v": {"$gte": 100}}) == 40
    assert s.query_one({"k": 7})["v"] == 49


def test_transaction_rolls_back_every_collection(tmp_path):
    a = SQLiteStore(tmp_path / "db.sqlite", "a", key="k")
    b = SQLiteStore(tmp_path / "db.sqlite", "b", key="k")
    a.connect()
    b.connect()
    with pytest.raises(RuntimeError), a.transaction():
        a.update({"k": 1})
        b.update({"k": 1})
        raise RuntimeError("crash between writes")
    assert a.count() == 0 and b.count() == 0
    with a.transaction():
        a.update({"k": 2})
        b.update({"k": 2})
    assert a.count() == 1 and b.count() == 1


def test_index_added_later_sees_old_documents(tmp_path):
    s = SQLiteStore(tmp_path / "db.sqlite", "c", key="k")
    s.connect()
    s.update([{"k": i, "tags": ["a", "b"] if i % 2 else "c"} for i in range(10)])
    s.ensure_index("tags")
    assert s.count({"tags": "a"}) == 5
    assert s.count({"tags": "c"}) == 5


def test_jobflow_runs_on_the_store(tmp_path):
    from jobflow import Flow, JobStore, job, run_locally

    @job
    def add(a, b):
        return a + b

    first = add(1, 2)
    second = add(first.output, 4)
    store = JobStore(SQLiteStore(tmp_path / "db.sqlite", "jobs"), additional_stores={})
    run_locally(Flow([first, second]), store=store, log=False)
    assert store.get_output(second.uuid) == 7


@pytest.mark.parametrize(
    "flt",
    [{"$where": "1"}, {"x": {"$function": {}}}, {"$expr": {}}, {"a": {"$accumulator": 1}}, [1], "x",
     {"$or": "nope"}, {"x": {"$in": 3}}],
)
def test_unsafe_or_malformed_filters_refused(flt):
    with pytest.raises(QueryError):
        check_filter(flt)
