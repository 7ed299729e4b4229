"""Shared fixtures: every test runs in its own folder and never touches the user's home."""

from __future__ import annotations

import os

import pytest
from helpers import serving, small_campaign_config


def pytest_configure(config):
    """Each test process pins PyTorch's threads before any test uses it (``pin_torch`` must come
    before a process's first inter-op work): a test process that used torch before the EHVI tests
    ran them 25x slower beside another busy process."""
    import importlib.util

    # BoTorch's fused qLogEHVI kernel is compiled (a minute of C++) once per environment: a fresh
    # clone's venv is a new one, so CI compiled it every time inside an EHVI test. Its pure-Python
    # path gives the same numbers; users keep the kernel (HTFLOW_EHVI_FUSED_KERNEL, default true).
    os.environ.setdefault("HTFLOW_EHVI_FUSED_KERNEL", "false")
    if importlib.util.find_spec("torch") is not None and os.environ.get("OMP_NUM_THREADS") == "1":
        from htflow.utils.threads import pin_torch

        pin_torch()

@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run in a fresh folder with a home and jobflow settings of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOBFLOW_CONFIG_FILE", str(tmp_path / "home" / "jobflow.yaml"))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    yield
    from htflow.store.sqlite import close_all

    close_all()


@pytest.fixture
def small_campaign() -> dict:
    """A campaign small enough for seconds of EMT: Cu-Ni-Pd on a 16-atom fcc cell."""
    return small_campaign_config()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """``htflow serve`` as a real process on a free port, over a small campaign and its materials.

    Yields ``(url, store_path)``. Read-only tests share it (the OPTIMADE
    validator and the browser need a live server, not a test client).
    """
    from htflow.analysis.builder import MaterialsBuilder
    from htflow.campaign.loop import Campaign
    from htflow.campaign.validation import parse_config

    root = tmp_path_factory.mktemp("live")
    store = str(root / "htflow-data")
    cfg = small_campaign_config()
    cfg["store"] = store
    camp = Campaign(parse_config(cfg, "test"))
    camp.run()
    with camp.db:
        MaterialsBuilder(camp.db.results, camp.db.materials).build()
    with serving(store, root) as url:
        yield url, store
