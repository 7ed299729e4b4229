"""Shared fixtures: every test runs in its own folder and never touches the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import htflow_env, small_campaign_config

#: BoTorch compiles its fused qLogEHVI kernel once per machine (about a minute) into torch's
#: extension cache; the tests share the user's cache instead of compiling it in every fresh HOME
TORCH_EXTENSIONS = os.environ.get("TORCH_EXTENSIONS_DIR") or str(Path.home() / ".cache" / "torch_extensions")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run in a fresh folder with a home and jobflow settings of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOBFLOW_CONFIG_FILE", str(tmp_path / "home" / "jobflow.yaml"))
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", TORCH_EXTENSIONS)
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
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = htflow_env()
    env["OPTIMADE_LOG_DIR"] = str(root / "optimade-logs")
    log = open(root / "serve.log", "w")  # noqa: SIM115 (open for the server's life)
    proc = subprocess.Popen([sys.executable, "-m", "htflow.cli", "serve", "--store", store, "--port", str(port)],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/api/campaigns", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("htflow serve did not start: " + (root / "serve.log").read_text()) from None
            time.sleep(0.2)
    try:
        yield url, store
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
