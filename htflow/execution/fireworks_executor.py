"""The FireWorks executor: evaluation flows as FireWorks workflows on a LaunchPad.

Each candidate's flow becomes a workflow through jobflow's own FireWorks
manager (:func:`jobflow.managers.fireworks.flow_to_workflow`), tagged with the
campaign and the candidate's key in the workflow metadata. FireWorks workers
(``rlaunch`` / ``qlaunch`` on the cluster, configured by
``cluster/my_launchpad.yaml`` and ``cluster/my_qadapter.yaml``) run the jobs
and write their outputs straight to the campaign's ``JobStore``; the driver
polls the LaunchPad and folds each finished workflow back into the campaign.

- A driver restarted after a crash does not submit a candidate twice: a
  workflow already on the LaunchPad for the same campaign and key is waited
  for, not resubmitted.
- ``rlaunch: true`` makes the driver run FireWorks' ``rapidfire`` itself
  between polls (one machine, tests, a quick look).
- Job outputs are written by the workers, so the store must be reachable from
  them: MongoDB on a cluster; the embedded store only when every worker runs
  on this machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jobflow
from jobflow import JobStore
from jobflow.managers.fireworks import flow_to_workflow

from htflow.errors import CampaignError, InputError
from htflow.execution.base import EvalTask, Outcome
from htflow.execution.engine import summarise_error

logger = logging.getLogger(__name__)

DONE_STATES = {"COMPLETED", "FIZZLED", "DEFUSED"}


def load_launchpad(path: str | Path | None) -> Any:
    """A FireWorks LaunchPad from a ``my_launchpad.yaml`` file (or FireWorks' own search)."""
    try:
        from fireworks import LaunchPad  # heavy: optional package
    except ImportError:
        raise InputError("executor type fireworks needs FireWorks: pip install 'htflow[fireworks]'") from None
    if path is None:
        return LaunchPad.auto_load()
    try:
        return LaunchPad.from_file(str(path))
    except Exception as exc:
        raise InputError(f"{path}: not a usable LaunchPad file ({type(exc).__name__}: {exc})") from None


@contextlib.contextmanager
def _quiet_jobflow() -> Iterator[None]:
    """jobflow's FireWorks task logs every job at INFO to stdout: keep the driver's screen for progress."""

    real = jobflow.initialize_logger
    jobflow.initialize_logger = lambda *a, **k: None
    try:
        yield
    finally:
        jobflow.initialize_logger = real


class FireWorksExecutor:
    """Submit evaluation flows to a LaunchPad and wait for their results.

    Parameters
    ----------
    launchpad
        A ``my_launchpad.yaml`` path, or a ``LaunchPad`` object.
    poll_seconds
        How often the LaunchPad is checked for finished workflows.
    rlaunch
        Run FireWorks' ``rapidfire`` in this process between polls.
    tag
        The campaign name, stored in each workflow's metadata.
    """

    def __init__(self, launchpad: Any = None, poll_seconds: float = 5.0,
                 rlaunch: bool = False, announce: Callable[[str], None] | None = None, tag: str = ""):
        self._launchpad_spec = launchpad
        self._lpad = None if launchpad is None or isinstance(launchpad, str | Path) else launchpad
        self.poll_seconds = poll_seconds
        self.rlaunch = rlaunch
        self.announce = announce or (lambda line: logger.warning(line))
        self.tag = tag
        self._announced = False

    @property
    def launchpad(self) -> Any:
        if self._lpad is None:
            self._lpad = load_launchpad(self._launchpad_spec)
        lpad = self._lpad
        try:
            empty = lpad.fw_id_assigner.count_documents({}) == 0
        except Exception as exc:
            host = re.sub(r"//[^@/]*@", "//***@", str(lpad.host))
            raise CampaignError(f"cannot reach the FireWorks LaunchPad at {host}/{lpad.name} "
                                f"({type(exc).__name__}); check executor.launchpad and that MongoDB "
                                "is up") from None
        if empty:  # a new database: set the id counters, as `lpad reset` would
            lpad.fw_id_assigner.insert_one({"next_fw_id": 1, "next_launch_id": 1})
        return lpad

    def close(self) -> None:
        """Nothing is started here; workers belong to FireWorks."""

    # -- submission ---------------------------------------------------------------
    def _existing(self, key: str) -> dict | None:
        crit = {"metadata.htflow_campaign": self.tag, "metadata.htflow_key": key,
                "state": {"$ne": "DEFUSED"}}
        docs = list(self.launchpad.workflows.find(crit).sort("created_on", -1).limit(1))
        return docs[0] if docs else None

    def _submit(self, task: EvalTask, store: JobStore) -> dict:

        meta = {"htflow_campaign": self.tag, "htflow_key": task.key,
                "htflow_output": task.flow.output.uuid if task.flow.output is not None else None}
        wf = flow_to_workflow(task.flow, store=store, metadata=meta)
        self.launchpad.add_wf(wf)
        return self._existing(task.key)

    # -- results ------------------------------------------------------------------
    def _state(self, wf: dict) -> str:
        return self.launchpad.workflows.find_one({"_id": wf["_id"]}, {"state": 1})["state"]

    def _error(self, wf: dict) -> str:
        lpad = self.launchpad
        for fw in lpad.fireworks.find({"fw_id": {"$in": wf["nodes"]}, "state": "FIZZLED"}):
            for launch_id in reversed(fw.get("launches", [])):
                launch = lpad.launches.find_one({"launch_id": launch_id}) or {}
                exc = (launch.get("action") or {}).get("stored_data", {}).get("_exception", {})
                if exc.get("_stacktrace"):
                    return f"{fw['name']}: {summarise_error(exc['_stacktrace'])}"
        return "the FireWorks workflow fizzled"

    def _seconds(self, wf: dict) -> float:
        launches = self.launchpad.launches.find({"fw_id": {"$in": wf["nodes"]}}, {"runtime_secs": 1})
        return float(sum(doc.get("runtime_secs") or 0.0 for doc in launches))

    def _outcome(self, task: EvalTask, wf: dict, state: str, store: JobStore) -> Outcome:
        seconds = self._seconds(wf)
        if state != "COMPLETED":
            return Outcome(task.key, None, self._error(wf), seconds, task.meta)
        out_uuid = wf["metadata"].get("htflow_output")
        try:
            output = store.get_output(out_uuid, load=True) if out_uuid else None
        except ValueError:
            output = None
        if not isinstance(output, dict):
            return Outcome(task.key, None, "the flow finished without output", seconds, task.meta)
        return Outcome(task.key, output, None, seconds, task.meta)

    def run(self, tasks: list[EvalTask], store: JobStore) -> Iterator[Outcome]:
        """Submit what is not on the LaunchPad yet; yield outcomes as workflows finish."""
        if not tasks:
            return
        lpad = self.launchpad
        if not self._announced:
            where = "running rapidfire here" if self.rlaunch else "waiting for rlaunch/qlaunch workers"
            host = re.sub(r"//[^@/]*@", "//***@", str(lpad.host))  # never print a password
            self.announce(f"FireWorks: LaunchPad {host}/{lpad.name}; {where}")
            self._announced = True
        waiting: dict[str, tuple[EvalTask, dict]] = {}
        for task in tasks:
            wf = self._existing(task.key)
            if wf is None:
                wf = self._submit(task, store)
            waiting[task.key] = (task, wf)
        scratch = tempfile.mkdtemp(prefix="htflow-fw-") if self.rlaunch else None
        while waiting:
            if self.rlaunch:
                from fireworks import FWorker  # heavy: optional (htflow[fireworks])
                from fireworks.core.rocket_launcher import rapidfire  # heavy: optional (htflow[fireworks])

                with contextlib.chdir(os.getcwd()), _quiet_jobflow():  # rapidfire leaves cwd in its folders
                    rapidfire(lpad, FWorker(), m_dir=scratch, nlaunches=0, strm_lvl="ERROR", sleep_time=0)
            for key, (task, wf) in list(waiting.items()):
                state = self._state(wf)
                if state in DONE_STATES:
                    del waiting[key]
                    yield self._outcome(task, wf, state, store)
            if waiting:
                time.sleep(0.05 if self.rlaunch else self.poll_seconds)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
