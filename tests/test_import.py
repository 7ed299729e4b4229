"""htflow import: tables of compositions and properties (CSV formulas, element columns in at%,
fractions or wt%, Excel, JSON) stored row by row; re-imports add nothing; every bad file or row is
refused in one line naming the row and column, with nothing written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from helpers import run_cli
from pymatgen.core import Composition

from htflow.datasets import aggregate
from htflow.schemas.config import StoreConfig
from htflow.store.db import CampaignDB

ALLOYS = """formula,HV,HV_err,doi,processing
Zr41.2Ti13.8Cu12.5Ni10Be22.5,520,10,10.1/a,cast
Al0.5CoCrFeNi,212,,10.1/b,cast
Al0.5CoCrFeNi,230,5,10.1/c,annealed
CoCrFeNi,150,,,cast
NbMoTaW,,,,
"""


def htflow(argv, capsys) -> tuple[int, str, list[str]]:
    return run_cli(argv, capsys)


def imported(campaign: str | None = None) -> list[dict]:
    if not Path("htflow-data/htflow.sqlite").exists():
        return []
    with CampaignDB(StoreConfig()) as db:
        crit = {"campaign": campaign} if campaign else {}
        return sorted(db.collection("imported").query(crit), key=lambda d: (d.get("row", 0), d["row_id"]))


def test_a_csv_of_formulas_is_stored_row_by_row_and_once(tmp_path, capsys):
    (tmp_path / "alloys.csv").write_text(ALLOYS)
    argv = ["import", "alloys.csv", "--campaign", "hea", "--property", "HV=hardness", "--unit", "hardness=HV",
            "--uncertainty", "HV_err=hardness", "--fidelity", "experiment"]
    code, out, err = htflow(argv, capsys)
    assert code == 0, err
    assert "4 rows imported into 'hea'" in out and "1 without a value left out" in out
    assert "3 compositions, 1 measured more than once" in out
    docs = imported("hea")
    assert [d["row"] for d in docs] == [1, 2, 3, 4]
    zr = docs[0]
    assert zr["key"] == "Be0.225Cu0.125Ni0.1Ti0.138Zr0.412" and zr["properties"] == {"hardness": 520.0}
    assert zr["uncertainty"] == {"hardness": 10.0} and zr["units"] == {"hardness": "HV"}
    assert zr["doi"] == "10.1/a" and zr["processing"] == "cast" and zr["fidelity"] == "experiment"
    assert zr["formula"] == "Zr41.2Ti13.8Cu12.5Ni10Be22.5" and zr["elements"] == ["Be", "Cu", "Ni", "Ti", "Zr"]
    assert docs[1]["composition"] == pytest.approx({"Al": 0.5 / 4.5, "Co": 1 / 4.5, "Cr": 1 / 4.5,
                                                    "Fe": 1 / 4.5, "Ni": 1 / 4.5})
    assert "uncertainty" not in docs[1]
    # the same file again adds nothing
    code, out, _ = htflow(argv, capsys)
    assert code == 0 and "0 rows imported" in out and "4 already there" in out
    assert len(imported("hea")) == 4
    # repeated measurements are kept as data and aggregated for the model
    with CampaignDB(StoreConfig()) as db:
        agg = aggregate(db, "hea", "hardness")
    al = agg[docs[1]["key"]]
    assert al["n"] == 2 and al["mean"] == pytest.approx(221.0) and al["std"] == pytest.approx(12.7279, rel=1e-4)
    assert agg[zr["key"]] == {"mean": 520.0, "std": 0.0, "n": 1, "composition": zr["composition"]}


def test_element_columns_in_at_percent_fractions_and_weight_percent(tmp_path, capsys):
    (tmp_path / "at.csv").write_text("Fe,Cr,Ni,E\n70,18,12,1.5\n0.5,0.25,0.25,2\n")
    code, _, err = htflow(["import", "at.csv", "-c", "steel", "-p", "E=modulus"], capsys)
    assert code == 0, err
    a, b = imported("steel")
    assert a["composition"] == pytest.approx({"Cr": 0.18, "Fe": 0.70, "Ni": 0.12})  # summed to 100: at%
    assert b["composition"] == pytest.approx({"Cr": 0.25, "Fe": 0.5, "Ni": 0.25})  # summed to 1: fractions
    (tmp_path / "wt.csv").write_text("Fe,Cr,Ni,E\n70,18,12,1.5\n")
    code, _, err = htflow(["import", "wt.csv", "-c", "steel-wt", "-p", "E=modulus", "--composition-unit", "wt%"],
                          capsys)
    assert code == 0, err
    [w] = imported("steel-wt")
    expected = Composition.from_weight_dict({"Fe": 70, "Cr": 18, "Ni": 12}).fractional_composition
    assert w["composition"] == pytest.approx({str(el): amt for el, amt in expected.items()})
    assert w["composition"]["Fe"] == pytest.approx(0.6948, abs=1e-4)  # lighter Cr and Fe gain on Ni


def test_excel_and_json_tables(tmp_path, capsys):
    rows = [{"composition": "Cu3Au", "gap": 0.0}, {"composition": "GaAs", "gap": 1.42}]
    pd.DataFrame(rows).to_excel(tmp_path / "gaps.xlsx", index=False)
    (tmp_path / "gaps.json").write_text(json.dumps({"data": rows}))
    for name in ("gaps.xlsx", "gaps.json"):
        code, _, err = htflow(["import", name, "-c", name.replace(".", "-"), "-p", "gap=band_gap"], capsys)
        assert code == 0, err
        docs = imported(name.replace(".", "-"))
        assert [(d["key"], d["properties"]["band_gap"]) for d in docs] == [("Au0.25Cu0.75", 0.0),
                                                                          ("As0.5Ga0.5", 1.42)]


def test_skip_bad_rows_keeps_the_good_ones_and_lists_the_rest(tmp_path, capsys):
    (tmp_path / "mixed.csv").write_text("formula,HV\nCoCrFeNi,150\nXx2Fe,1\nCoCrFeNiMn,hard\nNbMoTaW,500\n")
    code, out, err = htflow(["import", "mixed.csv", "-c", "m", "-p", "HV", "--skip-bad-rows"], capsys)
    assert code == 0 and "2 rows imported" in out and "2 bad rows skipped" in out
    assert err == ["skipped: mixed.csv: row 2 (line 3), column 'formula': 'Xx' in 'Xx2Fe' is not a chemical element",
                   "skipped: mixed.csv: row 3 (line 4), column 'HV': 'hard' is not a number"]
    assert [d["properties"]["HV"] for d in imported("m")] == [150.0, 500.0]


BAD_ROWS = [  # (csv, extra arguments, words): one bad row among good ones
    ("formula,HV\nCoCrFeNi,1\nFe2(,1\n", [], ["row 2 (line 3)", "column 'formula'", "is not a formula"]),
    ("formula,HV\nCoCrFeNi,1\nXx2Fe,1\n", [], ["row 2 (line 3)", "'Xx' in 'Xx2Fe' is not a chemical element"]),
    ("formula,HV\nCoCrFeNi,1\nfe2o3,1\n", [], ["row 2 (line 3)", "'fe2o3' is not a formula"]),
    ("formula,HV\nCoCrFeNi,1\nFe-1Ni2,1\n", [], ["row 2 (line 3)", "column 'formula'"]),
    ("formula,HV\nCoCrFeNi,1\n,1\n", [], ["row 2 (line 3)", "empty formula"]),
    ("formula,HV\nCoCrFeNi,hard\n", [], ["row 1 (line 2)", "column 'HV'", "'hard' is not a number"]),
    ("formula,HV\nCoCrFeNi,inf\n", [], ["row 1 (line 2)", "column 'HV'", "not a finite number"]),
    ("formula,HV\nCoCrFeNi,nan\n", [], ["row 1 (line 2)", "column 'HV'", "not a finite number"]),
    ("Fe,Ni,HV\n50,50,1\n-10,110,1\n", [], ["row 2 (line 3)", "a negative amount"]),
    ("Fe,Ni,HV\n50,50,1\n30,25,1\n", [], ["row 2 (line 3)", "sum to 55, neither 1 (fractions) nor 100 (at%)"]),
    ("Fe,Ni,HV\n50,50,1\n0,0,1\n", [], ["row 2 (line 3)", "no element has a positive amount"]),
    ("Fe,Ni,HV\n50,lots,1\n", [], ["row 1 (line 2)", "column 'Ni'", "'lots' is not a number"]),
    ("formula,HV\nFe45Ni45,1\n", ["--composition-unit", "at%"], ["row 1 (line 2)", "sum to 90, not 100 (at%)"]),
    ("formula,HV\nFe70Ni50,1\n", ["--composition-unit", "wt%"], ["row 1 (line 2)", "sum to 120, not 100 (wt%)"]),
    ("Fe,Ni,HV\n1,0.5,1\n", ["--composition-unit", "fraction"], ["row 1 (line 2)", "sum to 1.5, not 1"]),
    ("formula,HV,err\nCoCrFeNi,1,-2\n", ["--uncertainty", "err=HV"], ["row 1 (line 2)", "negative uncertainty"]),
]
BAD_FILES = [  # (file name, content, arguments, words): the file or the command is wrong
    ("a.csv", "formula,HV\nCoCrFeNi,1\n", ["--formula", "alloy"], ["--formula: no column 'alloy'"]),
    ("a.csv", "formula,HV\nCoCrFeNi,1\n", ["-p", "HB"], ["--property: no column 'HB'", "columns: formula, HV"]),
    ("a.csv", "formula,HV\nCoCrFeNi,1\n", None, ["name the property columns with --property"]),
    ("a.csv", "alloy_name,HV\nA1,1\n", ["-p", "HV"], ["no composition", "--formula COLUMN"]),
    ("a.csv", "formula,HV\nCoCrFeNi,1\n", ["-p", "HV", "--composition-unit", "mol"], ["'mol' is not allowed"]),
    ("a.csv", "formula,HV,e\nCoCrFeNi,1,1\n", ["-p", "HV", "--uncertainty", "e=YS"], ["e=YS names no property"]),
    ("a.csv", "formula,HV\nCoCrFeNi,1\n", ["-p", "HV", "--unit", "YS=MPa"], ["'YS' names no property"]),
    ("a.csv", "formula,HV,HB\nCoCrFeNi,1,2\n", ["-p", "HV=h", "-p", "HB=h"], ["two columns are mapped to 'h'"]),
    ("a.csv", "formula,HV\n", ["-p", "HV"], ["no rows"]),
    ("a.dat", "formula,HV\nCoCrFeNi,1\n", ["-p", "HV"], ["unknown table format '.dat'"]),
    ("a.json", '{"a": 1, "b": 2}', ["-p", "HV"], ["expected a list of records"]),
    ("a.json", "[1, 2", ["-p", "HV"], ["cannot read it as json"]),
    ("a.csv", "formula,HV,HV\nCoCrFeNi,1,2\n", ["-p", "HV"], ["column 'HV' appears twice"]),
    ("a.xlsx", "not a spreadsheet", ["-p", "HV"], ["cannot read it as excel"]),
    ("a.csv", "formula,HV\nCoCrFeNi,\n", ["-p", "HV"], ["no row has a value for HV"]),
    ("a.csv", "formula,HV\nCoCrFeNi,1\n", ["-p", "HV", "--campaign", "my data!"], ["--campaign: 'my data!'"]),
]


@pytest.mark.parametrize(("text", "extra", "words"), BAD_ROWS, ids=[str(i) for i in range(len(BAD_ROWS))])
def test_a_bad_row_refuses_the_file_naming_row_and_column(tmp_path, capsys, text, extra, words):
    (tmp_path / "t.csv").write_text(text)
    code, _, err = htflow(["import", "t.csv", "-c", "x", "-p", "HV", *extra], capsys)
    assert code == 2
    assert len(err) == 2 and err[0].startswith("error: t.csv: ") and "nothing imported" in err[1], err
    for w in words:
        assert w in err[0], (w, err)
    assert imported() == []


@pytest.mark.parametrize(("name", "text", "args", "words"), BAD_FILES, ids=[str(i) for i in range(len(BAD_FILES))])
def test_a_bad_file_or_command_is_one_line(tmp_path, capsys, name, text, args, words):
    (tmp_path / name).write_text(text)
    argv = ["import", name, *(args if args is not None else [])]
    if "--campaign" not in argv:
        argv += ["-c", "x"]
    code, _, err = htflow(argv, capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for w in words:
        assert w in err[0], (w, err)
    assert imported() == []
    if Path("htflow-data/htflow.sqlite").exists():  # nothing written, not even an empty collection
        con = sqlite3.connect("htflow-data/htflow.sqlite")
        assert con.execute("SELECT name FROM sqlite_master WHERE name='imported'").fetchall() == []


def test_a_missing_file(capsys):
    code, _, err = htflow(["import", "nope.csv", "-c", "x", "-p", "HV"], capsys)
    assert code == 2 and err == ["error: nope.csv: no such file"]


@pytest.mark.slow
def test_a_public_database_through_optimade(live_server, tmp_path, capsys):
    """From a live OPTIMADE API on loopback (htflow serve over a campaign's materials): every entry
    stored with its composition and the provider's known fields mapped; a rerun adds nothing."""
    url, store = live_server
    argv = ["import", "--optimade", f"{url}/optimade", "--filter", "nelements>=2", "-c", "public"]
    code, out, err = htflow(argv, capsys)
    assert code == 0, err
    with CampaignDB(StoreConfig(path=store)) as db:
        materials = {m["material_id"]: m for m in db.materials.query({"nelements": {"$gte": 2}})}
    assert f"{len(materials)} entries fetched, {len(materials)} imported into 'public'" in out
    docs = imported("public")
    assert len(docs) == len(materials) > 0
    for d in docs:
        m = materials[d["provider_id"]]
        assert d["key"] == m["key"] and d["source"] == f"{url}/optimade"
        assert d["properties"]["formation_energy_per_atom"] == pytest.approx(m["formation_energy_per_atom"])
        assert d["raw"]["_htflow_fidelity"] == m["fidelity"]  # kept raw: no htflow property of that name
    code, out, _ = htflow(argv, capsys)
    assert code == 0 and f"0 imported into 'public', {len(materials)} already there" in out
    code, _, err = htflow(["import", "--optimade", f"{url}/optimade", "--filter", "nelements>", "-c", "x"], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --filter: 'nelements>'"), err
    code, _, err = htflow(["import", "--optimade", "ftp://x", "-c", "x"], capsys)
    assert code == 2 and "not an http(s) URL" in err[0]
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    code, out, err = htflow(["import", "--optimade", f"http://127.0.0.1:{closed}/optimade", "-c", "x"], capsys)
    assert code == 2 and err == [f"error: --optimade: cannot reach http://127.0.0.1:{closed}/optimade; check the "
                                 "URL and the network"] and not out
