"""FireWorks: a campaign's flows go through a (mongomock-backed) LaunchPad and come back as results."""

from __future__ import annotations

import mongomock
import pytest
from flowlib import add, fail
from helpers import write_yaml
from jobflow import Flow, JobStore

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.execution.base import EvalTask
from htflow.execution.fireworks_executor import FireWorksExecutor
from htflow.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow


@pytest.fixture
def launchpad(monkeypatch):
    """A real LaunchPad whose MongoDB is mongomock (one shared client, as one server would be)."""
    import fireworks.core.launchpad as lp

    client = mongomock.MongoClient()
    monkeypatch.setattr(lp, "MongoClient", lambda *a, **k: client)
    monkeypatch.setattr(lp, "GRIDFS_FALLBACK_COLLECTION", None)  # gridfs refuses mongomock databases
    return lp.LaunchPad(host="localhost", name="fw_test", strm_lvl="ERROR")


def _config(small_campaign, store, executor):
    cfg = dict(small_campaign)
    cfg["search"] = {"sampler": "sobol", "batch_size": 3, "budget": 6, "seed": 3}
    cfg.update(executor=executor, store=store)
    return parse_config(cfg, "test")


def test_campaign_through_a_launchpad(small_campaign, launchpad, tmp_path):
    local = Campaign(_config(small_campaign, "local-data", {"type": "local"}))
    local.run()
    expected = {r["key"]: r["energy_per_atom"] for r in local.results()}

    lp_file = write_yaml(tmp_path / "my_launchpad.yaml", {"host": "localhost", "name": "fw_test",
                                                          "strm_lvl": "ERROR"})
    fw = {"type": "fireworks", "launchpad": str(lp_file), "rlaunch": True, "poll_seconds": 0.1}
    lines = []
    camp = Campaign(_config(small_campaign, "fw-data", fw), announce=lines.append)
    doc = camp.run()
    got = {r["key"]: r["energy_per_atom"] for r in camp.results()}
    assert len(got) == 6 and got == expected
    assert doc["stop_reason"] == "budget spent"
    assert any("FireWorks: LaunchPad localhost/fw_test" in line for line in lines)
    # every evaluation went through FireWorks, tagged with the campaign and the candidate's key
    wfs = list(launchpad.workflows.find({"metadata.htflow_campaign": "small"}))
    keys = {w["metadata"]["htflow_key"] for w in wfs}
    assert {w["state"] for w in wfs} == {"COMPLETED"}
    assert {"ref:Cu", "ref:Ni", "ref:Pd"} <= keys
    assert {k for k in got if "0." in k} <= keys  # pure elements reuse their reference
    with camp.db:  # the workers wrote the job outputs to the campaign's store
        assert camp.db.job_store().count({"name": "properties"}) == len(wfs)

    # a restarted driver waits for what is on the LaunchPad instead of submitting it again
    n = launchpad.workflows.count_documents({})
    assert Campaign(_config(small_campaign, "fw-data", fw)).run()["stop_reason"] == "budget spent"
    assert launchpad.workflows.count_documents({}) == n


def test_a_fizzled_firework_is_a_failed_outcome_and_not_resubmitted(launchpad, tmp_path):
    store = JobStore(SQLiteStore(tmp_path / "jobs.sqlite", "jobs", key="uuid"))
    store.connect()
    bad = fail(3)
    after = add(bad.output, 1)
    good = add(1, 2)
    tasks = [EvalTask("bad", Flow([bad, after], output=after.output)), EvalTask("good", Flow([good], output=good.output))]
    ex = FireWorksExecutor(launchpad=launchpad, rlaunch=True, tag="t", announce=lambda line: None)
    outcomes = {o.key: o for o in ex.run(tasks, store)}
    assert "fail: ValueError: bad input 3" in outcomes["bad"].error
    assert outcomes["good"].error == "the flow finished without output"  # 3 is not a dict of properties
    assert store.get_output(good.uuid) == 3
    n = launchpad.workflows.count_documents({})
    again = {o.key: o for o in ex.run(tasks, store)}  # same keys: reported from the LaunchPad
    assert again["bad"].error == outcomes["bad"].error
    assert launchpad.workflows.count_documents({}) == n == 2


def test_templates_load():
    import yaml
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter
    from helpers import ROOT

    lp = yaml.safe_load((ROOT / "cluster" / "my_launchpad.yaml").read_text())
    assert lp["uri_mode"] is True and lp["name"] == "fireworks"
    spec = yaml.safe_load((ROOT / "cluster" / "my_qadapter.yaml").read_text())
    assert spec.pop("_fw_name") == "CommonAdapter"
    qa = CommonAdapter(q_type=spec.pop("_fw_q_type"), **spec)
    script = qa.get_script_str(".")
    assert "#SBATCH --time=04:00:00" in script and "rlaunch -l cluster/my_launchpad.yaml rapidfire" in script
