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
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, JobStore
from maggma.core import Store

logger = logging.getLogger(__name__)


class DocStore(Store):
    """A maggma ``Store`` over a Python dict: what a unit writes while it runs.

    Lookups by the key fields (``uuid`` [+ ``index``] for job documents,
    ``blob_uuid`` for data blobs) are dictionary lookups; any other filter is
    evaluated by mongomock's filter engine, so query semantics are MongoDB's.
    """

    def __init__(self, key: str = "uuid", **kwargs: Any):
        self._docs: dict[tuple, dict] = {}
        self._by_key: dict[Any, list[dict]] = defaultdict(list)
        super().__init__(key=key, **kwargs)

    @property
    def name(self) -> str:
        return f"docs:{id(self)}"

    def connect(self, force_reset: bool = False) -> None:
        if force_reset:
            self.reset()

    def reset(self) -> None:
        """Forget everything (the documents already handed out are kept by whoever holds them)."""
        self._docs = {}
        self._by_key = defaultdict(list)

    def close(self) -> None:
        pass

    @property
    def _collection(self) -> dict:
        return self._docs

    def docs(self) -> list[dict]:
        """Everything written, in write order."""
        return list(self._docs.values())

    def count(self, criteria: dict | None = None, hint: dict | None = None) -> int:
        return sum(1 for _ in self.query(criteria))

    def update(self, docs: list[dict] | dict, key: list | str | None = None, **kwargs: Any) -> None:
        if isinstance(docs, dict):
            docs = [docs]
        fields = [key] if isinstance(key, str) else list(key or [self.key])
        for doc in docs:
            ident = tuple(doc.get(f) for f in fields)
            old = self._docs.get(ident)
            if old is not None:
                self._by_key[old.get(self.key)].remove(old)
            self._docs[ident] = doc
            self._by_key[doc.get(self.key)].append(doc)

    def query(
        self,
        criteria: dict | None = None,
        properties: dict | list | None = None,
        sort: dict | None = None,
        skip: int = 0,
        limit: int = 0,
        **kwargs: Any,
    ) -> Iterator[dict]:
        criteria = criteria or {}
        own = criteria.get(self.key)
        if isinstance(own, str | int):
            rest = {k: v for k, v in criteria.items() if k != self.key}
            docs = [d for d in self._by_key.get(own, ()) if all(d.get(k) == v for k, v in rest.items())] \
                if all(not isinstance(v, dict) for v in rest.values()) else None
        else:
            docs = None
        if docs is None:
            from mongomock.filtering import filter_applies

            docs = [d for d in self._docs.values() if filter_applies(criteria, d)]
        for name, direction in reversed(list((sort or {}).items())):
            docs.sort(key=lambda d, n=name: (d.get(n) is not None, d.get(n)), reverse=direction < 0)
        docs = docs[skip:]
        if limit:
            docs = docs[:limit]
        if properties:
            yield from self._project(docs, properties)
        else:
            yield from docs

    def distinct(self, field: str, criteria: dict | None = None, all_exists: bool = False) -> list:
        return list({repr(d.get(field)): d.get(field) for d in self.query(criteria)}.values())

    def groupby(self, keys: Any, criteria: Any = None, properties: Any = None, sort: Any = None,
                skip: int = 0, limit: int = 0) -> Iterator:
        """Documents grouped by the values of ``keys`` (dotted paths): ``(group, docs)`` pairs; with
        ``properties``, the documents hold those and the keys (as maggma's stores do)."""
        import pydash

        keys = [keys] if isinstance(keys, str) else list(keys)
        names = [] if not properties else (properties if isinstance(properties, list)
                                           else [p for p, v in properties.items() if v])
        groups: dict[str, tuple[dict, list[dict]]] = {}
        for doc in self.query(criteria, properties=None, sort=sort):
            values = {k: pydash.get(doc, k) for k in keys}
            group = groups.setdefault(repr(sorted(values.items())), ({}, []))
            for k, v in values.items():
                pydash.set_(group[0], k, v)
            group[1].append(doc if not properties else next(self._project([doc], [*names, *keys])))
        items = list(groups.values())[skip:]
        yield from items[:limit] if limit else items

    @staticmethod
    def _project(docs: list[dict], properties: Any) -> Iterator[dict]:
        names = properties if isinstance(properties, list) else [p for p, v in properties.items() if v]
        for d in docs:
            yield {p: d[p] for p in names if p in d}

    def remove_docs(self, criteria: dict) -> None:
        for doc in list(self.query(criteria)):
            for ident, d in list(self._docs.items()):
                if d is doc:
                    del self._docs[ident]
            self._by_key[doc.get(self.key)].remove(doc)

    def ensure_index(self, key: str, unique: bool = False) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


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
    from jobflow.core.reference import OutputReference

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
    from monty.json import MontyDecoder

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


def run_unit(key: str, unit: Flow | Job, extra: Iterable[str] = (), walltime: float | None = None,
             meta: dict | None = None, store: JobStore | None = None) -> UnitResult:
    """Run one flow with jobflow's semantics on a private store; never raises for a job's failure.

    ``store`` (a :func:`scratch_store`) is emptied and reused: maggma adds a
    logging handler to a shared logger for every ``Store`` made, so making
    one per unit grows a list that each new store scans.
    """
    from jobflow.core.reference import OnMissing, find_and_resolve_references

    if store is None:
        store = scratch_store(extra)
    for part in (store.docs_store, *store.additional_stores.values()):
        part.reset()
    stopped_parents: set[str] = set()
    errored: set[str] = set()
    errors: list[str] = []
    stop = False

    def run_job(job: Job, parents: Iterable[str]) -> bool:
        """jobflow.managers.local.run_locally's ``_run_job``, minus logging and folders."""
        nonlocal stop
        if stopped_parents.intersection(parents):
            stopped_parents.add(job.uuid)
            return False
        if errored.intersection(parents) and job.config.on_missing_references == OnMissing.ERROR:
            errored.add(job.uuid)
            return False
        try:
            response = _run_job(job, store)
        except WalltimeExceeded:
            raise
        except Exception:
            errors.append(f"{job.name}: {summarise_error(traceback.format_exc())}")
            errored.add(job.uuid)
            return False
        if response.stop_children:
            stopped_parents.add(job.uuid)
        if response.stop_jobflow:
            stop = True
            return False
        ok = True
        for new in (response.replace, response.detour, response.addition):
            if new is not None:
                ok = run_flow(new) and ok
        return ok

    def run_flow(flow: Flow | Job) -> bool:
        ok = True
        if isinstance(flow, Job):
            ok = run_job(flow, ())
        else:
            for job, parents in flow.iterflow():
                if stop:
                    return False
                ok = run_job(job, parents) and ok
        return ok and not stop

    start = time.perf_counter()
    output, error = None, None
    try:
        with walltime_limit(walltime):
            # not jobflow's get_flow: its check that every reference points inside the flow serialises
            # all jobs to JSON (0.46 ms per trivial job); a reference to a job outside the flow fails
            # when it is resolved instead ("Could not resolve reference"), as a failed job
            finished = run_flow(unit)
        ref = unit.output
        if ref is not None:
            output = find_and_resolve_references(ref, store, on_missing=OnMissing.NONE)
        if not finished:
            error = errors[-1] if errors else "the flow stopped before its last job"
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
    from htflow.executors import pin_threads

    pin_threads(threads)
    store = scratch_store(extra)
    return [run_unit(key, unit, extra, walltime, meta, store) for key, unit, meta in pack]
