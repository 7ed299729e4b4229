"""Shared fixtures: every test runs in its own folder and never touches the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
    return {
        "name": "small",
        "space": {"elements": ["Cu", "Ni", "Pd"], "step": 0.25, "max_elements": 3},
        "structure": {"prototype": "fcc", "n_atoms": 16},
        "calculator": {"name": "emt", "fmax": 0.05},
        "objectives": [{"name": "formation_energy_per_atom", "goal": "minimize"}],
        "search": {"sampler": "sobol", "batch_size": 3, "budget": 6, "seed": 3},
        "store": "htflow-data",
    }


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def htflow_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
