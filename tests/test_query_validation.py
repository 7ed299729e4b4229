"""One filter validator for the CLI, the API and the store: the whole tree is walked, every
operator checked wherever it sits, every value bounded, regular expressions run in linear time,
queries stopped at their time budget."""

from __future__ import annotations

import pytest

from htflow.cli import main
from htflow.store.filters import check_filter
from htflow.store.query import QueryError

EXPR = {"$expr": {"$gt": ["$a", 1]}}

BAD = [
    # operators hidden below the top level (the escapes found by an attacker)
    ({"elements": {"$all": [{"$elemMatch": EXPR}]}}, "'$expr' is not allowed"),
    ({"elements": {"$all": [{"$elemMatch": {"$where": "1"}}]}}, "'$where' is not allowed"),
    ({"a": {"$elemMatch": {"b": {"$function": {}}}}}, "'$function' is not allowed"),
    ({"$or": [{"a": 1}, {"b": {"$not": {"$where": "x"}}}]}, "'$where' is not allowed"),
    ({"a": {"$in": [{"$expr": 1}]}}, "'$expr' is not allowed"),
    ({"a": {"b": {"$where": "1"}}}, "'$where' is not allowed"),
    ({"$where": "sleep(1000)"}, "'$where' is not allowed"),
    ({"$gt": 1}, "belongs inside a field's condition"),
    # malformed operator values (tracebacks and 500s before)
    ({"a": {"$regex": "("}}, "missing )"),
    ({"a": {"$regex": 5}}, "$regex must be a string"),
    ({"key": {"$regex": "(a)\\1"}}, "back-references and look-arounds are not supported"),
    ({"key": {"$regex": "a(?=b)"}}, "back-references and look-arounds are not supported"),
    ({"a": {"$regex": "x" * 201}}, "at most 200 characters"),
    ({"a": {"$options": "i"}}, "$options needs $regex"),
    ({"a": {"$regex": "x", "$options": "q"}}, "letters among i, m, s"),
    ({"a": {"$type": "bogus"}}, "unknown type 'bogus'"),
    ({"a": {"$not": 5}}, "$not must be a JSON object"),
    ({"a": {"$elemMatch": 5}}, "$elemMatch must be a JSON object"),
    ({"a": {"$mod": [0, 1]}}, "divisor other than 0"),
    ({"a": {"$mod": 3}}, "[divisor, remainder]"),
    ({"a": {"$size": -1}}, "whole number of at least 0"),
    ({"a": {"$in": 3}}, "$in must be a list"),
    ({"a": 10**30}, "64-bit integer range"),
    ({"a": {"$gt": float("nan")}}, "NaN"),
    ({"a": "x" * 1001}, "longer than 1000 characters"),
    ({"$and": []}, "non-empty list"),
    ({"a": {"$gt": 1, "b": 2}}, "mix of operators and fields"),
    ([1, 2], "must be a JSON object"),
]


@pytest.mark.parametrize(("flt", "words"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_filters_are_refused_naming_the_place(flt, words):
    with pytest.raises(QueryError) as exc:
        check_filter(flt)
    assert words in str(exc.value)
    assert str(exc.value).startswith("filter")


def test_deep_or_large_filters_are_refused():
    deep: dict = {"a": 1}
    for _ in range(20):
        deep = {"$and": [deep]}
    with pytest.raises(QueryError, match="nested deeper than 8 levels"):
        check_filter(deep)
    with pytest.raises(QueryError, match="more than 1000 values"):
        check_filter({"a": {"$in": list(range(2000))}})


GOOD = [
    {}, {"nelements": 2}, {"formation_energy_per_atom": {"$lt": 0, "$gte": -1}},
    {"elements": {"$all": ["Cu", "Ni"]}}, {"elements": {"$all": [{"$elemMatch": {"$eq": "Cu"}}]}},
    {"$or": [{"status": "done"}, {"status": {"$in": ["failed", "pruned"]}}]},
    {"key": {"$regex": "^Cu.*Ni", "$options": "i"}}, {"key": {"$not": {"$regex": "Pd"}}},
    {"key": {"$regex": "(.*.*.*.*)*!"}}, {"key": {"$regex": "(a|aa)+$"}},
    {"structure.sites": {"$size": 32}}, {"error": {"$exists": False}}, {"round": {"$mod": [2, 0]}},
    {"energy": {"$type": ["double", "int"]}}, {"prediction": {"mean": 1.0, "std": 0.1}},
    {"counts": {"$elemMatch": {"$gt": 3}}}, {"pruned": {"$elemMatch": {"reason": "x"}}},
]


@pytest.mark.parametrize("flt", GOOD, ids=[str(i) for i in range(len(GOOD))])
def test_ordinary_filters_pass(flt):
    check_filter(flt)


def test_the_command_line_refuses_an_escape_in_one_line(capsys):
    flt = '{"elements": {"$all": [{"$elemMatch": {"$where": "1"}}]}}'
    with pytest.raises(SystemExit) as exc:
        main(["query", "--filter", flt, "--store", "memory://"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'$where' is not allowed" in err[0] and "Traceback" not in err[0]


def test_the_api_answers_400_with_the_same_message_and_stays_responsive():
    from fastapi.testclient import TestClient

    from htflow.schemas.config import StoreConfig
    from htflow.server.app import create_app

    with TestClient(create_app(StoreConfig(backend="memory"), optimade=False)) as client:
        r = client.get("/api/results", params={"filter": '{"elements": {"$all": [{"$elemMatch": {"$expr": 1}}]}}'})
        assert r.status_code == 400 and "'$expr' is not allowed" in r.json()["error"]
        r = client.get("/api/results", params={"filter": '{"key": {"$regex": "(a)\\\\1"}}'})
        assert r.status_code == 400 and "back-references" in r.json()["error"]
        assert client.get("/api/campaigns").status_code == 200


@pytest.fixture
def keys_store(tmp_path):
    from htflow.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "s.sqlite", "results", key="task_id")
    store.connect()
    keys = ["a" * 40 + "b", "Cu0.5Ni0.5", "cu0.25pd0.75", "Fe\nNi", "aaaa"] + [f"x{i}" for i in range(600)]
    store.update([{"task_id": i, "key": k} for i, k in enumerate(keys)])
    yield store
    store.close()


def test_the_embedded_store_runs_regular_expressions_in_linear_time_with_mongodb_semantics(keys_store):
    def keys(flt):
        check_filter(flt)
        return sorted(d["key"] for d in keys_store.query(flt) if not d["key"].startswith("x"))

    # catastrophic for a backtracking engine (Python's re would not finish these)
    assert keys({"key": {"$regex": "(a|aa)+$"}}) == ["aaaa"]
    assert keys({"key": {"$regex": "(.*.*.*.*)*!"}}) == []
    assert keys_store.count({"key": {"$regex": "^(a+)+$"}}) == 1
    # options, $not and arrays as MongoDB has them
    assert keys({"key": {"$regex": "^cu", "$options": "i"}}) == ["Cu0.5Ni0.5", "cu0.25pd0.75"]
    assert keys({"key": {"$regex": "^cu"}}) == ["cu0.25pd0.75"]
    assert "aaaa" not in keys({"key": {"$not": {"$regex": "^a"}}})
    assert keys({"key": {"$regex": "Fe.Ni"}}) == []  # "." does not match a newline...
    assert keys({"key": {"$regex": "Fe.Ni", "$options": "s"}}) == ["Fe\nNi"]  # ...unless asked


def test_a_query_stops_at_its_time_budget(keys_store):
    from htflow.store.limits import query_budget

    flt = {"key": {"$regex": "^x"}}
    assert keys_store.count(flt) == 600
    with query_budget(0.0), pytest.raises(QueryError, match="time budget"):
        keys_store.count(flt)
    with query_budget(60.0):
        assert len(list(keys_store.query(flt))) == 600
