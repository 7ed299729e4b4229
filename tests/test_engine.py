"""The engine runs flows with jobflow's own semantics: compared job by job with run_locally."""

from __future__ import annotations

import copy
import re
import time

import pytest
from flowlib import add, nested_reference_flow, semantics_flows, spin
from jobflow import Flow, JobStore, run_locally
from maggma.stores import MemoryStore

from htflow.execution.engine import DocStore, run_unit, scratch_store, walltime_limit, write_documents

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _outputs(store: JobStore) -> list[tuple]:
    """Each document as (name, index, output, depth of hosts): jobs made at run time get new uuids."""
    docs = store.query({}, ["name", "index", "output", "hosts"])
    return sorted((d["name"], d["index"], UUID.sub("U", repr(d["output"])), len(d["hosts"])) for d in docs)


def _static(store: JobStore, flow: Flow) -> dict:
    """Documents of the jobs the flow had before it ran, by uuid."""
    uuids = [j.uuid for j in flow.jobs]
    docs = store.query({"uuid": {"$in": uuids}})
    return {(d["uuid"], d["index"]): UUID.sub("U", repr(d["output"])) for d in docs}


@pytest.mark.parametrize("which", range(6))
def test_run_unit_writes_what_run_locally_writes(which):
    flow = semantics_flows()[which]
    twin = copy.deepcopy(flow)  # same uuids: documents compare one to one
    reference = JobStore(MemoryStore())
    responses = run_locally(twin, store=reference, log=False)

    res = run_unit("k", flow)
    ours = JobStore(MemoryStore())
    ours.connect()
    write_documents(ours, res.docs)

    assert _outputs(ours) == _outputs(reference)
    assert _static(ours, flow) == _static(reference, twin)
    ok = all(responses.get(j.uuid) for j in twin.jobs)
    if flow.name in ("failure", "stop_children"):
        assert not ok and not res.ok
    else:
        assert ok and res.ok, res.error
        last = reference.get_output(twin.output.uuid)
        assert res.output == last
    expected = {"chain": 6, "replace": 7, "detour": 6, "addition": 15, "stop_children": 1}
    if flow.name in expected:
        assert res.output == expected[flow.name]
    if flow.name == "failure":
        assert "ValueError: bad input 3" in res.error


def test_references_inside_containers_and_attributes_resolve_as_in_jobflow():
    flow = nested_reference_flow()
    twin = copy.deepcopy(flow)
    reference = JobStore(MemoryStore())
    run_locally(twin, store=reference, log=False, ensure_success=True)
    res = run_unit("k", flow)
    assert res.ok, res.error
    assert res.output == {"c": {"total": 3 + (5 + 2 + 4) * 5, "n_sites": 1}, "d": {"total": 5 + 58 + 1, "n_sites": None}}
    ours = JobStore(MemoryStore())
    ours.connect()
    write_documents(ours, res.docs)
    assert _outputs(ours) == _outputs(reference)


def test_names_and_hosts_kept():
    flow = semantics_flows()[0]
    twin = copy.deepcopy(flow)
    reference = JobStore(MemoryStore())
    run_locally(twin, store=reference, log=False)
    res = run_unit("k", flow)
    keep = ("uuid", "index", "name", "hosts", "metadata", "output")
    ref_docs = sorted(repr({k: d[k] for k in keep}) for d in reference.query({}))
    our_docs = sorted(repr({k: d[k] for k in keep}) for d in res.docs["docs"])
    assert our_docs == ref_docs


def test_additional_stores_receive_their_blobs():
    @__import__("jobflow").job(data="big")
    def make():
        return {"big": list(range(50)), "small": 1}

    j = make()
    res = run_unit("k", j, extra=("data",))
    assert res.ok and len(res.docs["data"]) == 1
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    write_documents(store, res.docs)
    assert store.get_output(j.uuid) == {"big": list(range(50)), "small": 1}


def test_walltime_stops_a_busy_flow_and_nothing_leaks():
    a = spin(30)
    start = time.perf_counter()
    res = run_unit("k", Flow([a], output=a.output), walltime=0.5)
    took = time.perf_counter() - start
    assert not res.ok and "wall-time limit of 0.5 s" in res.error
    assert took < 5
    ok = run_unit("k2", add(1, 2), walltime=0.5)  # the next flow is not hit by a stale exception
    assert ok.ok and ok.output == 3
    time.sleep(0.7)
    with walltime_limit(0.2):  # finishes in time: no exception later
        x = sum(range(1000))
    time.sleep(0.4)
    assert x == 499500


def test_docstore_queries_like_mongo():
    store = DocStore("uuid")
    store.update([{"uuid": "a", "index": 1, "v": 3}, {"uuid": "a", "index": 2, "v": 5},
                  {"uuid": "b", "index": 1, "v": 4}], key=["uuid", "index"])
    store.update({"uuid": "a", "index": 2, "v": 6}, key=["uuid", "index"])
    assert [d["v"] for d in store.query({"uuid": "a"}, sort={"index": -1})] == [6, 3]
    assert [d["uuid"] for d in store.query({"v": {"$gt": 3.5}}, sort={"v": 1})] == ["b", "a"]
    assert store.count({"uuid": "a", "index": 1}) == 1
    assert list(store.query({"uuid": "a"}, properties=["v"], limit=1)) == [{"v": 3}]
    store.remove_docs({"uuid": "b"})
    assert store.count() == 2
    js = scratch_store(("data",))
    assert set(js.additional_stores) == {"data"}


def test_docstore_groupby_equals_maggmas_memory_store():
    from maggma.stores import MemoryStore

    docs = [{"uuid": str(i), "meta": {"kind": k}, "n": n, "v": i}
            for i, (k, n) in enumerate([("a", 1), ("b", 1), ("a", 2), ("a", 1), ("b", 2)])]
    mine, ref = DocStore("uuid"), MemoryStore(key="uuid")
    ref.connect()
    mine.update(docs, key="uuid")
    ref.update(docs, key="uuid")

    def norm(groups):
        return sorted((repr(sorted(pydash_flat(g).items())), sorted(d["uuid"] for d in ds)) for g, ds in groups)

    for keys in ("n", ["meta.kind", "n"]):
        assert norm(mine.groupby(keys, properties=["uuid"])) == norm(ref.groupby(keys, properties=["uuid"]))
    crit = {"meta.kind": "a"}
    assert norm(mine.groupby("n", criteria=crit, properties=["uuid"])) == norm(
        ref.groupby("n", criteria=crit, properties=["uuid"]))
    [picked] = [docs for g, docs in mine.groupby("n", properties=["v"]) if g == {"n": 2}]
    assert sorted(d["v"] for d in picked) == [2, 4] and all(set(d) == {"v", "n"} for d in picked)
    assert {d["uuid"] for _, members in mine.groupby("n") for d in members} == {d["uuid"] for d in docs}


def pydash_flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(pydash_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_a_reference_outside_the_flow_is_a_failed_job():
    outside = add(1, 1)
    inner = add(outside.output, 1)
    res = run_unit("k", Flow([inner], output=inner.output))
    assert not res.ok and "Could not resolve reference" in res.error
