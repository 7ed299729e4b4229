"""Experiment campaigns: worksheets out, measurements in (``htflow ingest``), replay from a table."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import cli_in_process, htflow_env, run_cli, write_yaml
from pymatgen.core import Composition

ELEMENTS = ("Co", "Cr", "Fe", "Ni")


def lab_table(path: Path, failed: str | None = "Co10Cr70Fe10Ni10") -> Path:
    """A made-up laboratory's hardness (HV) and yield strength (MPa) of Co-Cr-Fe-Ni alloys on a 10 at% grid."""
    rows = []
    for counts in itertools.product(range(11), repeat=3):
        if sum(counts) > 10:
            continue
        at = dict(zip(ELEMENTS, (*counts, 10 - sum(counts)), strict=True))
        x = {el: n / 10 for el, n in at.items()}
        hv = 150 + 400 * x["Cr"] * (1 - x["Cr"]) + 300 * x["Co"] * x["Ni"] + 50 * x["Fe"]
        formula = "".join(f"{el}{10 * n}" for el, n in at.items() if n)
        rows.append({"formula": formula, "HV": round(hv, 2), "yield_strength": round(2.5 * hv, 1),
                     "status": "failed" if formula == failed else "", "note": "brittle" if formula == failed else ""})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def lab_config(tmp: Path, **over) -> dict:
    table = tmp / "alloys.csv"
    cfg = {"name": "lab", "space": {"mode": "list", "file": str(table if table.exists() else lab_table(table))},
           "calculator": {"name": "experiment"},
           "objectives": [{"name": "HV", "goal": "maximize", "unit": "HV"}],
           "search": {"budget": 12, "batch_size": 4, "seed": 3}, "store": str(tmp / "lab-store")}
    cfg.update(over)
    return cfg


def _truth(tmp: Path) -> dict[str, float]:
    t = pd.read_csv(tmp / "alloys.csv")
    from htflow.space.compositions import composition_key

    return {composition_key(Composition(f)): hv for f, hv in zip(t.formula, t.HV, strict=True)}


def fill(sheet: Path, out: Path, truth: dict[str, float], rows: slice | list[int], failed: dict[int, str] | None = None,
         drop_key: bool = False) -> Path:
    """The worksheet with measured values in ``rows`` and ``failed`` rows marked with their reason."""
    w = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    picked = range(len(w))[rows] if isinstance(rows, slice) else rows
    for i in picked:
        w.loc[i, "HV"] = str(truth[w.loc[i, "key"]])
    for i, why in (failed or {}).items():
        w.loc[i, "status"], w.loc[i, "note"] = "failed", why
    if drop_key:
        w = w.drop(columns=["key"])
    (w.to_excel(out, index=False) if out.suffix == ".xlsx" else w.to_csv(out, index=False))
    return out


def _db_rows(store: Path, table: str) -> list[dict]:
    con = sqlite3.connect(store / "htflow.sqlite")
    rows = [eval_json(r[0]) for r in con.execute(f"SELECT doc FROM {table}")]
    con.close()
    return rows


def eval_json(text: str) -> dict:
    import json

    return json.loads(text)


def htflow(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``htflow ARGS`` in ``cwd``, in this process as a fresh one would run it; its exit status and output.
    (Starting a process per command cost this test a minute of imports; the Ctrl-C below is a real
    process.)"""
    code, out, err = cli_in_process(args, cwd)
    return subprocess.CompletedProcess(args, code, out, err)


# Ctrl-C pressed at the worst moment between rounds: round 2 is stored, its worksheet not yet written
INTERRUPT = """
import os, signal, sys
import htflow.campaign.experiment as e
real = e.write_round_worksheets
def ctrl_c(*a, **k):
    os.kill(os.getpid(), signal.SIGINT)
    return real(*a, **k)
e.write_round_worksheets = ctrl_c
from htflow.cli import main
main(sys.argv[1:])
"""


def test_experiment_campaign_through_worksheets_and_ingests(tmp_path):
    cfg_file = write_yaml(tmp_path / "lab.yaml", lab_config(tmp_path))
    truth = _truth(tmp_path)
    store = tmp_path / "lab-store"
    sheets = store / "worksheets"

    first = htflow(["run", str(cfg_file), "--quiet"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "waiting for 4 measurements" in first.stdout
    assert "lab-round-1.csv" in first.stdout and "htflow ingest" in first.stdout
    sheet1 = sheets / "lab-round-1.csv"
    assert sheet1.is_file() and (sheets / "lab-round-1.xlsx").is_file()
    status = htflow(["status", "lab", "--store", str(store)], tmp_path)
    assert "waiting" in status.stdout and "awaiting 4 measurements" in status.stdout

    # a bad file: one line per problem with its row and column; nothing recorded
    bad = pd.read_csv(sheet1, dtype=str, keep_default_na=False)
    bad.loc[0, "HV"] = "hard"
    bad.loc[1, "key"] = "Co0.5Zn0.5"
    bad.loc[2, "status"], bad.loc[2, "HV"] = "failed", "300"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    refused = htflow(["ingest", str(tmp_path / "bad.csv"), "--campaign", "lab", "--store", str(store)], tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert "row 1 (line 2), column 'HV': 'hard' is not a number" in lines[0]
    assert "row 2 (line 3), column 'key': 'Co0.5Zn0.5' is not a sample of campaign 'lab'" in lines[1]
    assert "row 3 (line 4), column 'HV': the sample is marked failed but has a value" in lines[2]
    assert "nothing ingested" in lines[-1]
    assert _db_rows(store, "results") == []

    # a partial batch with a failed sample: the worksheet as the lab fills it in, found without --store
    fill(sheet1, sheet1, truth, [0, 1], {2: "cracked on casting"})
    part = htflow(["ingest", str(sheet1)], tmp_path)
    assert part.returncode == 0, part.stderr
    assert "2 measurements and 1 failed samples recorded for 'lab'" in part.stdout
    assert "1 still awaited (round 1: 1)" in part.stdout
    again = htflow(["ingest", str(sheet1)], tmp_path)  # the same file twice adds nothing
    assert "0 measurements and 0 failed" in again.stdout and "3 already recorded" in again.stdout

    waits = htflow(["run", str(cfg_file), "--quiet"], tmp_path)  # round 1 is not complete: no round 2
    assert waits.returncode == 0 and "waiting for 1 measurements" in waits.stdout
    assert not (sheets / "lab-round-2.csv").exists()

    # the rest of round 1 from the Excel sheet, by formula only
    w = fill(sheets / "lab-round-1.csv", tmp_path / "rest.xlsx", truth, [3], drop_key=True)
    rest = htflow(["ingest", str(w), "--campaign", "lab", "--store", str(store)], tmp_path)
    assert rest.returncode == 0, rest.stderr
    assert "1 measurements" in rest.stdout and "the round is complete" in rest.stdout

    # Ctrl-C between rounds, then the same command again
    stopped = subprocess.run([sys.executable, "-c", INTERRUPT, "run", str(cfg_file), "--quiet"], cwd=tmp_path,
                             env=htflow_env(), capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 130, stopped.stderr
    assert "interrupted" in stopped.stderr and "Traceback" not in stopped.stderr
    resumed = htflow(["run", str(cfg_file), "--quiet"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "waiting for 4 measurements" in resumed.stdout
    sheet2 = sheets / "lab-round-2.csv"
    assert len(pd.read_csv(sheet2)) == 4
    cands = _db_rows(store, "candidates")
    assert sorted(c["round"] for c in cands) == [1] * 4 + [2] * 4  # nothing proposed twice

    # round 2 in part, and go on without the rest
    fill(sheet2, sheet2, truth, [0, 1])
    assert htflow(["ingest", str(sheet2)], tmp_path).returncode == 0
    on = htflow(["run", str(cfg_file), "--quiet", "--proceed-with-partial"], tmp_path)
    assert on.returncode == 0, on.stderr
    assert "waiting for 6 measurements" in on.stdout and "lab-round-3.csv" in on.stdout
    for sheet in (sheet2, sheets / "lab-round-3.csv"):
        fill(sheet, sheet, truth, slice(None))
        assert htflow(["ingest", str(sheet)], tmp_path).returncode == 0
    done = htflow(["run", str(cfg_file), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "stopped: budget spent" in done.stdout
    results = {r["key"]: r for r in _db_rows(store, "results")}
    assert len(results) == 12
    failed = [r for r in results.values() if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == "cracked on casting"
    for r in results.values():
        if r["status"] == "done":
            assert r["HV"] == truth[r["key"]] and r["units"] == {"HV": "HV"}
            assert r["source"]["file"].startswith(("lab-round-", "rest.xlsx"))
    doc = _db_rows(store, "campaigns")[0]
    assert doc["state"] == "complete"
    assert [r["evaluated"] for r in sorted(doc["rounds"], key=lambda r: r["round"])] == [4, 4, 4]
    assert doc["best"]["value"] == max(r["HV"] for r in results.values() if r["status"] == "done")


def test_worksheet_gives_what_a_lab_needs(tmp_path, capsys):
    cfg = lab_config(tmp_path, calculator={"name": "experiment", "options": {"sample_mass_g": 25}})
    code, _, err = run_cli(["run", str(write_yaml(tmp_path / "lab.yaml", cfg)), "--quiet"], capsys)
    assert code == 0, err
    sheet = pd.read_csv(tmp_path / "lab-store" / "worksheets" / "lab-round-1.csv", keep_default_na=False)
    xlsx = pd.read_excel(tmp_path / "lab-store" / "worksheets" / "lab-round-1.xlsx", keep_default_na=False)
    assert list(xlsx.columns) == list(sheet.columns) and list(xlsx["key"]) == list(sheet["key"])
    assert list(sheet.columns[:6]) == ["key", "formula", "HV", "HV_uncertainty", "status", "note"]
    assert (sheet["HV"] == "").all() and len(sheet) == 4
    for _, row in sheet.iterrows():
        comp = Composition(row["formula"])
        present = [el for el in ELEMENTS if f"{el}_at%" in sheet.columns and row[f"{el}_at%"] > 0]
        assert sum(row[f"{el}_at%"] for el in present) == pytest.approx(100, abs=1e-3)
        for el in present:  # wt% as pymatgen has it; grams of each element add up to the sample
            assert row[f"{el}_wt%"] == pytest.approx(100 * comp.get_wt_fraction(el), abs=1e-3)
            assert row[f"{el}_g"] == pytest.approx(25 * comp.get_wt_fraction(el), abs=1e-4)
        assert sum(row[f"{el}_g"] for el in present) == pytest.approx(25, abs=1e-3)
        assert "space-filling" in row["chosen_because"]


def test_replay_from_an_oracle_table_runs_the_whole_loop(tmp_path, capsys):
    table = lab_table(tmp_path / "alloys.csv")
    cfg = lab_config(tmp_path, calculator={"name": "experiment", "options": {"oracle": str(table)}},
                     objectives=[{"name": "HV", "goal": "maximize"}, {"name": "yield_strength", "goal": "maximize"}],
                     search={"budget": 20, "batch_size": 5, "seed": 1})
    code, out, err = run_cli(["run", str(write_yaml(tmp_path / "lab.yaml", cfg)), "--quiet"], capsys)
    assert code == 0, err
    assert "budget spent" in out
    assert "Pareto front: " in out and "yield_strength (max)" in out  # every objective shown
    code, status, _ = run_cli(["status", str(tmp_path / "lab.yaml")], capsys)
    assert code == 0 and "Pareto front: " in status and "hypervolume" in status
    code, _, err = run_cli(["report", "lab", "--store", str(tmp_path / "lab-store")], capsys)
    page = (tmp_path / "lab-store" / "reports" / "lab" / "index.html").read_text()
    assert code == 0 and "The front and its hypervolume after each round" in page, err
    assert page.count("<tr><td>") >= 4  # one row per round at least
    assert "exact (values from the oracle table alloys.csv)" in page
    assert (tmp_path / "lab-store" / "reports" / "lab" / "learning-curve-yield_strength.png").stat().st_size > 10_000
    assert "best yield_strength so far (maximize)" in page
    truth = _truth(tmp_path)
    results = _db_rows(tmp_path / "lab-store", "results")
    assert len(results) == 20
    for r in results:
        if r["status"] == "done":
            assert r["HV"] == truth[r["key"]] and r["yield_strength"] == pytest.approx(2.5 * r["HV"], abs=0.06)
        else:
            assert r["error"] == "brittle"
    assert not (tmp_path / "lab-store" / "worksheets").exists()


def _late_failures(tmp: Path, capsys, feasibility: bool) -> float:
    """Share of failed samples after round 4 when every Cr-rich alloy (the hardest) is brittle."""
    tmp.mkdir()
    table = lab_table(tmp / "alloys.csv", failed=None)
    t = pd.read_csv(table, keep_default_na=False)
    brittle = [Composition(f).get_atomic_fraction("Cr") >= 0.5 for f in t.formula]
    t["HV"] = [150 + 400 * Composition(f).get_atomic_fraction("Cr") for f in t.formula]  # the best are brittle
    t.loc[brittle, "status"], t.loc[brittle, "note"] = "failed", "brittle"
    t.to_csv(table, index=False)
    cfg = lab_config(tmp, calculator={"name": "experiment", "options": {"oracle": str(table)}},
                     search={"budget": 40, "batch_size": 4, "seed": 3, "surrogate": {"feasibility": feasibility}})
    code, _, err = run_cli(["run", str(write_yaml(tmp / "lab.yaml", cfg)), "--quiet"], capsys)
    assert code == 0, err
    late = [r for r in _db_rows(tmp / "lab-store", "results") if r["round"] > 4]
    return sum(r["status"] == "failed" for r in late) / len(late)


def test_failed_samples_teach_the_feasibility_model(tmp_path, capsys):
    """The lab's failed samples keep the search off what cannot be made (off: it keeps trying)."""
    with_model = _late_failures(tmp_path / "on", capsys, True)
    without = _late_failures(tmp_path / "off", capsys, False)
    assert with_model < 0.5 < without, (with_model, without)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda w: w.assign(HV=["1e999", "", "", ""]), "row 1 (line 2), column 'HV': '1e999' is not a finite number"),
    (lambda w: w.assign(HV=["300", "300", "", ""], key=[w.key[0], w.key[0], w.key[2], w.key[3]]),
     "row 2 (line 3), column 'key': sample "),
    (lambda w: w.assign(status=["failed", "", "", ""]), "row 1 (line 2), column 'note': the sample is marked "
                                                         "failed; say why"),
    (lambda w: w.assign(status=["done", "", "", ""]), "row 1 (line 2), column 'HV': the sample is marked done"),
    (lambda w: w.assign(status=["maybe", "", "", ""]), "column 'status': 'maybe' is not a status"),
    (lambda w: w.assign(HV=["300", "", "", ""], HV_uncertainty=["-3", "", "", ""]),
     "column 'HV_uncertainty': a negative uncertainty"),
    (lambda w: w.assign(key=["", "", "", ""], formula=["", "", "", ""], HV=["300", "", "", ""]),
     "row 1 (line 2): no key or formula"),
    (lambda w: w.drop(columns=["key"]).assign(formula=["Co50Zn50", "", "", ""], HV=["3", "", "", ""]),
     "column 'formula': 'Co50Zn50' is not a sample of campaign 'lab' (nearest: "),
    (lambda w: w.drop(columns=["key"]).assign(formula=["Co5x", "", "", ""], HV=["3", "", "", ""]),
     "column 'formula': "),
    (lambda w: w.drop(columns=["key", "formula"]), "no key or formula column"),
    (lambda w: w.drop(columns=["HV"]), "no column of the campaign's objectives (HV)"),
    (lambda w: w, "no measurement: no row has a value of HV or status failed"),
])
def test_a_bad_ingest_file_is_refused_whole(tmp_path, capsys, edit, message):
    cfg = lab_config(tmp_path)
    code, _, err = run_cli(["run", str(write_yaml(tmp_path / "lab.yaml", cfg)), "--quiet"], capsys)
    assert code == 0, err
    sheet = tmp_path / "lab-store" / "worksheets" / "lab-round-1.csv"
    bad = edit(pd.read_csv(sheet, dtype=str, keep_default_na=False))
    bad.to_csv(tmp_path / "bad.csv", index=False)
    before = (tmp_path / "lab-store" / "htflow.sqlite").read_bytes()
    code, out, err = run_cli(["ingest", str(tmp_path / "bad.csv"), "-c", "lab", "--store",
                              str(tmp_path / "lab-store")], capsys)
    assert code == 2 and out == ""
    assert any(message in line for line in err), err
    assert all(line.startswith("error: ") for line in err)
    assert (tmp_path / "lab-store" / "htflow.sqlite").read_bytes() == before


def test_a_recorded_measurement_is_not_replaced(tmp_path, capsys):
    code, _, err = run_cli(["run", str(write_yaml(tmp_path / "lab.yaml", lab_config(tmp_path))), "--quiet"], capsys)
    sheet = tmp_path / "lab-store" / "worksheets" / "lab-round-1.csv"
    w = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    w.assign(HV=["300", "", "", ""]).to_csv(tmp_path / "a.csv", index=False)
    w.assign(HV=["310", "", "", ""]).to_csv(tmp_path / "b.csv", index=False)
    store = ["-c", "lab", "--store", str(tmp_path / "lab-store")]
    assert run_cli(["ingest", str(tmp_path / "a.csv"), *store], capsys)[0] == 0
    code, _, err = run_cli(["ingest", str(tmp_path / "b.csv"), *store], capsys)
    assert code == 2 and f"sample {w.key[0]} is already recorded (HV 300.0)" in err[0]


@pytest.mark.parametrize(("over", "message"), [
    ({"structure": {"prototype": "bcc", "n_atoms": 16}}, "structure: an experiment campaign makes each composition"),
    ({"calculator": {"name": "experiment", "options": {"oracle": "missing.csv"}}},
     "calculator.options.oracle: missing.csv: no such file"),
    ({"calculator": {"name": "experiment", "options": {"worksheet": "x"}}},
     "unknown option(s) worksheet for 'experiment'"),
    ({"objectives": [{"name": "HV (Vickers)", "goal": "maximize"}]}, "objectives[0].name"),
    ({"calculator": {"name": "experiment", "options": {"sample_mass_g": -1}}}, "sample_mass_g"),
])
def test_experiment_config_errors(tmp_path, capsys, over, message):
    cfg = write_yaml(tmp_path / "lab.yaml", lab_config(tmp_path, **over))
    code, _, err = run_cli(["validate", str(cfg)], capsys)
    assert code == 2 and any(message in line for line in err), err


def test_the_oracle_must_hold_the_objectives(tmp_path, capsys):
    table = lab_table(tmp_path / "alloys.csv")
    cfg = lab_config(tmp_path, calculator={"name": "experiment", "options": {"oracle": str(table)}},
                     objectives=[{"name": "hardness", "goal": "maximize"}])
    code, _, err = run_cli(["validate", str(write_yaml(tmp_path / "lab.yaml", cfg))], capsys)
    assert code == 2 and "alloys.csv has no column hardness" in err[0]


@pytest.mark.slow
def test_measured_and_imported_data_are_served_with_their_source(tmp_path, capsys):
    """OPTIMADE serves measured samples and imported rows as compositions (no sites), each with
    ``_htflow_source``; the official validator passes over them; query and build show the source."""
    import json
    import urllib.request

    from helpers import serving
    from optimade.validator import ImplementationValidator

    table = lab_table(tmp_path / "alloys.csv")
    cfg = lab_config(tmp_path, calculator={"name": "experiment", "options": {"oracle": str(table)}},
                     search={"budget": 6, "batch_size": 3, "seed": 1, "sampler": "sobol"})
    store = str(tmp_path / "lab-store")
    assert run_cli(["run", str(write_yaml(tmp_path / "lab.yaml", cfg)), "--quiet"], capsys)[0] == 0
    pd.DataFrame({"formula": ["Zr41.2Ti13.8Cu12.5Ni10Be22.5", "Fe80B20"], "Dc": ["25", "1"],
                  "doi": ["10.1063/1.110520", "10.1/x"]}).to_csv(tmp_path / "bmg.csv", index=False)
    code, _, err = run_cli(["import", str(tmp_path / "bmg.csv"), "-c", "bmg", "-p", "Dc=critical_diameter",
                            "--unit", "critical_diameter=mm", "--fidelity", "experiment", "--store", store], capsys)
    assert code == 0, err
    code, out, err = run_cli(["build", "--store", store], capsys)
    assert code == 0 and "8 built" in out, (out, err)
    code, out, _ = run_cli(["query", "--collection", "materials", "--store", store, "--format", "json"], capsys)
    mats = json.loads(out)
    assert {m["prototype"] for m in mats} == {"experiment", "imported"}
    with serving(store, tmp_path) as url:
        validator = ImplementationValidator(base_url=url + "/optimade", verbosity=-1, respond_json=True)
        validator.validate_implementation()
        assert validator.valid, validator.results.failure_messages
        body = json.load(urllib.request.urlopen(url + "/optimade/v1/structures?page_limit=100"))
    entries = {e["id"]: e["attributes"] for e in body["data"]}
    assert len(entries) == 8
    zr = next(a for a in entries.values() if "Be" in a["elements"])
    assert zr["_htflow_source"] == "imported into bmg from bmg.csv (doi 10.1063/1.110520), fidelity experiment"
    assert zr["_htflow_properties"] == {"critical_diameter": 25.0} and zr["_htflow_units"] == {
        "critical_diameter": "mm"}
    assert zr["chemical_formula_reduced"] == "Be225Cu125Ni100Ti138Zr412" and zr["nsites"] is None
    done = [r for r in _db_rows(tmp_path / "lab-store", "results") if r["status"] == "done"]
    measured = {i: a for i, a in entries.items() if a["_htflow_source"] == "measured in campaign lab (replayed "
                                                                         "from alloys.csv)"}
    assert len(measured) == len(done) == 6
    truth = _truth(tmp_path)
    for r in done:
        assert measured[f"{r['key']}:experiment"]["_htflow_properties"] == {"HV": truth[r["key"]]}


def test_the_experiment_workflows_run_from_the_checkout(tmp_path, monkeypatch, capsys):
    """workflows/experiment.yaml stops at its first worksheet; the replay runs to its budget."""
    import shutil

    from helpers import ROOT

    shutil.copytree(ROOT / "workflows", tmp_path / "workflows")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["run", "-q", "workflows/experiment.yaml"], capsys)
    assert code == 0, err
    assert "waiting for 8 measurements: fill in htflow-data/worksheets/hea-lab-round-1.csv" in out
    sheet = pd.read_csv("htflow-data/worksheets/hea-lab-round-1.csv")
    assert len(sheet) == 8 and sheet["HV"].isna().all()
    code, out, err = run_cli(["run", "-q", "workflows/experiment-replay.yaml"], capsys)
    assert code == 0, err
    assert "48 measured now; 48 done and 0 failed in all; stopped: budget spent" in out
