"""The command line on a real (small) campaign, and the bundled campaign files."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import pytest
from helpers import ROOT, write_yaml

from htflow.campaign.validation import load_config
from htflow.cli import main
from htflow.space.build import build_space

WORKFLOWS = sorted((ROOT / "workflows").glob("*.yaml"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_bundled_campaign_files_are_valid(path, tmp_path, monkeypatch):
    if path.name == "vasp.yaml":  # its checks need POTCARs and a VASP command: fakes of both
        from fakevasp.potcars import write_fake_potcars
        from pymatgen.core import SETTINGS

        monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", str(write_fake_potcars(tmp_path / "potcars")))
        (tmp_path / "vasp_std").write_text("#!/bin/sh\n")
        (tmp_path / "vasp_std").chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    if path.name in ("list-space.yaml", "experiment.yaml", "experiment-replay.yaml", "inverse-design.yaml"):
        # their lists are named relative to the checkout, where they are run from
        monkeypatch.chdir(ROOT)
    if path.name == "warm-start.yaml":  # its prior is a data set imported into the store first
        from htflow.cli import main

        main(["import", str(ROOT / "workflows/data/fcc-formation-prior.csv"), "--campaign", "fcc-prior",
              "--property", "formation_energy_per_atom"])
    if path.name == "finetune-screen.yaml":  # its model is the checkpoint `htflow finetune fcc-ft` writes
        ckpt = tmp_path / "htflow-data" / "finetune" / "fcc-ft" / "chgnet-finetuned.pth.tar"
        ckpt.parent.mkdir(parents=True)
        ckpt.touch()  # the workflow's own test writes a real one (tests/test_finetune.py)
    cfg = load_config(path)
    assert cfg.search.budget >= 1
    space = build_space(cfg.space)
    if space.is_grid:
        assert cfg.search.budget <= space.grid_size()


def test_demo_is_small_enough_for_a_laptop():
    cfg = load_config(ROOT / "workflows" / "demo.yaml")
    assert cfg.store.backend == "embedded" and cfg.executor.type == "local"
    assert cfg.search.budget <= 64 and cfg.structure.n_atoms <= 32


def _main(argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_run_status_query_export(small_campaign, tmp_path, capsys):
    file = write_yaml(tmp_path / "c.yaml", small_campaign)
    code, out, err = _main(["run", str(file), "--quiet"], capsys)
    assert code == 0, err
    assert "best" in out and "stopped: budget spent" in out
    png = tmp_path / "htflow-data" / "plots" / "small-convergence.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, _ = _main(["run", str(file), "--quiet"], capsys)
    assert code == 0 and "is complete" in out and "0 computed now" in out

    code, out, _ = _main(["status", "small"], capsys)
    assert code == 0 and "small: complete" in out and "6/6 of budget" in out

    code, out, _ = _main(["query", "--format", "json", "--limit", "0", "--sort", "formation_energy_per_atom"],
                         capsys)  # fmt: skip
    rows = json.loads(out)
    assert len(rows) == 6
    values = [r["formation_energy_per_atom"] for r in rows]
    assert values == sorted(values)

    code, out, _ = _main(["query", "-f", '{"elements": "Pd", "nelements": {"$gte": 2}}',
                          "--fields", "key,elements", "--format", "json", "--limit", "0"], capsys)  # fmt: skip
    sub = sorted(json.loads(out), key=lambda r: r["key"])
    want = sorted(
        ({"key": r["key"], "elements": r["elements"]} for r in rows
         if "Pd" in r["elements"] and len(r["elements"]) >= 2),
        key=lambda r: r["key"],
    )  # fmt: skip
    assert sub == want and want

    code, _, err = _main(["export", "small", "--format", "csv", "-o", str(tmp_path / "out.csv")], capsys)
    assert code == 0 and "wrote 6 results" in err
    table = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    by_key = {r["key"]: r for r in rows}
    assert len(table) == 6
    for row in table:
        assert float(row["formation_energy_per_atom"]) == by_key[row["key"]]["formation_energy_per_atom"]
        assert float(row["e_above_hull"]) == by_key[row["key"]]["e_above_hull"] >= 0
        fractions = {el: float(row[f"composition.{el}"]) for el in ("Cu", "Ni", "Pd")}
        assert sum(fractions.values()) == pytest.approx(1)
        assert {el for el, x in fractions.items() if x > 0} == set(by_key[row["key"]]["elements"])
    code, _, err = _main(["export", "small", "--format", "parquet", "-o", str(tmp_path / "out.parquet")],
                         capsys)
    assert code == 0 and "wrote 6 results" in err
    import pyarrow.parquet as pq

    parquet = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["key"] for r in parquet] == [r["key"] for r in table]  # the CSV's rows and columns
    assert set(parquet[0]) == set(table[0])
    for row in parquet:
        assert row["formation_energy_per_atom"] == by_key[row["key"]]["formation_energy_per_atom"]
        assert sum(row[f"composition.{el}"] for el in ("Cu", "Ni", "Pd")) == pytest.approx(1)
    code, _, err = _main(["export", "small", "--format", "parquet"], capsys)
    assert code == 2 and "give --output FILE.parquet" in err
    code, _, err = _main(["export", "small", "--format", "table"], capsys)
    assert code == 2 and "'table' is not one of 'json', 'csv', 'parquet'" in err

    code, out, _ = _main(["status", str(file)], capsys)  # the campaign file names the campaign and store
    assert code == 0 and "small: complete" in out

    code, out, _ = _main(["query", "--limit", "3", "--sort", "formation_energy_per_atom"], capsys)
    lines = out.splitlines()  # readable at 80 columns: every header whole, every number whole
    assert code == 0 and max(len(line) for line in lines) <= 80
    for header in ("campaign", "key", "formula", "status", "round", "E_form"):
        assert header in lines[1], lines[1]
    assert "E_form: formation_energy_per_atom (eV/atom)" in out
    for r in rows[:3]:
        assert f"{r['formation_energy_per_atom']:.4f}" in out

    code, out, _ = _main(["export", "small"], capsys)
    full = json.loads(out)
    assert len(full) == 6 and all("structure" in r for r in full)


def test_help_on_every_command(capsys):
    for cmd in ([], ["run"], ["status"], ["query"], ["export"], ["validate"]):
        code, out, _ = _main([*cmd, "--help"], capsys)
        assert code == 0 and "Usage" in out


def test_version(capsys):
    from htflow import __version__

    code, out, _ = _main(["--version"], capsys)
    assert code == 0 and out.strip() == f"htflow {__version__}"


def test_a_plugin_module_beside_the_campaign_file(small_campaign, tmp_path, monkeypatch, capsys):
    """``calculator: {name: mycalc:ScaledEMT}`` with mycalc.py next to the YAML, run from elsewhere."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "mycalc.py").write_text(
        "from ase.calculators.emt import EMT\n\n\n"
        "class ScaledEMT(EMT):\n"
        "    def calculate(self, *args, **kwargs):\n"
        "        super().calculate(*args, **kwargs)\n"
        "        self.results['energy'] *= 2\n"
        "        self.results['free_energy'] = self.results['energy']\n"
        "        self.results['forces'] = self.results['forces'] * 2\n"
        "        self.results['stress'] = self.results['stress'] * 2\n")
    cfg = {**small_campaign, "calculator": {"name": "mycalc:ScaledEMT"}, "search": {"sampler": "sobol",
           "batch_size": 2, "budget": 2, "seed": 1}}
    file = write_yaml(folder / "c.yaml", cfg)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    code, out, err = _main(["run", str(file), "--quiet"], capsys)
    assert code == 0, err
    assert "2 computed now; 2 done" in out
