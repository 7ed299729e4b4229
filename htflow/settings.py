"""One settings object for htflow's tunables, read from ``HTFLOW_*`` environment variables.

>>> from htflow.settings import get_settings, override
>>> get_settings().parego_rho
0.05
>>> with override(parego_rho=0.1):
...     get_settings().parego_rho
0.1

Campaign choices (models, budgets, executors) belong in the campaign file;
these are the knobs of the machinery underneath, which a user rarely needs to
turn and which should not be scattered as module constants.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """htflow's tunables; each can be set as ``HTFLOW_<NAME>`` (e.g. ``HTFLOW_MAX_PACK=500``)."""

    model_config = SettingsConfigDict(env_prefix="HTFLOW_", extra="forbid", validate_assignment=True)

    #: default store of commands that take ``--store`` (a folder, mongodb://..., memory://, stores/x.yaml)
    store: str | None = None
    #: BLAS/OpenMP threads per worker process (and the driver)
    threads: Annotated[int, Field(ge=1, le=1024)] = 1
    #: Dask: most evaluation flows packed into one task
    max_pack: Annotated[int, Field(ge=1)] = 10_000
    #: candidates whose predicted probability of a successful calculation is below this are left out
    feasibility_cutoff: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: ParEGO's augmentation weight rho (Knowles 2006)
    parego_rho: Annotated[float, Field(ge=0)] = 0.05
    #: EHVI: quasi-Monte Carlo samples of the posterior per candidate
    ehvi_mc_samples: Annotated[int, Field(ge=1, le=65_536)] = 64
    #: EHVI: let BoTorch compile its fused qLogEHVI kernel (C++, about a minute once per environment,
    #: then the acquisition is some 3x faster); false: its pure-Python path, the same numbers
    ehvi_fused_kernel: bool = True
    #: EHVI: candidates scored per batch (memory against speed)
    ehvi_chunk: Annotated[int, Field(ge=1)] = 1024
    #: largest grid enumerated into a candidate pool (the default of ``space.max_pool``)
    max_pool: Annotated[int, Field(ge=1)] = 500_000
    #: seconds between checks of the materials collection by the OPTIMADE mirror of ``htflow serve``
    optimade_refresh_seconds: Annotated[float, Field(gt=0)] = 5.0
    #: a campaign's driver lock held from another host is taken over when its heartbeat is older
    #: than this (on the same host a dead process is recognised at once)
    lock_stale_seconds: Annotated[float, Field(gt=0)] = 6 * 3600.0
    #: ``htflow serve``: most documents one API request may return
    api_max_limit: Annotated[int, Field(ge=1)] = 1000
    #: ``htflow serve``: seconds one request's queries may run before they are stopped (answered 400)
    api_query_seconds: Annotated[float, Field(gt=0)] = 5.0
    #: MongoDB stores: seconds to find a server before giving up with one line (pymongo's default is 30)
    mongo_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    #: ``htflow import --mp``: the Materials Project API (a mirror, or a recorded one in tests)
    mp_endpoint: str = "https://api.materialsproject.org"


_current: Settings | None = None


def get_settings() -> Settings:
    """The settings in force (read from the environment on first use)."""
    global _current
    if _current is None:
        _current = Settings()
    return _current


@contextlib.contextmanager
def override(**changes: Any) -> Iterator[Settings]:
    """Change settings within a ``with`` block (validated; restored on exit)."""
    global _current
    before = get_settings()
    _current = before.model_copy()
    try:
        for name, value in changes.items():
            setattr(_current, name, value)  # validate_assignment checks each value
        yield _current
    finally:
        _current = before
