"""The settings object (HTFLOW_* variables) and the typed documents the store keeps."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_campaign, small_campaign_config
from pydantic import ValidationError

from htflow import settings as settings_module
from htflow.cli import main
from htflow.schemas.config import SpaceConfig
from htflow.schemas.documents import CampaignDoc, CandidateDoc, ResultDoc, Status
from htflow.search.planner import weigh
from htflow.settings import get_settings, override
from htflow.space.build import build_space
from htflow.space.compositions import SpaceError


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch):
    """Settings are read from the environment once; each test starts from the environment."""
    monkeypatch.setattr(settings_module, "_current", None)
    yield
    settings_module._current = None


def test_environment_variables_set_the_tunables(monkeypatch):
    monkeypatch.setenv("HTFLOW_MAX_PACK", "7")
    monkeypatch.setenv("HTFLOW_FEASIBILITY_CUTOFF", "0.25")
    s = get_settings()
    assert s.max_pack == 7 and s.feasibility_cutoff == 0.25 and s.parego_rho == 0.05


def test_bad_values_are_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("HTFLOW_MAX_POOL", "-1")
    with pytest.raises(ValidationError, match="max_pool"):
        get_settings()


def test_override_is_checked_scoped_and_reaches_the_code_that_reads_it():
    space = SpaceConfig(elements=["Cu", "Ni", "Pd"], step=0.25)
    assert build_space(space).check_grid() == 15
    with override(max_pool=10):
        assert get_settings().max_pool == 10
        with pytest.raises(SpaceError, match="more than space.max_pool"):
            build_space(SpaceConfig(elements=["Cu", "Ni", "Pd"], step=0.25)).check_grid()
        with pytest.raises(ValidationError):
            get_settings().max_pool = 0
    assert get_settings().max_pool == 500_000
    acq, p_ok = np.array([1.0, 2.0]), np.array([0.9, 0.4])
    assert np.isinf(weigh(acq, p_ok)[1])  # likelier to fail than the cut-off allows: left out
    with override(feasibility_cutoff=0.3):
        assert weigh(acq, p_ok)[1] == pytest.approx(0.8)


def test_htflow_store_is_the_default_store_of_the_commands(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HTFLOW_STORE", str(tmp_path / "elsewhere"))
    with pytest.raises(SystemExit) as exc:
        main(["status", "small"])
    assert exc.value.code == 2
    assert f"no htflow store at {tmp_path / 'elsewhere'}" in capsys.readouterr().err


@pytest.mark.slow
def test_stored_documents_have_the_keys_their_types_name():
    camp = run_campaign(small_campaign_config())
    results = camp.results()
    assert len(results) == 6
    for r in results:
        assert ResultDoc.__required_keys__ <= set(r), ResultDoc.__required_keys__ - set(r)
        assert type(r["status"]) is str and r["status"] == Status.DONE
    with camp.db:
        cands = list(camp.db.candidates.query({"campaign": "small"}))
        doc = camp.db.campaigns.query_one({"name": "small"})
    for c in cands:
        assert CandidateDoc.__required_keys__ <= set(c) and c["status"] in set(Status)
    assert CampaignDoc.__required_keys__ <= set(doc) and doc["state"] == "complete"
    assert {r["round"] for r in doc["rounds"]} == {1, 2}
