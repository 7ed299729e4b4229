"""The Dask executor: evaluation flows on a LocalCluster, a running scheduler or SLURM/PBS.

- **Where**: a ``LocalCluster`` (one single-threaded worker process per core
  by default, for CPU-bound calculations), an existing scheduler
  (``address: tcp://host:8786``), or a dask-jobqueue cluster described by a
  file (``cluster: cluster/slurm.yaml``), scaled adaptively between
  ``minimum_jobs`` and ``maximum_jobs``.
- **What travels**: each Dask task is a *pack* of whole flows run by
  :func:`htflow.execution.engine.run_pack`. Workers return job documents; the driver
  writes them (the one writer of an embedded store).
- **Packing**: the first tasks carry one flow each; from then on a pack holds
  as many flows as fit in ``pack_seconds`` of measured work per flow, so
  thousands of sub-second jobs cost a handful of scheduler round trips and a
  relaxation of minutes still goes one per task.
- **Failures**: if a worker dies, Dask reruns its task elsewhere. A pack that
  keeps killing workers is split into single flows; a flow that kills
  workers ``max_attempts`` times is a failed result with that reason.
  ``walltime`` limits each flow (:func:`htflow.execution.engine.walltime_limit`).
- **Threads**: workers start with BLAS/OpenMP variables set to their thread
  count and pin thread pools with threadpoolctl.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import cloudpickle
import dask
import distributed
from distributed.diagnostics.plugin import WorkerPlugin
from jobflow import JobStore

from htflow.errors import CampaignError
from htflow.execution.base import EvalTask, Outcome, to_outcome
from htflow.execution.cluster_file import JOBQUEUE_CLASSES, load_cluster_file
from htflow.execution.engine import UnitResult, run_pack, write_documents
from htflow.utils.threads import THREAD_VARS, pin_threads

logger = logging.getLogger(__name__)

MAX_PACK = 10_000


# -- the executor ---------------------------------------------------------------------------
class DaskExecutor:
    """Run evaluation flows on Dask workers (see the module docstring).

    Parameters
    ----------
    workers
        Worker processes of the LocalCluster (default: one per core).
    threads_per_worker
        Threads per worker; BLAS/OpenMP pools are pinned to this.
    address
        Connect to this scheduler instead of starting a cluster.
    cluster
        A cluster file (``cluster/slurm.yaml``) for dask-jobqueue.
    max_attempts
        Times a flow may be started on a worker that then dies before it is
        recorded as failed.
    walltime
        Seconds a flow may run before it is stopped and recorded as failed.
    pack
        ``"auto"`` (by measured duration) or a fixed number of flows per task.
    pack_seconds
        Work per Dask task that ``auto`` packing aims at.
    announce
        Called with one line when the cluster starts (its dashboard address).
    """

    connect_timeout = 20  # seconds to reach a scheduler given by address

    def __init__(
        self,
        workers: int | None = None,
        threads_per_worker: int = 1,
        address: str | None = None,
        cluster: str | Path | None = None,
        max_attempts: int = 3,
        walltime: float | None = None,
        pack: int | Literal["auto"] = "auto",
        pack_seconds: float = 0.5,
        announce: Callable[[str], None] | None = None,
        client: Any = None,
    ):
        self.workers = workers or os.cpu_count() or 1
        self.threads_per_worker = threads_per_worker
        self.address = address
        self.cluster_file = load_cluster_file(cluster) if cluster else None
        self.cluster_path = cluster
        self.max_attempts = max_attempts
        self.walltime = walltime
        self.pack = pack
        self.pack_seconds = pack_seconds
        self.announce = announce or (lambda line: logger.warning(line))
        self._client = client
        self._own: list[Any] = []
        self.seconds_per_unit: float | None = None
        self._fresh = True
        self.tasks_submitted = 0

    # -- lifecycle --------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        threads = str(self.threads_per_worker)
        return {
            # a task whose worker dies is retried on another until it has killed max_attempts workers
            "distributed.scheduler.allowed-failures": self.max_attempts - 1,
            "distributed.nanny.pre-spawn-environ": dict.fromkeys(THREAD_VARS, threads),
            # one task per thread on a worker: when a worker dies, only the task it was running is
            # suspected (with the default 1.1 a queued neighbour shares the blame)
            "distributed.scheduler.worker-saturation": 1.0,
            # the worker's sampling profiler walks the running thread's stack every 10 ms: it made
            # EMT relaxations (pure Python between numpy calls) 15% slower
            "distributed.worker.profile.enabled": False,
        }

    def start(self) -> Any:
        """Start (or connect to) the cluster; returns the Dask client."""
        if self._client is not None:
            return self._client
        with dask.config.set(self._config()):
            if self.address:
                try:
                    client = distributed.Client(self.address, timeout=f"{self.connect_timeout}s")
                except OSError as exc:
                    raise CampaignError(f"cannot reach the Dask scheduler at {self.address} ({exc}); "
                                        "is `dask scheduler` running there?") from None
                where = f"scheduler {self.address}"
            elif self.cluster_file and self.cluster_file.type != "local":
                import dask_jobqueue  # heavy: only for cluster files

                spec = self.cluster_file
                cls = getattr(dask_jobqueue, JOBQUEUE_CLASSES[spec.type])
                submit = cls.job_cls.submit_command
                if shutil.which(submit) is None:
                    raise CampaignError(f"{self.cluster_path} is a {spec.type} cluster but `{submit}` is not "
                                        "on PATH: run htflow on the cluster's login node")
                cluster = cls(**spec.jobqueue)
                self.threads_per_worker = max(1, cluster._dummy_job.worker_process_threads)
                if spec.adapt is not None:
                    cluster.adapt(minimum_jobs=spec.adapt.minimum_jobs, maximum_jobs=spec.adapt.maximum_jobs)
                else:
                    cluster.scale(jobs=spec.jobs or 1)
                self._own.append(cluster)
                client = distributed.Client(cluster)
                where = f"{spec.type} cluster from {self.cluster_path}"
            else:
                kwargs = dict(self.cluster_file.jobqueue) if self.cluster_file else {}
                kwargs.setdefault("n_workers", self.workers)
                kwargs.setdefault("threads_per_worker", self.threads_per_worker)
                kwargs.setdefault("processes", True)
                kwargs.setdefault("dashboard_address", ":0")
                kwargs.setdefault("silence_logs", logging.ERROR)
                self.threads_per_worker = kwargs["threads_per_worker"]
                with _sigint_ignored():  # workers start with Ctrl-C ignored (inherited through exec)
                    cluster = distributed.LocalCluster(**kwargs)
                self._own.append(cluster)
                client = distributed.Client(cluster)
                where = (f"local cluster of {kwargs['n_workers']} worker(s) x "
                         f"{kwargs['threads_per_worker']} thread(s)")
        local = not self.address and not (self.cluster_file and self.cluster_file.type != "local")
        plugin = _WorkerSetup(self.threads_per_worker, ignore_sigint=local)
        client.register_plugin(plugin, name="htflow-setup")
        self._own.insert(0, client)
        self._client = client
        link = client.dashboard_link if _has_dashboard(client) else "no dashboard (install bokeh)"
        self.announce(f"Dask: {where}; dashboard {link}")
        return client

    def close(self) -> None:
        """Stop what this executor started (not a scheduler it connected to)."""
        for obj in self._own:
            try:
                obj.close()
            except Exception:  # closing a dead cluster must not hide the real error
                logger.debug("closing %s failed", obj, exc_info=True)
        self._own = []
        self._client = None

    def __enter__(self) -> DaskExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def nthreads(self) -> int:
        """Threads the cluster has now (at least one, so packing never divides by zero)."""
        try:
            return max(1, sum(self.start().nthreads().values()))
        except Exception:
            return max(1, self.workers * self.threads_per_worker)

    # -- packing ----------------------------------------------------------------------
    def _pack_size(self, remaining: int, threads: int) -> int:
        if self.pack != "auto":
            return int(self.pack)
        if self.seconds_per_unit is None:
            return 1
        size = int(self.pack_seconds / max(self.seconds_per_unit, 1e-6))
        fair = -(-remaining // (2 * threads))  # leave every thread two packs of what is left
        return max(1, min(size, fair, MAX_PACK))

    def _learn(self, results: list[UnitResult]) -> None:
        """Update the seconds-per-flow estimate; a call's first results replace what an earlier
        call (perhaps of other flows) left."""
        if not results:
            return
        per = sum(r.seconds for r in results) / len(results)
        old = None if self._fresh else self.seconds_per_unit
        self.seconds_per_unit = per if old is None else 0.5 * old + 0.5 * per
        self._fresh = False

    # -- running ----------------------------------------------------------------------
    def run_units(self, units: list[tuple[str, Any, dict]], store: JobStore) -> Iterator[UnitResult]:
        """Run ``(key, flow, meta)`` units; write their documents to ``store``; yield results."""
        client = self.start()
        self._fresh = True
        extra = tuple(store.additional_stores)
        queue = deque(units)
        meta = {key: m for key, _, m in units}
        threads = self.nthreads()
        window = 2 * threads
        pending = distributed.as_completed()
        packs: dict[str, list[tuple[str, Any, dict]]] = {}

        def submit(pack: list[tuple[str, Any, dict]]) -> None:
            # pickled here, once: Dask would otherwise walk every job's arguments looking for futures
            payload = cloudpickle.dumps([(k, u, {}) for k, u, _ in pack])
            fut = client.submit(_run_pickled, payload, extra, self.walltime, self.threads_per_worker,
                                pure=False, key=f"htflow-pack-{pack[0][0]}-{time.monotonic_ns()}")
            packs[fut.key] = pack
            pending.add(fut)
            self.tasks_submitted += 1

        def refill() -> None:
            while queue and pending.count() < window:
                n = self._pack_size(len(queue), threads)
                submit([queue.popleft() for _ in range(min(n, len(queue)))])

        refill()
        try:
            for fut in pending:
                pack = packs.pop(fut.key)
                try:
                    results = fut.result()
                except distributed.KilledWorker:
                    results = self._killed(pack, submit)
                except Exception as exc:  # the task itself could not run (unpicklable flow, ...)
                    results = [UnitResult(k, None, f"{type(exc).__name__}: {exc}", 0.0) for k, _, _ in pack]
                finally:
                    fut.release()
                self._learn([r for r in results if r.ok])
                for res in results:
                    write_documents(store, res.docs)
                    res.meta = meta.pop(res.key, {})
                    yield res
                refill()
        finally:
            for fut in list(pending.futures):
                fut.cancel()

    def _killed(self, pack: list, submit: Callable) -> list[UnitResult]:
        """A pack killed its workers ``max_attempts`` times: split it, or fail the single flow."""
        if len(pack) > 1:
            for unit in pack:  # find the culprit: its neighbours get a clean start
                submit([unit])
            return []
        return [UnitResult(pack[0][0], None,
                           f"WorkerDied: the worker running this flow died {self.max_attempts} time(s) "
                           f"(executor.max_attempts = {self.max_attempts})", 0.0)]

    def run(self, tasks: list[EvalTask], store: JobStore) -> Iterator[Outcome]:
        """The Executor interface: one outcome per evaluation task, in completion order."""
        units = [(t.key, t.flow, t.meta) for t in tasks]
        for res in self.run_units(units, store):
            yield to_outcome(res, res.meta)


def _run_pickled(payload: bytes, extra: tuple, walltime: float | None, threads: int) -> list[UnitResult]:

    return run_pack(pickle.loads(payload), extra, walltime, threads)


def _has_dashboard(client: Any) -> bool:
    try:
        import bokeh  # noqa: F401 # heavy: optional, only to know whether a dashboard can be served
    except ImportError:
        return False
    return bool(client.dashboard_link)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while child processes are spawned (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class _WorkerSetup(WorkerPlugin):
    """Worker plugin: limit BLAS/OpenMP/torch thread pools to the worker's threads; for workers of a
    LocalCluster, leave Ctrl-C to the driver.

    A terminal's Ctrl-C reaches every process of its foreground group, local
    workers included; each then printed a KeyboardInterrupt traceback while
    the driver was already shutting them down. Workers restarted after a
    death get this plugin too.
    """

    idempotent = True

    def __init__(self, threads: int, ignore_sigint: bool = False):
        self.threads = threads
        self.ignore_sigint = ignore_sigint

    def setup(self, worker: Any) -> None:
        if self.ignore_sigint and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        pin_threads(self.threads)
        try:  # torch keeps its own pool

            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(self.threads)
        except Exception:
            pass

    def teardown(self, worker: Any) -> None:
        pass
