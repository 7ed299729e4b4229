"""Plug-ins from a third-party package: a tiny package installed for this test session adds one
calculator, sampler, surrogate, featurizer and acquisition through ``importlib.metadata`` entry
points, and campaign files name them like htflow's own."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, cli_in_process, small_campaign_config, write_yaml

from htflow.calculators.registry import calculator_names, get_calculator
from htflow.errors import InputError
from htflow.search.acquisition import get_acquisition
from htflow.search.features import get_featurizer
from htflow.search.registry import get_generator
from htflow.search.surrogates import get_surrogate

PLUGIN = ROOT / "tests" / "plugins" / "htflow-demo-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory, monkeypatch_module):
    """pip installs the demo package into a folder of its own, which joins sys.path."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / PLUGIN.name  # the build leaves files beside the source
    shutil.copytree(PLUGIN, source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True)
    assert list(target.glob("htflow_demo_plugin-*.dist-info/entry_points.txt"))
    monkeypatch_module.syspath_prepend(str(target))
    importlib.invalidate_caches()
    return target


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_each_kind_of_plugin_is_found_by_its_entry_point_name(installed):
    spec = get_calculator("demo-emt")
    assert spec.name == "demo-emt" and spec.meta["method"] == "EMT through the demo plug-in"
    assert "demo-emt" in calculator_names()
    assert type(get_generator("demo-corners")).__name__ == "CornersFirst"
    model = get_surrogate("demo-mean").fit([[0.0], [1.0]], [1.0, 3.0])
    mean, std = model.predict([[0.5]])
    assert mean[0] == 2.0 and std[0] == 1.0
    import numpy as np

    feats = get_featurizer("demo-count", ["Cu", "Ni", "Pd"])(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]))
    assert feats.tolist() == [[2.0], [1.0]]
    assert get_acquisition("demo-lowest")(np.array([1.0, -2.0]), np.ones(2), 0.0).tolist() == [-1.0, 2.0]


def test_unknown_names_list_the_installed_plugins(installed):
    with pytest.raises(InputError, match="demo-emt"):
        get_calculator("demo-emx")
    with pytest.raises(InputError, match="demo-corners"):
        get_generator("demo-cornerz")


@pytest.mark.slow
def test_campaigns_run_with_plugins_from_the_command_line(installed, tmp_path):
    cfg = small_campaign_config()
    cfg["calculator"] = {"name": "demo-emt", "fmax": 0.05}
    cfg["search"] = {"sampler": "demo-corners", "batch_size": 4, "budget": 4, "seed": 1}
    write_yaml(tmp_path / "corners.yaml", cfg)
    guided = small_campaign_config()
    guided.update(name="guided", calculator={"name": "demo-emt", "fmax": 0.05})
    guided["search"] = {"sampler": "surrogate", "batch_size": 2, "budget": 6, "seed": 1,
                        "surrogate": {"model": "demo-mean", "features": "demo-count", "acquisition": "demo-lowest",
                                      "initial": 2, "cv_folds": 0}}
    write_yaml(tmp_path / "guided.yaml", guided)
    for name in ("corners", "guided"):  # in this process, the plug-in package on its path (the fixture)
        code, _, err = cli_in_process(["run", f"{name}.yaml", "--quiet"], cwd=tmp_path)
        assert code == 0, err
    from htflow.api import results_frame

    corners = results_frame("small", store=str(tmp_path / "htflow-data"))
    first = corners[corners["round"] == 1]
    assert {"Cu1", "Ni1", "Pd1"} <= set(first["key"]) and len(corners) == 4
    assert set(corners["status"]) == {"done"}
    guided_rows = results_frame("guided", store=str(tmp_path / "htflow-data"))
    assert len(guided_rows) == 6 and guided_rows["formation_energy_per_atom"].notna().all()
