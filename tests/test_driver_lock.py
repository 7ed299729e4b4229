"""One driver per campaign: a second `htflow run` of a campaign another live process is running
exits 2 naming it and computes nothing; after a kill -9 of the first, the next run takes the lock
over and finishes, with nothing computed twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from helpers import cli_in_process, htflow_env, small_campaign_config, write_yaml
from test_kill import _results

from htflow.errors import InputError
from htflow.schemas.config import StoreConfig
from htflow.store.db import CampaignDB
from htflow.store.locks import CampaignLocked, DriverLock


@pytest.mark.slow
def test_a_second_driver_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path):
    cfg = small_campaign_config()  # slow enough (32-atom cells) that the first is still running
    cfg["space"]["step"] = 0.125
    cfg["structure"]["n_atoms"] = 32
    cfg["search"] = {"sampler": "sobol", "batch_size": 3, "budget": 15, "seed": 4}
    file = write_yaml(tmp_path / "c.yaml", cfg)
    db = tmp_path / "htflow-data" / "htflow.sqlite"
    cmd = [sys.executable, "-m", "htflow.cli", "run", str(file), "--quiet"]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=htflow_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while len(_results(db)) < 2:
        assert first.poll() is None, first.stderr.read().decode()
        if time.time() > deadline:
            pytest.fail("the first driver made no progress in 300 s")
        time.sleep(0.05)
    second = subprocess.run(cmd, cwd=tmp_path, env=htflow_env(), capture_output=True, text=True, timeout=300)
    assert first.poll() is None, "the first driver finished before the second started; make it slower"
    assert second.returncode == 2
    err = second.stderr.strip().splitlines()
    assert len(err) == 1 and f"is being run by pid {first.pid}" in err[0] and "--force" in err[0], err
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = _results(db)
    assert 2 <= len(before) < 15
    code, out, err = cli_in_process(cmd[3:], cwd=tmp_path)  # the third driver: in this process
    assert code == 0, err
    assert f"took over campaign 'small' from pid {first.pid}" in out
    after = _results(db)
    assert len(after) == 15
    for key, doc in before.items():  # finished work kept, not recomputed
        assert after[key]["created_at"] == doc["created_at"]
    con = sqlite3.connect(db)
    n_rows = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    locks = con.execute("SELECT COUNT(*) FROM locks").fetchone()[0]
    con.close()
    assert n_rows == 15 and locks == 0  # one result per composition; the lock released at the end


def test_a_live_lock_on_another_host_holds_until_its_heartbeat_is_stale(monkeypatch):
    db = CampaignDB(StoreConfig(backend="memory"))
    other = DriverLock(db, "c")
    other.me = {"host": "elsewhere", "pid": 4242, "process_started": 0.0}
    other.acquire()
    mine = DriverLock(db, "c")
    with pytest.raises(CampaignLocked, match="pid 4242 on elsewhere") as exc:
        mine.acquire()
    assert isinstance(exc.value, InputError)  # exit status 2 from the command line
    from htflow.settings import override

    with override(lock_stale_seconds=1e-6):
        time.sleep(0.01)
        mine.acquire()
    assert mine.taken_over["host"] == "elsewhere" and "not been heard from" in mine.taken_over["reason"]
    other.release()  # no longer its lock: nothing happens
    with db:
        assert db.collection("locks").query_one({"name": "c"})["owner"]["pid"] == mine.me["pid"]
    mine.release()
    with db:
        assert db.collection("locks").query_one({"name": "c"}) is None
    forced = DriverLock(db, "c")
    other.acquire()
    forced.acquire(force=True)
    assert forced.taken_over["reason"] == "--force"


def test_two_drivers_taking_over_one_stale_lock_at_once_on_mongodb_one_wins(monkeypatch):
    """The race the embedded store's transaction excludes, on the MongoDB path (mongomock): both
    read the stale lock; the second to write finds its token gone and is told who won."""
    db = CampaignDB(StoreConfig(backend="memory"))
    gone = DriverLock(db, "c")
    gone.me = {"host": "elsewhere", "pid": 4242, "process_started": 0.0}
    gone.acquire()
    slow, fast = DriverLock(db, "c"), DriverLock(db, "c")
    fast.me = {**fast.me, "pid": 77}
    stale = DriverLock.stale

    def fast_wins_meanwhile(self, doc):
        why = stale(self, doc)
        if self is slow:  # between slow's read and slow's write
            fast.acquire(force=True)
        return why

    monkeypatch.setattr(DriverLock, "stale", fast_wins_meanwhile)
    from htflow.settings import override

    with override(lock_stale_seconds=1e-6):
        time.sleep(0.01)
        with pytest.raises(CampaignLocked, match=f"pid 77 on {fast.me['host']}"):
            slow.acquire()
    with db:
        assert db.collection("locks").query_one({"name": "c"})["owner"]["pid"] == 77
    # a new lock: of two drivers that both found none, the unique index lets one insert
    first, second = DriverLock(db, "d"), DriverLock(db, "d")
    first.acquire()
    assert second._swap(None, {"name": "d", "owner": {"pid": 78}, "token": "x"}) is False
