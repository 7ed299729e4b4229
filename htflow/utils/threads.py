"""Thread pinning: one BLAS/OpenMP thread per worker process unless asked otherwise."""

from __future__ import annotations

import contextlib
import os

from threadpoolctl import threadpool_limits

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

_PINNED: set[int] = set()


def pin_threads(n: int = 1) -> None:
    """Limit BLAS/OpenMP threads of this process (EMT ran 8-14x slower oversubscribed).

    The environment variables cover libraries loaded later; threadpoolctl
    limits the pools already loaded, once per process (a call scans every
    loaded library: ~10 ms with atomate2 imported).
    """
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(n))
    if n in _PINNED:
        return
    _PINNED.add(n)
    threadpool_limits(n)


def pin_torch() -> None:
    """PyTorch's threads as pinned: intra-op threads from ``OMP_NUM_THREADS`` (torch reads the machine's
    cores instead when imported before the variable is set, as in a Dask worker), and with one thread
    also one inter-op thread. Two test processes each with torch's default two inter-op threads on two
    cores made BoTorch fits 5-25x slower (the EHVI tests: 84 s against 36 s)."""
    import torch  # heavy: optional (htflow[mlip], htflow[bo], htflow[generative])

    want = int(os.environ.get("OMP_NUM_THREADS") or 0)
    if want and torch.get_num_threads() != want:
        torch.set_num_threads(want)
    if want == 1 and torch.get_num_interop_threads() != 1:
        # only possible before the process's first inter-op work
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
