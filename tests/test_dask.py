"""The Dask executor on a real LocalCluster: same results, jobflow semantics, dead workers, wall time."""

from __future__ import annotations

import copy
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest
from flowlib import add, die_always, die_once, semantics_flows, spin
from jobflow import Flow, JobStore, run_locally
from maggma.stores import MemoryStore
from monty.json import jsanitize

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.execution.dask_executor import DaskExecutor
from htflow.execution.engine import run_unit, scratch_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    """Two workers, started in a folder of their own (workers keep the cwd they start in)."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("workers"))
    try:
        ex = DaskExecutor(workers=2, threads_per_worker=1, max_attempts=2, announce=lambda line: None)
        ex.start()
    finally:
        os.chdir(here)
    yield ex
    ex.close()


def _store() -> JobStore:
    return scratch_store(("data",))


def _campaign(small_campaign, executor: dict, store: str) -> Campaign:
    cfg = dict(small_campaign)
    cfg["search"] = {"sampler": "surrogate", "batch_size": 4, "budget": 12, "seed": 3,
                     "surrogate": {"initial": 4}}
    cfg.update(executor=executor, store=store)
    return Campaign(parse_config(cfg, "test"))


def test_campaign_gives_the_same_results_on_dask(small_campaign):
    local = _campaign(small_campaign, {"type": "local"}, "local-data")
    local.run()
    lines = []
    dask = _campaign(small_campaign, {"type": "dask", "workers": 2}, "dask-data")
    dask.executor.announce = lines.append
    doc = dask.run()
    ours = {r["key"]: r["energy_per_atom"] for r in dask.results()}
    theirs = {r["key"]: r["energy_per_atom"] for r in local.results()}
    assert len(ours) == 12 and ours == theirs  # same proposals, energies equal to the last bit
    assert doc["stop_reason"] == "budget spent"
    assert any("dashboard http://" in line for line in lines), lines
    with local.db:
        n_local = local.db.job_store().count({"name": "properties"})
    with dask.db:  # job documents were written to the campaign's JobStore by the driver
        assert dask.db.job_store().count({"name": "properties"}) == n_local >= 12


def test_jobflow_semantics_on_workers(executor):
    flows = semantics_flows()
    expected = {}
    for flow in copy.deepcopy(flows):
        res = run_unit(flow.name, flow)
        expected[flow.name] = (res.output, res.error)
    store = _store()
    got = {r.key: (r.output, r.error) for r in executor.run_units([(f.name, f, {}) for f in flows], store)}
    assert got == expected
    assert store.count({"name": "store_inputs"}) >= 1  # the replacement flow's jobs were stored


QUIET = {"final_atoms_object_file": None}  # atomate2 would append every structure to ./final_atoms_object.xyz


def test_atomate2_elastic_flow_equals_run_locally(executor):
    from ase.build import bulk
    from atomate2.ase.jobs import EmtRelaxMaker
    from atomate2.common.flows.elastic import BaseElasticMaker
    from pymatgen.io.ase import AseAtomsAdaptor

    @dataclass
    class EmtElasticMaker(BaseElasticMaker):  # atomate2's elastic workflow with EMT makers
        name: str = "EMT elastic"
        bulk_relax_maker: object = field(default_factory=lambda: EmtRelaxMaker(relax_cell=True, relax_kwargs=QUIET))
        elastic_relax_maker: object = field(default_factory=lambda: EmtRelaxMaker(relax_cell=False,
                                                                                  relax_kwargs=QUIET))

        @property
        def prev_calc_dir_argname(self):
            return None

    structure = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.6))
    flow = EmtElasticMaker().make(structure)
    twin = copy.deepcopy(flow)
    reference = JobStore(MemoryStore())
    run_locally(twin, store=reference, log=False, ensure_success=True)
    expected = reference.get_output(twin.output.uuid)

    store = _store()
    [res] = list(executor.run_units([("elastic", flow, {})], store))
    assert res.ok, res.error
    output = jsanitize(res.output, strict=True, enum_values=True)  # jobflow resolves to the document
    assert output["elastic_tensor"] == expected["elastic_tensor"]
    assert output["derived_properties"] == expected["derived_properties"]
    assert store.get_output(flow.output.uuid)["elastic_tensor"] == expected["elastic_tensor"]
    # the deformation relaxations made at run time (Response(replace=...)) are in the store too
    assert store.count({}) == reference.count({})


def test_many_small_flows_are_packed(executor):
    flows = [add(i, 1) for i in range(3000)]
    executor.tasks_submitted = 0
    results = list(executor.run_units([(str(i), f, {}) for i, f in enumerate(flows)], _store()))
    assert sorted(r.output for r in results) == list(range(1, 3001))
    assert executor.tasks_submitted < 100  # not 3000 scheduler round trips


def test_a_flow_that_kills_its_worker_fails_after_max_attempts(executor):
    units = [("killer", die_always(), {})] + [(f"ok{i}", add(i, 1), {}) for i in range(3)]
    ex = DaskExecutor(pack=4, client=executor.start(), max_attempts=2)
    results = {r.key: r for r in ex.run_units(units, _store())}
    assert set(results) == {"killer", "ok0", "ok1", "ok2"}  # neighbours in its pack still finish
    assert "died 2 time(s)" in results["killer"].error
    assert [results[f"ok{i}"].output for i in range(3)] == [1, 2, 3]


def test_a_worker_that_dies_once_is_replaced(executor, tmp_path):
    units = [("once", die_once(str(tmp_path / "marker"), 42), {})]
    [res] = list(executor.run_units(units, _store()))
    assert res.ok and res.output == 42
    assert (tmp_path / "marker").exists()


def test_walltime_on_a_worker(executor):
    ex = DaskExecutor(client=executor.start(), walltime=1.0)
    a = spin(60)
    units = [("spin", Flow([a], output=a.output), {}), ("quick", add(2, 2), {})]
    start = time.perf_counter()
    results = {r.key: r for r in ex.run_units(units, _store())}
    assert "wall-time limit of 1 s" in results["spin"].error
    assert results["quick"].output == 4
    assert time.perf_counter() - start < 30


def _count_results(path: str) -> int:
    """Results so far, read on a connection of our own (the campaign holds its own)."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_killing_a_worker_mid_job_loses_and_repeats_nothing(small_campaign):
    camp = _campaign(small_campaign, {"type": "dask", "workers": 2}, "kill-data")
    client = camp.executor.start()
    pids = client.run(os.getpid)
    killed = []

    def killer() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if keys and w in pids]
            started = _count_results("kill-data/htflow.sqlite") >= 5
            if busy and started:
                time.sleep(0.2)  # inside the relaxation
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    doc = camp.run()
    thread.join()
    assert killed, "no worker was busy to kill"
    results = camp.results()
    keys = [r["key"] for r in results]
    assert len(keys) == 12 and len(set(keys)) == 12
    assert {r["status"] for r in results} == {"done"}
    assert doc["stop_reason"] == "budget spent"
