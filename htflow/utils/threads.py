"""Thread pinning: one BLAS/OpenMP thread per worker process unless asked otherwise."""

from __future__ import annotations

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
