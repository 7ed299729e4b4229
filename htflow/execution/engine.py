"""Run jobflow flows as units of work on any worker, and bring their documents back.

A *unit* is one top-level jobflow ``Flow`` (or ``Job``) — for a campaign, the
evaluation flow of one candidate. :func:`run_unit` runs a unit with jobflow's
own semantics (``Job.run`` resolves references and stores outputs; ``Response``
``replace`` / ``addition`` / ``detour`` / ``stop_children`` / ``stop_jobflow``
are honoured exactly as ``jobflow.run_locally`` honours them) against a
private in-memory :class:`DocStore`, and returns every job document it wrote.
Whoever receives the documents writes them to the real ``JobStore``: a worker
never touches the campaign's store, so the embedded SQLite file has one
writer however many workers run.

``run_locally`` itself is not used on workers because its per-call set-up
(folder handling, a flow graph per call, a MongoDB emulator as store) costs
more than a trivial job (0.64 ms per one-job call against 0.15 ms for
``Job.run``; see docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, JobStore
from jobflow.core.reference import OnMissing, OutputReference, find_and_resolve_references
from monty.json import MontyDecoder

from htflow.execution.docstore import DocStore
from htflow.utils.threads import pin_threads

logger = logging.getLogger(__name__)


def scratch_store(extra: Iterable[str] = ()) -> JobStore:
    """A fresh in-memory JobStore with additional stores of these names (e.g. ``data``)."""
    return JobStore(DocStore("uuid"), additional_stores={n: DocStore("blob_uuid") for n in extra})


def write_documents(store: JobStore, docs: dict[str, list[dict]]) -> None:
    """Write what units returned into the real JobStore (the one writer)."""
    if docs.get("docs"):
        store.docs_store.update(docs["docs"], key=["uuid", "index"])
    for name, blobs in docs.items():
        if name != "docs" and blobs:
            store.additional_stores[name].update(blobs, key="blob_uuid")


# -- wall-time limits ------------------------------------------------------------
class WalltimeExceeded(BaseException):
    """Raised inside a job that ran past its wall-time limit.

    A ``BaseException``, so library code that catches ``Exception`` cannot
    swallow it.
    """


@contextlib.contextmanager
def walltime_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt this thread with :class:`WalltimeExceeded` after ``seconds``.

    The exception is delivered at the next Python bytecode boundary (ASE
    calculators, ML potentials between torch calls, custodian's monitoring
    loop). Time spent inside one long C call (a blocking ``subprocess.wait``
    with no timeout) is interrupted only when it returns; DFT codes are
    limited by custodian's own wall-time handling.
    """
    if not seconds:
        yield
        return
    tid = threading.get_ident()
    lock = threading.Lock()
    state = {"active": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["active"]:
                state["fired"] = True
                exc = ctypes.py_object(WalltimeExceeded)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), exc)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["active"] = False
            timer.cancel()
        # the exception may have been set but not yet raised: clear it here, not later
        if state["fired"]:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)


# -- reference resolution -------------------------------------------------------------
_SCALARS = (str, int, float, bool, type(None))
_FALLBACK = object()


def _resolve_plain(arg: Any, job: Job, store: JobStore, cache: dict) -> Any:
    """``arg`` with its references resolved, when it is built of containers, scalars and references.

    Returns ``_FALLBACK`` for anything else (an MSONable, an array...), which
    jobflow's own resolver then handles. For plain arguments the result is
    what jobflow's ``find_and_resolve_references`` gives: the argument itself
    when it holds no reference, else its JSON form with the references
    replaced and then decoded. jobflow finds references by serialising every
    argument to JSON and searching it, which cost 0.35 ms of the 0.58 ms a
    trivial chained job took; this walk costs microseconds.
    """

    found = False

    def walk(x: Any) -> Any:
        nonlocal found
        if isinstance(x, OutputReference):
            found = True
            return x.resolve(store, cache=cache, on_missing=job.config.on_missing_references)
        if isinstance(x, _SCALARS):
            return x
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x) or x.get("@class") == "OutputReference":
                raise TypeError
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v) for v in x]
        raise TypeError

    if isinstance(arg, OutputReference):
        return arg.resolve(store, cache=cache, on_missing=job.config.on_missing_references)
    if isinstance(arg, _SCALARS):
        return arg
    try:
        out = walk(arg)
    except TypeError:
        return _FALLBACK
    if not found:
        return arg

    return MontyDecoder().process_decoded(out)


def _run_job(job: Job, store: JobStore) -> Any:
    """``job.run(store)``, resolving plain arguments' references here (see :func:`_resolve_plain`)."""
    if job.config.resolve_references is not True:
        return job.run(store=store)
    cache: dict = {}
    args = [_resolve_plain(a, job, store, cache) for a in job.function_args]
    kwargs = {k: _resolve_plain(v, job, store, cache) for k, v in job.function_kwargs.items()}
    if any(a is _FALLBACK for a in args) or any(v is _FALLBACK for v in kwargs.values()):
        return job.run(store=store)  # jobflow resolves everything itself
    job.function_args, job.function_kwargs = tuple(args), kwargs
    job.config.resolve_references = False
    try:
        return job.run(store=store)
    finally:
        job.config.resolve_references = True


# -- running one unit ----------------------------------------------------------------
@dataclass
class UnitResult:
    """What one unit produced: its output, the error if it failed, and its documents."""

    key: str
    output: Any
    error: str | None
    seconds: float
    docs: dict[str, list[dict]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def summarise_error(text: str) -> str:
    """The last line of a traceback (the exception and its message)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "unknown error"


class _Runner:
    """jobflow.managers.local.run_locally's job loop, minus logging and folders, on ``store``."""

    def __init__(self, store: JobStore):
        self.store = store
        self.stopped_parents: set[str] = set()
        self.errored: set[str] = set()
        self.errors: list[str] = []
        self.stop = False

    def job(self, job: Job, parents: Iterable[str]) -> bool:
        """Run one job (and what its ``Response`` adds); False when it or a child failed or stopped."""
        if self.stopped_parents.intersection(parents):
            self.stopped_parents.add(job.uuid)
            return False
        if self.errored.intersection(parents) and job.config.on_missing_references == OnMissing.ERROR:
            self.errored.add(job.uuid)
            return False
        try:
            response = _run_job(job, self.store)
        except WalltimeExceeded:
            raise
        except Exception:
            self.errors.append(f"{job.name}: {summarise_error(traceback.format_exc())}")
            self.errored.add(job.uuid)
            return False
        if response.stop_children:
            self.stopped_parents.add(job.uuid)
        if response.stop_jobflow:
            self.stop = True
            return False
        ok = True
        for new in (response.replace, response.detour, response.addition):
            if new is not None:
                ok = self.flow(new) and ok
        return ok

    def flow(self, flow: Flow | Job) -> bool:
        """Run every job of ``flow`` in order; False when one failed or the flow was stopped."""
        ok = True
        if isinstance(flow, Job):
            ok = self.job(flow, ())
        else:
            for job, parents in flow.iterflow():
                if self.stop:
                    return False
                ok = self.job(job, parents) and ok
        return ok and not self.stop


def run_unit(key: str, unit: Flow | Job, extra: Iterable[str] = (), walltime: float | None = None,
             meta: dict | None = None, store: JobStore | None = None) -> UnitResult:
    """Run one flow with jobflow's semantics on a private store; never raises for a job's failure.

    ``store`` (a :func:`scratch_store`) is emptied and reused: maggma adds a
    logging handler to a shared logger for every ``Store`` made, so making
    one per unit grows a list that each new store scans.
    """

    if store is None:
        store = scratch_store(extra)
    for part in (store.docs_store, *store.additional_stores.values()):
        part.reset()
    runner = _Runner(store)
    start = time.perf_counter()
    output, error = None, None
    try:
        with walltime_limit(walltime):
            # not jobflow's get_flow: its check that every reference points inside the flow serialises
            # all jobs to JSON (0.46 ms per trivial job); a reference to a job outside the flow fails
            # when it is resolved instead ("Could not resolve reference"), as a failed job
            finished = runner.flow(unit)
        ref = unit.output
        if ref is not None:
            output = find_and_resolve_references(ref, store, on_missing=OnMissing.NONE)
        if not finished:
            error = runner.errors[-1] if runner.errors else "the flow stopped before its last job"
    except WalltimeExceeded:
        error = f"WalltimeExceeded: the flow ran past its wall-time limit of {walltime:g} s"
    except Exception:
        error = summarise_error(traceback.format_exc())
    docs = {"docs": store.docs_store.docs()}
    for name, blobs in store.additional_stores.items():
        docs[name] = blobs.docs()
    return UnitResult(key, output, error, time.perf_counter() - start, docs, meta or {})


def run_pack(pack: list[tuple[str, Flow | Job, dict]], extra: Iterable[str] = (),
             walltime: float | None = None, threads: int = 1) -> list[UnitResult]:
    """Run several units one after another (one Dask task); each fails or succeeds on its own."""

    pin_threads(threads)
    store = scratch_store(extra)
    return [run_unit(key, unit, extra, walltime, meta, store) for key, unit, meta in pack]
