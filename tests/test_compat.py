"""Behaviour kept across the package's reorganisation, checked against files written by the
version before it (tests/data): the demo proposes the same compositions with the same energies,
and a store it wrote opens, reports and resumes, proposing what that version proposed."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from helpers import ROOT, cli_in_process

from htflow.cli import main

DATA = ROOT / "tests" / "data"


def _cli(argv: list[str]) -> None:
    try:
        main([*argv])
    except SystemExit as exc:  # main exits only for errors and interrupts
        pytest.fail(f"htflow {' '.join(argv)} exited with {exc.code}")


@pytest.mark.slow
def test_demo_proposes_the_same_compositions_with_the_same_energies(tmp_path):
    golden = json.loads((DATA / "demo-golden.json").read_text())
    demo = yaml.safe_load((ROOT / "workflows" / "demo.yaml").read_text())
    demo["search"]["seed"] = 7  # the demo's seed when the golden file was written
    # and the search defaults of that version (the default model, pruning and the trust region changed since)
    demo["search"]["surrogate"] = {**demo["search"].get("surrogate", {}), "model": "gp",
                                   "prune": {"enabled": True}, "trust_region": False}
    # the first three rounds (the initial design and two model rounds): what a later round proposes
    # follows from them by the same code, and the whole demo takes twice as long
    rounds = 3
    demo["search"]["budget"] = rounds * demo["search"]["batch_size"]
    golden["results"] = [r for r in golden["results"] if r["round"] <= rounds]
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(demo))
    code, _, err = cli_in_process(["run", str(tmp_path / "demo.yaml"), "--quiet"], cwd=tmp_path)
    assert code == 0, err
    from htflow.api import results_frame

    got = results_frame(golden["campaign"], store=str(tmp_path / "htflow-data"))
    got = got.sort_values(["round", "key"]).to_dict("records")
    assert [(r["round"], r["key"], r["status"]) for r in got] == [
        (r["round"], r["key"], r["status"]) for r in golden["results"]]
    for new, old in zip(got, golden["results"], strict=True):
        for field in ("formation_energy_per_atom", "energy_per_atom"):
            assert new[field] == pytest.approx(old[field], abs=1e-8), (new["key"], field)


@pytest.fixture
def legacy(tmp_path):
    """A copy of the store written by htflow before the reorganisation (campaign 'legacy', 9 results)."""
    shutil.copytree(DATA / "legacy-store", tmp_path / "legacy")
    store = tmp_path / "legacy" / "htflow-data"
    store.mkdir()
    shutil.move(tmp_path / "legacy" / "htflow.sqlite", store / "htflow.sqlite")
    return tmp_path / "legacy"


def test_a_store_written_before_opens_and_reports(legacy, capsys, monkeypatch):
    monkeypatch.chdir(legacy)
    _cli(["status", "legacy"])
    out = capsys.readouterr().out
    assert "legacy: complete (budget spent); 9/9 of budget; done 9" in out
    _cli(["report", "legacy", "-o", "report"])
    assert (legacy / "report" / "index.html").read_text().count("<img") >= 3
    from htflow.api import results_frame

    frame = results_frame("legacy", store="htflow-data")
    assert len(frame) == 9 and frame["formation_energy_per_atom"].notna().all()


@pytest.mark.slow
def test_a_store_written_before_resumes_with_the_proposals_it_would_have_made(legacy, monkeypatch):
    golden = json.loads((legacy / "resume-golden.json").read_text())
    monkeypatch.chdir(legacy)
    text = (legacy / "legacy.yaml").read_text().replace("budget: 9", "budget: 12")
    (legacy / "legacy.yaml").write_text(text)
    _cli(["run", "legacy.yaml", "--quiet"])
    from htflow.api import results_frame

    frame = results_frame("legacy", store="htflow-data")
    round4 = frame[frame["round"] == 4].sort_values("key").to_dict("records")
    assert [r["key"] for r in round4] == [r["key"] for r in golden["round_4"]]
    for new, old in zip(round4, golden["round_4"], strict=True):
        assert new["formation_energy_per_atom"] == pytest.approx(old["formation_energy_per_atom"], abs=1e-8)
